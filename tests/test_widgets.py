"""course_lib.lessons.residual_block.widgets: the signal/gradient numbers behind the explorer, the widget itself, its static PNG."""
import matplotlib

matplotlib.use("Agg")

import ipywidgets  # noqa: E402
import pytest  # noqa: E402

from course_lib.lessons.residual_block import widgets  # noqa: E402


def test_plain_vanishes_below_he_scale_residual_does_not():
    sizes = widgets.signal_and_gradient(depth=30, weight_scale=0.5)
    assert sizes["layer"] == list(range(31))
    assert sizes["plain_signal"][0] == pytest.approx(1.0) and sizes["plain_gradient"][-1] == pytest.approx(1.0)
    assert sizes["plain_signal"][-1] < 1e-6 and sizes["plain_gradient"][0] < 1e-6
    assert sizes["residual_signal"][-1] > 1 and sizes["residual_gradient"][0] > 1


def test_he_scale_keeps_plain_level_and_residual_grows_like_one_plus_s_squared():
    depth = 30
    sizes = widgets.signal_and_gradient(depth=depth, weight_scale=1.0)
    assert 0.2 < sizes["plain_signal"][-1] < 5 and 0.2 < sizes["plain_gradient"][0] < 5
    predicted = 2.0 ** (depth / 2)  # Var(h_l) ~ (1 + s^2) Var(h_{l-1}), s = 1
    assert predicted / 10 < sizes["residual_signal"][-1] < predicted * 10


def test_tiny_branches_leave_the_residual_stack_the_identity():
    sizes = widgets.signal_and_gradient(depth=50, weight_scale=1e-4)
    assert sizes["residual_signal"][-1] == pytest.approx(1.0, rel=1e-3)
    assert sizes["residual_gradient"][0] == pytest.approx(1.0, rel=1e-3)


def test_deeper_stack_reuses_the_same_first_layers():
    short, long = widgets.signal_and_gradient(10, 0.7), widgets.signal_and_gradient(20, 0.7)
    assert short["plain_signal"] == pytest.approx(long["plain_signal"][:11])


@pytest.mark.parametrize("depth, scale", [(0, 1.0), (widgets.MAX_DEPTH + 1, 1.0), (5, -1.0)])
def test_bad_settings_raise(depth, scale):
    with pytest.raises(ValueError):
        widgets.signal_and_gradient(depth, scale)


def test_explorer_is_a_real_ipywidget_that_redraws_on_slider_change():
    open_before = matplotlib.pyplot.get_fignums()
    w = widgets.explorer(depth=12, weight_scale=0.5)
    assert isinstance(w, ipywidgets.VBox)
    depth_slider, scale_slider, image = w.children
    assert isinstance(depth_slider, ipywidgets.IntSlider) and isinstance(scale_slider, ipywidgets.FloatSlider)
    assert (depth_slider.min, depth_slider.max, scale_slider.value) == (1, widgets.MAX_DEPTH, 0.5)
    assert isinstance(image, ipywidgets.Image) and image.value[:4] == b"\x89PNG"  # drawn at once, no Output widget
    bundle = w._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and "text/plain" in bundle
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == w.model_id
    before = image.value
    depth_slider.value = 40
    assert image.value != before  # a slider change redraws the picture
    assert matplotlib.pyplot.get_fignums() == open_before  # each redraw closes its figure


def test_explorer_figure_saves_png(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_FIGURES_DIR", str(tmp_path))
    fig = widgets.explorer_figure(depth=8, weight_scales=(0.5, 1.0), name="02_test_explorer")
    assert len(fig.axes) == 4
    assert (tmp_path / "02_test_explorer.png").stat().st_size > 1000
    matplotlib.pyplot.close(fig)
