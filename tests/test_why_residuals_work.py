"""Notebook 05's experiments: lesions, paths, loss landscapes, the widget and the exercise checks."""
from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from course_lib import ConfigError, plain_net, residual_net, seed_everything
from course_lib.lessons.why_residuals_work import experiments as why
from course_lib.profiles import settings
from course_lib.data import Data, DataInfo
from course_lib.lessons.why_residuals_work.landscape import (filter_normalize, loss_at, loss_surface, lowest_point,
                                                           plot_contours, plot_slices_1d, random_direction,
                                                           rise_by_distance, summarise_surface)
from course_lib.history import History
from course_lib.training import evaluate, recompute_bn_stats
from course_lib.lessons.why_residuals_work.lesion import (blocks_deleted, gradient_by_path_length, lesion_accuracy, lesion_explorer,
                               lesion_table, path_length_counts, plot_lesion_choice, plot_path_lengths,
                               plot_random_deletions, plot_single_deletions, random_block_sets, single_deletions)


def _net(kind="residual", depth=10, seed=0):
    seed_everything(seed)
    model = (residual_net if kind == "residual" else plain_net)(depth, width=8)
    # give BatchNorm non-trivial statistics and affine parameters, as after training
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
        model.train()
        model(torch.rand(64, 1, 28, 28))
    return model.eval()


@pytest.fixture(scope="module")
def tiny_data():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(120, 1, 28, 28, generator=g)
    y = torch.arange(120) % 10
    info = DataInfo("synthetic", "test fixture", 80, 40, False)
    return Data(x[:80], y[:80], x[80:], y[80:], info)


# --------------------------------------------------------------------------- lesions


def test_deleting_f_in_a_residual_block_is_deleting_the_block():
    """Veit's lesion: relu(0 + x) = x because x >= 0, so 'drop f, keep the skip' = the identity."""
    model = _net("residual")
    x = torch.rand(16, 1, 28, 28)
    with blocks_deleted(model, [1]):
        deleted = model(x)
    with torch.no_grad():
        model.body[1].bn2.weight.zero_()  # f(x) = bn2(...) = 0 * ... + bias
        model.body[1].bn2.bias.zero_()
        model.body[1].bn2.running_mean.zero_()
    assert torch.allclose(model(x), deleted, atol=1e-6)


def test_blocks_deleted_is_identity_and_restores_the_blocks():
    model = _net("plain")
    originals = list(model.body)
    x = torch.rand(8, 1, 28, 28)
    before = model(x)
    with blocks_deleted(model, [0, 2]):
        assert isinstance(model.body[0], nn.Identity) and isinstance(model.body[2], nn.Identity)
        h = model.stem(x)
        h = model.body[3](model.body[1](h))
        manual = model.head(torch.flatten(nn.functional.adaptive_avg_pool2d(h, 1), 1))
        assert torch.allclose(model(x), manual, atol=1e-6)
    assert list(model.body) == originals and torch.equal(model(x), before)
    with pytest.raises(RuntimeError):
        with blocks_deleted(model, [1]):
            raise RuntimeError("boom")
    assert list(model.body) == originals
    with pytest.raises(ConfigError, match="out of range"):
        with blocks_deleted(model, [4]):
            pass


def test_recomputing_bn_after_a_lesion_restores_the_statistics(tiny_data):
    model = _net("residual")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stored = lesion_accuracy(model, tiny_data.test_x, tiny_data.test_y, [0, 1])
    repaired = lesion_accuracy(model, tiny_data.test_x, tiny_data.test_y, [0, 1], bn_images=tiny_data.train_x)
    probe = copy.deepcopy(model)
    with blocks_deleted(probe, [0, 1]):
        assert stored == evaluate(probe, tiny_data.test_x, tiny_data.test_y)
        recompute_bn_stats(probe, tiny_data.train_x)
        assert repaired == evaluate(probe, tiny_data.test_x, tiny_data.test_y)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert len(single_deletions(model, tiny_data.test_x, tiny_data.test_y)) == 4


def test_random_block_sets_are_seeded_distinct_and_complete_when_few():
    sets = random_block_sets(6, draws=5, seed=3)
    assert sets == random_block_sets(6, draws=5, seed=3)
    assert sorted(sets) == list(range(1, 7))
    for k, chosen in sets.items():
        assert len(chosen) == min(5, math.comb(6, k))
        assert len({tuple(s) for s in chosen}) == len(chosen)
        assert all(len(s) == k and len(set(s)) == k and 0 <= min(s) and max(s) < 6 for s in chosen)
    assert sets[6] == [[0, 1, 2, 3, 4, 5]]


# --------------------------------------------------------------------------- paths


def test_path_length_counts_are_binomial():
    counts = path_length_counts(10)
    assert sum(counts) == 2 ** 10 and counts == counts[::-1] and counts[5] == 252
    with pytest.raises(ConfigError):
        path_length_counts(-1)


def test_path_gradients_add_up_to_the_true_gradient():
    model = _net("residual", depth=10)  # 4 blocks, 16 paths
    x, y = torch.rand(8, 1, 28, 28), torch.arange(8)
    paths = gradient_by_path_length(model, x, y)
    assert paths["n"] == 4 and paths["paths"] == [1, 4, 6, 4, 1]
    assert paths["sum_check"] < 1e-5
    assert math.isclose(sum(paths["share"]), 1.0, rel_tol=1e-9)
    assert all(p > 0 for p in paths["per_path"])
    assert np.allclose(paths["total"], np.array(paths["per_path"]) * np.array(paths["paths"]))


def test_when_every_f_is_zero_only_the_length_zero_path_carries_gradient():
    model = _net("residual", depth=8)
    with torch.no_grad():
        for block in model.body:
            block.bn2.weight.zero_()
    paths = gradient_by_path_length(model, torch.rand(4, 1, 28, 28), torch.arange(4))
    assert paths["share"][0] == pytest.approx(1.0) and max(paths["per_path"][1:]) == 0.0


def test_paths_refuse_plain_nets_and_too_many_blocks():
    with pytest.raises(ConfigError, match="residual net"):
        gradient_by_path_length(_net("plain"), torch.rand(2, 1, 28, 28), torch.arange(2))
    with pytest.raises(ConfigError, match="too many"):
        gradient_by_path_length(_net("residual", depth=10), torch.rand(2, 1, 28, 28), torch.arange(2), max_blocks=3)


# --------------------------------------------------------------------------- loss landscape


def test_filter_normalize_matches_filter_norms_and_zeroes_1d():
    model = _net("residual", depth=6)
    weights = [p.detach() for p in model.parameters()]
    raw = [torch.randn_like(w) * 7 for w in weights]
    d = filter_normalize(raw, weights)
    for di, w, r in zip(d, weights, raw):
        if w.dim() > 1:
            assert torch.allclose(di.flatten(1).norm(dim=1), w.flatten(1).norm(dim=1), rtol=1e-5)
            cos = nn.functional.cosine_similarity(di.flatten(1), r.flatten(1), dim=1)
            assert torch.allclose(cos, torch.ones_like(cos), atol=1e-5)
        else:
            assert torch.count_nonzero(di) == 0
    with pytest.raises(ConfigError):
        filter_normalize(raw[:-1], weights)


def test_twins_get_the_same_random_direction():
    a = random_direction(_net("plain", depth=6), seed=5)
    b = random_direction(_net("residual", depth=6), seed=5)  # same init seed: same weights, so same direction
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    c = random_direction(_net("plain", depth=6), seed=6)
    assert not all(torch.equal(u, v) for u, v in zip(a, c))


def test_loss_surface_centre_is_the_model_and_1d_is_the_middle_row(tiny_data):
    model = _net("residual", depth=6)
    x, y = tiny_data.train_x[:40], tiny_data.train_y[:40]
    before = [p.clone() for p in model.parameters()]
    d1, d2 = random_direction(model, 1), random_direction(model, 2)
    coords = np.linspace(-1, 1, 5)
    one = loss_surface(model, x, y, [d1], coords)
    two = loss_surface(model, x, y, [d1, d2], coords)
    assert np.array(two["loss"]).shape == (5, 5) and len(one["loss"]) == 5
    assert one["loss"][2] == pytest.approx(loss_at(model, x, y)[0], rel=1e-5)
    assert np.allclose(two["loss"][2], one["loss"], rtol=1e-5)  # b = 0 row == the 1-D slice along d1
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))  # the model is untouched
    assert one["loss"][0] != pytest.approx(one["loss"][2], rel=1e-3)  # the direction does move the weights


def test_summarise_surface_counts_interior_basins_and_ignores_the_edge():
    c = np.linspace(-1, 1, 11)
    a, b = np.meshgrid(c, c)
    bowl = {"coords": list(c), "loss": (a ** 2 + b ** 2 + 0.1).tolist()}
    s = summarise_surface(bowl)
    assert s["interior_minima"] == [[0.0, 0.0, pytest.approx(0.1)]]
    assert s["centre_loss"] == pytest.approx(0.1) and s["below_chance"] == 1.0
    assert s["within_1"] == pytest.approx(np.mean(a ** 2 + b ** 2 < 1.0))
    wells = {"coords": list(c), "loss": ((a ** 2 - 0.36) ** 2 + b ** 2).tolist()}
    two = summarise_surface(wells)
    assert sorted(round(a, 1) for a, b, _ in two["interior_minima"]) == [-0.6, 0.6]  # the two wells, a = +-0.6
    assert all(b == pytest.approx(0.0) for _, b, _ in two["interior_minima"])
    # a loss that keeps falling towards the grid's edge has no minimum there: the edge is not a basin
    slope = {"coords": list(c), "loss": (a ** 2 + b ** 2 + 1 - 3 * np.clip(a - 0.8, 0, None)).tolist()}
    assert len(summarise_surface(slope)["interior_minima"]) == 1


def _bowl(c, scale=1.0, power=1, shift=0.0, floor=0.1):
    a, b = np.meshgrid(c, c)
    return {"coords": list(c), "loss": (scale * ((a - shift) ** 2 + b ** 2) ** power + floor).tolist()}


def test_rise_by_distance_averages_square_rings_around_theta():
    c = np.linspace(-1, 1, 11)  # step 0.2
    rise = rise_by_distance(_bowl(c))
    assert list(rise) == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    # ring max(|a|, |b|) = 0.2: 4 edge midpoints at 0.04 and 4 corners at 0.08 (the centre's 0.1 taken off)
    assert rise[0.2] == pytest.approx(0.06)
    assert list(rise_by_distance(_bowl(c), (0.2, 0.21, 0.6))) == pytest.approx([0.2, 0.6])  # nearest, no repeats
    one_d = {"coords": list(c), "loss": list(c ** 2 + 5)}
    assert list(rise_by_distance(one_d, (0.4,)).items()) == [(pytest.approx(0.4), pytest.approx(0.16))]


def test_lowest_point_says_how_far_from_theta_and_how_much_lower():
    c = np.linspace(-1, 1, 11)
    centred = lowest_point(_bowl(c))
    assert centred["steps"] == 0 and centred["drop"] == pytest.approx(0.0) and centred["coords"] == (0.0, 0.0)
    off = lowest_point(_bowl(c, shift=0.2))  # the minimum sits one grid step along a
    assert off["steps"] == 1 and off["coords"] == pytest.approx((0.2, 0.0)) and off["drop"] == pytest.approx(0.04)
    one_d = lowest_point({"coords": list(c), "loss": list((c + 0.4) ** 2)})
    assert one_d["steps"] == 2 and one_d["coords"] == pytest.approx((-0.4,))


def test_landscape_table_and_comparison_tell_near_from_far():
    c = np.linspace(-1, 1, 21)

    def pairs(surface_2d):
        s1 = {"coords": list(c), "loss": surface_2d["loss"][10], "acc": [1.0] * 21}
        return {"pairs": [dict(seeds=[1, 2], surface=surface_2d, slice=s1, summary=summarise_surface(surface_2d))]}

    # plain: a parabola; residual: flat near theta, steep far out (a quartic), from a lower floor
    result = {"plain": pairs(_bowl(c, scale=4.0)), "residual": pairs(_bowl(c, scale=16.0, power=2, floor=0.01)),
              "direction_seeds": [[1, 2]]}
    table = why.landscape_table(result)
    assert "rise at 0.1/0.2/0.3" in table
    plain_row = table.splitlines()[1].split()
    want = [round(v, 2) for v in rise_by_distance(result["plain"]["pairs"][0]["surface"], why.NEAR).values()]
    assert [float(v) for v in plain_row[3].split("/")] == want  # the three rises, next to the highest loss
    assert rise_by_distance(result["residual"]["pairs"][0]["surface"])[0.1] < \
        rise_by_distance(result["plain"]["pairs"][0]["surface"])[0.1]
    text = why.landscape_comparison(result)
    assert "residual rise lower at distance 0.1 to 0.4, higher at 0.5 to 1" in text
    assert "plain    2-D slices whose lowest grid point is not θ: 0 of 1" in text
    assert "1-D slice highest loss: plain 4.1, residual 16.0" in text
    assert "in how many of the 1 pairs: lower rise at 0.1 1, higher 2-D highest loss 1, higher 1-D highest loss 1" in text


def test_figure_titles_name_the_data_without_fallback_jargon():
    info = DataInfo("mnist", "sample (fallback)", 4000, 1000, False)
    assert why.figure_title(info) == "MNIST sample, 4,000 train / 1,000 test"
    result = {"meta": dict(info.as_dict(), device="cpu", profile="cpu")}
    assert why.figure_title(result) == "MNIST sample, 4,000 train / 1,000 test; device cpu; profile cpu"
    fashion = DataInfo("fashion", "Debian package dataset-fashion-mnist", 60000, 10000, True)
    assert why.figure_title(fashion, "smoke", "cuda") == ("Fashion-MNIST (Debian package dataset-fashion-mnist), "
                                                          "60,000 train / 10,000 test; device cuda; profile smoke")


def test_twin_summary_shows_whether_the_nets_were_still_learning():
    net = _net("plain", depth=6)
    net.history = History(records=[dict(epoch=e, train_loss=l, test_acc=a) for e, l, a in
                                   ((1, 2.0, 0.3), (2, 0.79, 0.75), (3, 0.51, 0.863), (4, 0.396, 0.897))])
    text = why.twin_summary({"plain": net}, n_test=1000)
    assert "after 4 epochs" in text and "test accuracy 89.7%" in text
    assert "last 3 epochs: training loss 0.790 -> 0.510 -> 0.396, test accuracy 75.0% -> 86.3% -> 89.7%" in text


# --------------------------------------------------------------------------- runs, saving, plots, widget


@pytest.fixture
def tiny_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("COURSE_FIGURES_DIR", str(tmp_path / "figures"))
    row = dict(why.SETTINGS["smoke"], depth=8, paths_depth=6, width=8, epochs=1, batch_size=40, draws=2,
               bn_images=40, path_images=8, landscape_images=40, slice_points=5, grid=3)
    monkeypatch.setitem(why.SETTINGS, "smoke", row)
    return tmp_path


def test_trained_pair_trains_once_then_loads_checkpoints(tiny_data, tiny_settings):
    models = why.trained_pair(tiny_data, "smoke", device="cpu", verbose=False)
    assert set(models) == {"plain", "residual"} and models["residual"].history.final["epoch"] == 1
    paths = [tiny_settings / "results" / f"05_{k}-8_smoke.pt" for k in models]
    assert all(p.is_file() and p.stat().st_size < 1_000_000 for p in paths)
    again = why.trained_pair(tiny_data, "smoke", device="cpu", verbose=False)
    for kind in models:
        for a, b in zip(models[kind].state_dict().values(), again[kind].state_dict().values()):
            assert torch.equal(a, b)
    net = why.paths_net(models, tiny_data, "smoke", device="cpu", verbose=False)  # paths_depth 6 != depth 8
    assert net.depth == 6 and (tiny_settings / "results" / "05_residual-6_smoke.pt").is_file()


@pytest.mark.slow
def test_experiments_return_json_results_and_plots_save_pngs(tiny_data, tiny_settings):
    models = {kind: _net(kind, depth=8) for kind in ("plain", "residual")}
    lesion = why.run_lesion_study(models, tiny_data, "smoke", device="cpu")
    assert lesion["n_blocks"] == 3 and len(lesion["plain"]["single"]) == 3
    assert sorted(lesion["residual"]["random"]) == [1, 2, 3] and len(lesion["residual"]["random"][1]) == 2
    assert lesion["meta"]["profile"] == "smoke" and "intact" in why.lesion_summary(lesion)
    paths = why.run_paths(models["residual"], tiny_data, "smoke", device="cpu")
    land = why.run_landscape(models, tiny_data, "smoke", device="cpu", progress=False)
    assert land["direction_seeds"] == [[1, 2], [3, 4]]
    for kind in models:
        pairs = land[kind]["pairs"]
        assert [p["seeds"] for p in pairs] == [[1, 2], [3, 4]]
        assert all(np.array(p["surface"]["loss"]).shape == (3, 3) for p in pairs)
        assert pairs[0]["surface"]["loss"] != pairs[1]["surface"]["loss"]  # another draw, another picture
    table = why.landscape_table(land)
    assert len(table.splitlines()) == 1 + 2 * 2 and "dir. seeds" in table and " 3,4 " in table
    for result in (lesion, paths, land):
        json.loads(json.dumps(result))  # saveable by load_or_train
    reloaded = json.loads(json.dumps(lesion))  # integer keys become strings; the plots accept both
    figs = [plot_single_deletions(reloaded), plot_random_deletions(reloaded), plot_path_lengths(paths),
            plot_slices_1d({k: [p["slice"] for p in land[k]["pairs"]] for k in models}),
            plot_contours({k: [p["surface"] for p in land[k]["pairs"]] for k in models}),
            plot_lesion_choice(lesion_table(models, tiny_data.test_x, tiny_data.test_y, [1]), [1])]
    names = {p.name for p in (tiny_settings / "figures").iterdir()}
    assert names == {"05_single_deletions.png", "05_random_deletions.png", "05_paths.png", "05_landscape_1d.png",
                     "05_landscape_2d.png", "05_explorer.png"}
    import matplotlib.pyplot as plt
    for f in figs:
        plt.close(f)


def test_lesion_summary_and_table_number_blocks_from_zero_like_model_body():
    result = {kind: dict(intact=0.9, intact_bn=0.9, single=[0.5, 0.89, 0.7], single_bn=[0.89, 0.9, 0.6],
                         random={1: [0.5, 0.89, 0.7], 2: [0.3], 3: [0.1]})
              for kind in ("plain", "residual")}
    result["block_sets"] = {1: [[0], [1], [2]], 2: [[0, 2]], 3: [[0, 1, 2]]}
    text = why.lesion_summary(result)
    assert "worst 50.0% (block 0)" in text and "worst 60.0% (block 2)" in text  # stored, then recomputed
    assert "1 of 3 within 2 points of intact" in text and "2 of 3 within 2 points" in text
    table = why.random_deletion_table(result, kept_block=0)
    assert "block 0 kept" in table and "block 1 kept" not in table
    assert "(always deleted)" in table  # k = 2 and 3: every draw deletes block 0
    assert "79.5% (2 of 3)" in table  # k = 1: the mean of the 2 draws of 3 that keep block 0 (0.89, 0.7)


def test_explorer_updates_both_nets_live(tiny_data):
    models = {kind: _net(kind, depth=8) for kind in ("plain", "residual")}
    x, y = tiny_data.test_x, tiny_data.test_y
    panel = lesion_explorer(models, x, y, bn_images=tiny_data.train_x)
    assert len(panel.buttons) == 3
    assert [b.description for b in panel.buttons] == ["block 0", "block 1", "block 2"]  # as model.body[i]
    panel.buttons[1].value = True  # the student clicks "block 1", model.body[1]
    for kind, model in models.items():
        want = lesion_accuracy(model, x, y, [1])
        assert panel.bars[kind].value == pytest.approx(100 * want)
        assert f"{want:.1%}" in panel.labels[kind].value
    assert panel.buttons[1].button_style == "warning"
    panel.buttons[1].value = False
    assert panel.bars["plain"].value == pytest.approx(100 * lesion_accuracy(models["plain"], x, y))
    with pytest.raises(ConfigError, match="numbers of blocks"):
        lesion_explorer({"plain": _net("plain", 8), "residual": _net("residual", 10)}, x, y)


def test_settings_cover_every_profile():
    for name in ("smoke", "cpu", "full"):
        s = settings(why.SETTINGS, name)
        assert s["grid"] % 2 == 1 and s["slice_points"] % 2 == 1  # theta itself is a grid point
        assert (s["paths_depth"] - 2) // 2 <= 12  # paths are enumerated: keep 2^n small
    assert [settings(why.SETTINGS, name)["grid"] for name in ("smoke", "cpu", "full")] == [5, 21, 51]


def test_training_sample_is_random_even_when_the_split_is_sorted_by_class():
    y = torch.arange(10).repeat_interleave(50)  # a split stored sorted by class
    data = Data(torch.rand(500, 1, 28, 28), y, torch.rand(10, 1, 28, 28), torch.arange(10),
                DataInfo("synthetic", "test fixture", 500, 10, False))
    x1, y1 = why.training_sample(data, 100, seed=0)
    assert x1.shape == (100, 1, 28, 28) and len(torch.unique(y1)) == 10
    x2, y2 = why.training_sample(data, 100, seed=0)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    for xi, yi in zip(x1[:5], y1[:5]):  # images keep their labels
        assert int(data.train_y[(data.train_x == xi).flatten(1).all(1)][0]) == int(yi)


def test_the_notebooks_lesion_verdict_matches_the_saved_result():
    """Notebook 05 types the saved cpu result's lesion numbers (Remember box, 中文要点, summary), labelled with the
    file: they must be the ones lesion_summary generates from results/05_lesion_cpu.json."""
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    text = why.lesion_summary(json.loads((root / "results" / "05_lesion_cpu.json").read_text(encoding="utf-8")))
    assert "3 of 9 single deletions hold with the stored statistics" in text and "6 of 9 with recomputed" in text
    assert "worst 34.8% (block 0)" in text
    cells = json.loads((root / "notebooks" / "05_why_residuals_work.ipynb").read_text(encoding="utf-8"))["cells"]
    markdown = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    for where in (markdown[0], next(m for m in markdown if m.startswith("## Summary"))):
        assert "05_lesion_cpu.json" in where or "05_*_cpu.json" in where
        for number in ("3 of 9", "34.8%", "6 of 9"):
            assert number in where
    assert "reproduced" not in " ".join(markdown)
    paths = json.loads((root / "results" / "05_paths_cpu.json").read_text(encoding="utf-8"))
    short = [k for k in paths["lengths"] if k < paths["n"] / 2]
    carried = f"{sum(paths['share'][k] for k in short):.1%}"  # the notebook prints it the same way
    assert carried == "79.1%" and all(carried in where for where in (markdown[0], next(m for m in markdown if m.startswith("## Summary"))))
    counts = why.landscape_comparison(json.loads((root / "results" / "05_landscape_cpu.json").read_text(encoding="utf-8")))
    assert "in how many of the 3 pairs: lower rise at 0.1 3, higher 2-D highest loss 3, higher 1-D highest loss 1" in counts
