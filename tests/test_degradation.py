"""Tests for course_lib.lessons.degradation (notebook 01) and its exercise checks. CPU, no network, < 60 s."""
from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import pytest
import torch

import course_lib.lessons.degradation as D
from course_lib.__main__ import main
from course_lib.errors import ConfigError
from course_lib.exercises import nb01
from course_lib.models import plain_net
from course_lib.profiles import PROFILES
from course_lib.training import seed_everything

RUN_KEYS = {"kind", "depth", "seed", "final_train_loss", "test_acc", "curve"}


@pytest.fixture(scope="module")
def batch():
    torch.set_flush_denormal(True)
    return D.digit_batch(64)


@pytest.fixture
def tmp_figures(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_FIGURES_DIR", str(tmp_path))
    return tmp_path


def fake_result(losses: dict[tuple[str, int, int], float]) -> dict:
    """A sweep result with the given final losses, keyed (kind, depth, seed)."""
    runs = [dict(kind=k, depth=d, seed=s, final_train_loss=v, test_acc=0.5, curve=[2.3, v])
            for (k, d, s), v in losses.items()]
    return dict(profile="smoke", dataset="sample", source="test", runs=runs,
                config=dict(width=16, batch_norm=True, lr=0.1, batch_size=128, epochs=1), meta={})


# ---------------------------------------------------------------------------- settings


def test_settings_cover_every_profile():
    for name in PROFILES:
        row = D.settings(name)
        assert set(row) == {"sweep", "gradient", "identity"}
        assert all(d % 2 == 0 and d >= 2 for d in row["sweep"]["depths"])
    assert D.settings("cpu")["sweep"]["seeds"] >= 2  # "by more than the seed-to-seed spread" needs a spread


# ---------------------------------------------------------------------------- gradient flow


def test_gradient_norms_one_per_weight_layer_and_grads_cleared(batch):
    seed_everything(0)
    model = plain_net(8)
    norms = D.gradient_norms(model, *batch)
    assert len(norms) == 8 and all(n > 0 for n in norms)
    assert all(p.grad is None for p in model.parameters())


def test_gradient_vanishes_without_bn_but_not_with_bn_or_skips(batch):
    flow = D.gradient_flow((8, 32), *batch, seed=0)
    assert set(flow) == {"plain-8, no BN", "plain-32, no BN", "residual-32, no BN",
                         "plain-8, BN", "plain-32, BN", "residual-32, BN"}
    assert D.input_to_output_ratio(flow["plain-32, no BN"]) < 1e-8  # vanishes
    assert D.input_to_output_ratio(flow["plain-32, no BN"]) < D.input_to_output_ratio(flow["plain-8, no BN"])
    assert D.input_to_output_ratio(flow["plain-32, BN"]) > 1  # does not vanish with BN: it grows
    assert 1e-2 < D.input_to_output_ratio(flow["residual-32, no BN"]) < 1e2  # nearly flat


def test_gradient_flow_is_reproducible(batch):
    a = D.gradient_flow((8,), *batch, seed=3)
    b = D.gradient_flow((8,), *batch, seed=3)
    assert a == b


# ---------------------------------------------------------------------------- the sweep


def test_final_loss_is_mean_of_last_fifth():
    curve = list(range(10))
    assert D.final_loss(curve) == pytest.approx(8.5)  # last 2 of 10 steps
    assert D.final_loss([3.0]) == 3.0


def test_cli_smoke_sweep_writes_the_documented_json(tmp_path, capsys):
    out = tmp_path / "sweep.json"
    assert main(["degradation", "--profile", "smoke", "--seeds", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    cfg = D.settings("smoke")["sweep"]
    assert {"profile", "dataset", "source", "config", "runs", "meta", "final_train_loss_definition"} <= set(result)
    assert result["profile"] == "smoke" and result["dataset"] == "sample"
    assert set(result["config"]) == {"width", "batch_norm", "lr", "batch_size", "epochs"}
    assert result["config"]["epochs"] == cfg["epochs"]
    assert "last 20%" in result["final_train_loss_definition"]
    assert result["meta"]["profile"] == "smoke" and result["meta"]["n_train"] == cfg["train_limit"]
    assert len(result["runs"]) == 2 * len(cfg["depths"])
    steps = -(-cfg["train_limit"] // result["config"]["batch_size"]) * cfg["epochs"]
    for run in result["runs"]:
        assert set(run) == RUN_KEYS
        assert run["kind"] in ("plain", "residual") and run["depth"] in cfg["depths"] and run["seed"] == 0
        assert len(run["curve"]) == steps
        assert run["final_train_loss"] == pytest.approx(D.final_loss(run["curve"]), rel=1e-3)
        assert 0.0 <= run["test_acc"] <= 1.0
    assert "plain-2 " in capsys.readouterr().out


def test_sweep_refuses_zero_seeds():
    with pytest.raises(ConfigError, match="seeds"):
        D.run_sweep("smoke", seeds=0, verbose=False)


def test_one_training_run_learns_and_is_reproducible():
    data = D.sweep_data("smoke")
    a = D.train_depth_net("residual", 8, 0, data, epochs=1, device="cpu")
    b = D.train_depth_net("residual", 8, 0, data, epochs=1, device="cpu")
    assert a == b
    assert a["curve"][-1] < a["curve"][0]  # the loss goes down
    assert a["test_acc"] > 0.15  # better than chance after one epoch


def test_verdict_holds_and_fails_when_it_should():
    good = fake_result({("plain", 8, 0): 1.0, ("plain", 8, 1): 1.1, ("plain", 32, 0): 1.5, ("plain", 32, 1): 1.6,
                        ("residual", 8, 0): 0.5, ("residual", 8, 1): 0.5, ("residual", 32, 0): 0.2,
                        ("residual", 32, 1): 0.3})
    v = D.degradation_verdict(good)
    assert v["holds"] and v["deepest"] == 32 and v["reference_depth"] == 8 and v["spread"] == pytest.approx(0.1)
    noisy = dict(good, runs=[dict(r, final_train_loss=2.0) if (r["kind"], r["depth"], r["seed"]) == ("plain", 32, 1)
                             else r for r in good["runs"]])  # spread 0.5 > margin of seed 0
    assert not D.degradation_verdict(noisy)["holds"]
    bad_residual = dict(good, runs=[dict(r, final_train_loss=1.9) if (r["kind"], r["depth"]) == ("residual", 32)
                                    else r for r in good["runs"]])
    v = D.degradation_verdict(bad_residual)
    assert not v["holds"] and not any(p["residual_is_better"] for p in v["seeds"])


def test_summary_and_plots(tmp_figures, capsys):
    result = fake_result({("plain", 2, 0): 2.2, ("plain", 8, 0): 1.0, ("plain", 32, 0): 1.5,
                          ("residual", 2, 0): 2.2, ("residual", 8, 0): 0.5, ("residual", 32, 0): 0.2})
    rows = {(r["kind"], r["depth"]): r for r in D.summarize(result)}
    assert rows[("plain", 32)]["loss_mean"] == 1.5 and rows[("plain", 32)]["loss_spread"] == 0
    D.print_summary(result)
    D.print_verdict(result)
    assert "degradation shown for every seed" in capsys.readouterr().out
    D.plot_sweep_curves(result, name="t_curves")
    D.plot_sweep_depth(result, name="t_depth")
    D.plot_compare_sweeps({"live": result, "saved": result}, name="t_pair")
    assert {p.name for p in tmp_figures.iterdir()} == {"t_curves.png", "t_depth.png", "t_pair.png"}


# ---------------------------------------------------------------------------- the identity argument


def test_zero_init_residual_stack_is_exactly_the_identity():
    x = D.identity_features(8)
    assert x.shape == (8, 16, 7, 7) and (x >= 0).all()
    seed_everything(0)
    stack = D.identity_stack("residual, f=0", 8)
    assert torch.equal(stack(x), x)
    with pytest.raises(ConfigError, match="kind"):
        D.identity_stack("highway", 4)


def test_plain_stack_copies_worse_than_residual(tmp_figures):
    ident = D.identity_experiment(layers=(8,), steps=30, n=16)
    err = {r["kind"]: r for r in ident["runs"]}
    assert err["residual, f=0"]["errors"][0] == 0.0
    assert err["plain"]["final_error"] > 10 * err["residual"]["final_error"]
    assert err["plain"]["steps_to_target"] is None
    D.plot_identity(ident, name="t_identity")
    assert (tmp_figures / "t_identity.png").is_file()


# ---------------------------------------------------------------------------- exercise checks


def test_check_layer_gradient_norms_passes_the_solution_and_explains_failures():
    assert nb01.check_layer_gradient_norms(nb01.solution_layer_gradient_norms).passed

    def stub(model, images, labels):
        raise NotImplementedError

    report = nb01.check_layer_gradient_norms(stub)
    assert not report.passed and "not implemented yet" in str(report)

    def reversed_order(model, images, labels):
        return nb01.solution_layer_gradient_norms(model, images, labels)[::-1]

    assert "reverse order" in str(nb01.check_layer_gradient_norms(reversed_order))

    def crashes(model, images, labels):
        return model(images_typo)  # noqa: F821

    report = nb01.check_layer_gradient_norms(crashes)
    assert "NameError" in str(report) and "crashes" in str(report)


def test_check_mystery_guess():
    truth = {"A": "plain, BN", "B": "residual, no BN", "C": "plain, no BN"}
    assert nb01.check_mystery_guess(truth).passed
    assert "not answered yet" in str(nb01.check_mystery_guess({"A": None, "B": None, "C": None}))
    wrong = nb01.check_mystery_guess({"A": "plain, no BN", "B": "residual, no BN", "C": "plain, BN"})
    assert not wrong.passed and "Hint" in str(wrong)
    assert not nb01.check_mystery_guess({"A": "resnet", "B": "x", "C": "y"}).passed
    shapes = {k: nb01.flow_shape(k) for k in "ABC"}  # the curves really look like the answer says
    assert shapes == {"A": "grows", "B": "flat", "C": "vanishes"}
