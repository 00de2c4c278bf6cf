"""course_lib.lessons.building_resnets.diagrams: the block diagrams of notebook 03, in the course's colours, saved as PNG."""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.colors import to_hex

from course_lib.lessons.building_resnets import diagrams
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


def _fill_colours(*axes) -> set[str]:
    return {to_hex(p.get_facecolor()) for ax in axes for p in ax.patches}


def test_skips_in_the_residual_colour_and_no_plain_colour_inside_residual_nets():
    fig = diagrams.draw_residual_blocks(name=None)
    plain_panel, skip_panel, projection_panel = (_line_colours(fig.axes[i]) for i in range(3))
    assert COLORS["residual"].lower() not in plain_panel  # the plain block has no shortcut
    assert COLORS["residual"].lower() in skip_panel and COLORS["residual"].lower() in projection_panel
    assert "BN(Wx)" in fig.axes[2].get_title()  # the projection is a 1x1 conv followed by BN
    blog = diagrams.draw_blog_resnet(name=None)
    assert COLORS["residual"].lower() in _line_colours(*blog.axes)  # its two identity skips
    plain_tints = {diagrams._tint(COLORS["plain"], a) for a in (0.0, 0.65, 0.8, 0.92)}
    for ax in (*fig.axes, *blog.axes):  # layers are neutral grey: the plain colour means plain nets
        assert COLORS["plain"].lower() not in _line_colours(ax) and not (_fill_colours(ax) & plain_tints)
    plt.close("all")
