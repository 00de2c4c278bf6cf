"""course_lib.diagrams: the block diagrams of notebook 03, in the course's colours, saved as PNG."""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.colors import to_hex

from course_lib import diagrams
from course_lib.models import BlogResNet, count_params
from course_lib.plots import COLORS


def _line_colours(*axes) -> set[str]:
    return {to_hex(line.get_color()) for ax in axes for line in ax.get_lines()}


def test_diagrams_are_saved_as_png(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_FIGURES_DIR", str(tmp_path))
    fig = diagrams.draw_residual_blocks()
    assert len(fig.axes) == 3
    fig2 = diagrams.draw_blog_resnet()
    assert f"{count_params(BlogResNet()):,}" == "221,810" and "221,810" in fig2.axes[0].get_title()
    for name in ("03_residual_block.png", "03_blog_resnet.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    plt.close("all")


def test_skips_in_the_residual_colour_and_the_branch_in_the_plain_colour():
    fig = diagrams.draw_residual_blocks(name=None)
    plain_panel, skip_panel, projection_panel = (_line_colours(fig.axes[i]) for i in range(3))
    assert COLORS["residual"].lower() not in plain_panel  # the plain block has no shortcut
    assert {COLORS["residual"].lower(), COLORS["plain"].lower()} <= skip_panel
    assert COLORS["residual"].lower() in projection_panel
    blog = diagrams.draw_blog_resnet(name=None)
    assert COLORS["residual"].lower() in _line_colours(*blog.axes)  # its two identity skips
    plt.close("all")
