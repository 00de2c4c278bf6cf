"""Tests for course_lib.lessons.degradation (notebook 01 and ``python -m course_lib degradation``). CPU, < 60 s."""
from __future__ import annotations

import json
import math

import matplotlib

matplotlib.use("Agg")

import pytest
import torch

import course_lib.lessons.degradation as D
from course_lib.__main__ import main
from course_lib.errors import ConfigError
from course_lib.models import plain_net
from course_lib.profiles import PROFILES, settings
from course_lib.training import Protocol, SpeedOptions, fit, seed_everything

RUN_KEYS = {"kind", "depth", "seed", "epochs", "steps", "final_train_loss", "test_acc", "gradient_ratio", "curve"}


@pytest.fixture(scope="module")
def batch():
    return D.digit_batch(64)


@pytest.fixture(scope="module")
def flow(batch):
    return D.gradient_flow((8, 32), *batch, seed=0)


@pytest.fixture
def tmp_figures(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_FIGURES_DIR", str(tmp_path))
    return tmp_path


def fake_result(losses: dict[tuple[str, int, int, int], float]) -> dict:
    """A sweep result with the given final losses, keyed (kind, depth, seed, steps)."""
    runs = [dict(kind=k, depth=d, seed=s, epochs=n // 32, steps=n, final_train_loss=v, test_acc=0.5,
                 curve=[2.3] * (n - 1) + [v]) for (k, d, s, n), v in losses.items()]
    return dict(profile="smoke", dataset="sample", source="test", runs=runs, meta={},
                config=dict(width=16, batch_norm=True, lr=0.1, lr_schedule="constant", batch_size=128))


def two_budget_result(deep_small=2.0, deep_large=1.5, residual_large=0.2, noisy_seed_loss=None) -> dict:
    """Plain-8 / plain-32 / residual-32, seeds 0 and 1, budgets 64 and 192 steps."""
    losses = {}
    for seed in (0, 1):
        jitter = 0.05 * seed
        losses |= {("plain", 8, seed, 64): 1.5 + jitter, ("plain", 8, seed, 192): 0.4 + jitter,
                   ("plain", 32, seed, 64): deep_small + jitter, ("plain", 32, seed, 192): deep_large + jitter,
                   ("residual", 8, seed, 64): 1.0, ("residual", 8, seed, 192): 0.3,
                   ("residual", 32, seed, 64): 0.5, ("residual", 32, seed, 192): residual_large}
    if noisy_seed_loss is not None:
        losses[("plain", 32, 1, 192)] = noisy_seed_loss
    return fake_result(losses)


# ---------------------------------------------------------------------------- settings


def test_settings_cover_every_profile_and_the_cpu_budgets_are_three_fold():
    for name in PROFILES:
        row = settings(D.SETTINGS, name)
        assert set(row) == {"sweep", "gradient", "identity"}
        assert all(d % 2 == 0 and d >= 2 for d in row["sweep"]["depths"])
        assert list(row["sweep"]["budgets"]) == sorted(row["sweep"]["budgets"]) and len(row["sweep"]["budgets"]) >= 2
    cpu = settings(D.SETTINGS, "cpu")["sweep"]
    assert cpu["seeds"] >= 3  # "by more than the seed-to-seed spread" needs a spread
    assert cpu["budgets"][-1] >= 3 * cpu["budgets"][0]  # the long budget is at least 3x the short one
    assert max(settings(D.SETTINGS, "full")["sweep"]["depths"]) == 56
    with pytest.raises(ConfigError, match="kind"):
        D.build_net("highway", 8)


# ---------------------------------------------------------------------------- gradient flow


def test_gradient_norms_one_per_weight_layer_and_grads_cleared(batch):
    seed_everything(0)
    model = plain_net(8)
    norms = D.gradient_norms(model, *batch)
    assert len(norms) == 8 and all(n > 0 for n in norms)
    assert all(p.grad is None for p in model.parameters())


def test_tiny_gradients_are_measured_not_rounded_to_zero(batch):
    seed_everything(0)
    norms = D.gradient_norms(D.regime_net("plain", 56, "no BN, default init"), *batch)
    assert all(n > 0 for n in norms)  # a float32 norm would give exact zeros for the first layers
    assert 1e-30 < D.input_to_output_ratio(norms) < 1e-15


def test_output_gradients_follow_the_variance_argument_and_biases_explain_the_weight_gradients(batch):
    rows = {(r["regime"], r["depth"]): r for r in D.prediction_rows(*batch, depths=(32,))}
    default, he = rows["no BN, default init", 32], rows["no BN, He init", 32]
    assert default["predicted"] == pytest.approx(math.log10(math.sqrt(6)), abs=0.02)
    assert abs(default["output"] - default["predicted"]) < 0.1  # the backward signal: what the argument predicts
    assert abs(default["weight_zero_bias"]) < 0.1 < default["weight"]  # zero biases: the inputs shrink too
    assert abs(he["output"]) < 0.1 and abs(he["predicted"]) < 0.02
    seed_everything(0)
    assert len(D.output_gradient_norms(D.regime_net("plain", 8, "BN, He init"), *batch)) == 8


def test_three_regimes_vanish_stay_level_and_explode(flow):
    regimes = list(D.REGIMES)
    assert set(flow) == {f"{kind}-{d}, {r}" for r in regimes for kind, d in
                         (("plain", 8), ("plain", 32), ("residual", 32))}
    ratio = {k: D.input_to_output_ratio(v) for k, v in flow.items()}
    # default init, no BN: vanishes, more with depth, at about the 0.39 orders per layer the variance predicts
    assert ratio["plain-32, no BN, default init"] < 1e-8 < ratio["plain-8, no BN, default init"]
    assert 0.3 < D.orders_per_layer(flow["plain-32, no BN, default init"]) < 0.6
    # He init, no BN: within a small factor at every depth
    for depth in (8, 32):
        assert 0.1 < ratio[f"plain-{depth}, no BN, He init"] < 10
        assert abs(D.orders_per_layer(flow[f"plain-{depth}, no BN, He init"])) < 0.1
    # BN: grows toward the input, more with depth (exploding)
    for init in ("default init", "He init"):
        assert ratio[f"plain-32, BN, {init}"] > 3 * ratio[f"plain-8, BN, {init}"] > 0
        assert ratio[f"plain-32, BN, {init}"] > 10
    # the residual net stays within a small factor without BN
    assert 1e-2 < ratio["residual-32, no BN, default init"] < 1e2


def test_predicted_orders_per_layer_follow_from_the_weights():
    seed_everything(0)
    assert D.predicted_orders_per_layer(D.regime_net("plain", 32, "no BN, default init")) == pytest.approx(
        math.log10(math.sqrt(6)), abs=0.02)  # Var(w) = 1/(3 fan_in): variance x 1/6 per layer
    assert D.predicted_orders_per_layer(D.regime_net("plain", 32, "no BN, He init")) == pytest.approx(0, abs=0.02)


def test_orders_per_layer_skips_exact_zeros_and_reads_slopes():
    norms = [1.0] + [10.0 ** (-0.5 * i) for i in range(10)][::-1] + [1.0]  # body rises 0.5 orders per layer
    assert D.orders_per_layer(norms) == pytest.approx(0.5)
    assert D.orders_per_layer([1.0, 0.0, 0.0, 1e-3, 1e-2, 1.0]) == pytest.approx(1.0)
    assert math.isnan(D.orders_per_layer([1.0, 0.0, 1.0]))


def test_gradient_flow_is_reproducible(batch):
    assert D.gradient_flow((8,), *batch, seed=3) == D.gradient_flow((8,), *batch, seed=3)


def test_gradient_table_and_plot(flow, tmp_figures, capsys):
    D.print_gradient_ratios(flow)
    out = capsys.readouterr().out
    assert "plain-32, BN, He init" in out and "grows" in out and "shrinks" in out
    D.plot_gradient_flow(flow, name="t_flow")
    assert (tmp_figures / "t_flow.png").is_file()


# ---------------------------------------------------------------------------- the sweep


def test_final_loss_is_mean_of_last_fifth():
    assert D.final_loss(list(range(10))) == pytest.approx(8.5)  # last 2 of 10 steps
    assert D.final_loss([3.0]) == 3.0


def test_a_short_budget_is_exactly_a_separate_short_run():
    data = D.sweep_data("smoke")
    both = D.train_depth_net("plain", 4, 0, data, (1, 3), device="cpu")
    short = D.train_depth_net("plain", 4, 0, data, (1,), device="cpu")
    long = D.train_depth_net("plain", 4, 0, data, (3,), device="cpu")
    assert both == short + long
    assert both[1]["curve"][:both[0]["steps"]] == both[0]["curve"] and 3 * both[0]["steps"] == both[1]["steps"]
    seed_everything(0)
    curve = []
    fit(plain_net(4), data, Protocol(epochs=3, batch_size=128, lr=0.1, seed=0), SpeedOptions(device="cpu"),
        progress=False, step_losses=curve)
    assert long[0]["final_train_loss"] == pytest.approx(D.final_loss(curve), rel=1e-12)  # it is fit's run


def test_cli_smoke_sweep_writes_steps_next_to_every_loss(tmp_path, capsys):
    out = tmp_path / "sweep.json"
    assert main(["degradation", "--profile", "smoke", "--seeds", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    cfg = settings(D.SETTINGS, "smoke")["sweep"]
    assert {"profile", "dataset", "source", "config", "runs", "meta", "final_train_loss_definition"} <= set(result)
    assert result["profile"] == "smoke" and result["dataset"] == "sample"
    per_epoch = -(-cfg["train_limit"] // result["config"]["batch_size"])
    assert result["config"]["budgets"] == [dict(epochs=e, steps=e * per_epoch) for e in cfg["budgets"]]
    assert result["config"]["lr_schedule"] == "constant"
    assert "last 20%" in result["final_train_loss_definition"]
    assert result["meta"]["profile"] == "smoke" and result["meta"]["n_train"] == cfg["train_limit"]
    assert len(result["runs"]) == 2 * len(cfg["depths"]) * len(cfg["budgets"])
    for run in result["runs"]:
        assert set(run) == RUN_KEYS
        assert run["steps"] == run["epochs"] * per_epoch == len(run["curve"])
        assert run["final_train_loss"] == pytest.approx(D.final_loss(run["curve"]), rel=1e-3)
        correct = run["test_acc"] * cfg["test_limit"]  # an accuracy over the cut test set: a whole number right
        assert correct == pytest.approx(round(correct)) and 0 < correct <= cfg["test_limit"]
        assert run["gradient_ratio"] > 0
    printed = capsys.readouterr().out
    assert "plain-4 " in printed and "seed spread" in printed and "after 12 SGD steps" in printed


def test_sweep_refuses_zero_seeds():
    with pytest.raises(ConfigError, match="seeds"):
        D.run_sweep("smoke", seeds=0, verbose=False)


def test_verdict_holds_when_the_gap_stays_and_fails_otherwise():
    v = D.degradation_verdict(two_budget_result())
    assert v["holds"] and v["deepest"] == 32 and v["reference_depth"] == 8 and v["budgets"] == [64, 192]
    assert v["spread"] == pytest.approx(0.05) and v["seeds"][0]["gap"] == pytest.approx(1.1)
    assert v["seeds"][0]["gap_small"] == pytest.approx(0.5)
    assert v["seeds"][0]["gap_widened"] and v["welch_p"] < 0.05
    noisy = D.degradation_verdict(two_budget_result(noisy_seed_loss=3.0))  # spread 1.5 > the gap of seed 0
    assert not noisy["holds"] and not noisy["seeds"][0]["deeper_plain_is_worse"]
    worse_residual = D.degradation_verdict(two_budget_result(residual_large=1.9))
    assert not worse_residual["holds"] and not any(p["residual_is_better"] for p in worse_residual["seeds"])
    slow_start = D.degradation_verdict(two_budget_result(deep_small=2.4, deep_large=0.6))  # gap 0.9 -> 0.2
    assert not slow_start["holds"] and not any(p["gap_widened"] for p in slow_start["seeds"])
    assert all(p["deeper_plain_is_worse"] for p in slow_start["seeds"])  # only the third fact fails
    narrowed = D.degradation_verdict(two_budget_result(deep_small=3.0))  # gap 1.5 -> 1.1: narrowed
    assert not narrowed["holds"] and all(p["deeper_plain_is_worse"] and not p["gap_widened"] for p in narrowed["seeds"])


def test_verdict_needs_two_depths():
    with pytest.raises(ConfigError, match="two depths"):
        D.degradation_verdict(fake_result({("plain", 8, 0, 64): 1.0, ("residual", 8, 0, 64): 0.5}))


def test_summary_verdict_text_and_plots(tmp_figures, capsys):
    result = two_budget_result()
    rows = {(r["kind"], r["depth"]): r for r in D.summarize(result)}
    assert rows[("plain", 32)]["steps"] == 192 and rows[("plain", 32)]["loss_mean"] == pytest.approx(1.525)
    assert rows[("plain", 32)]["loss_sd"] == pytest.approx(0.05 / 2 ** 0.5)
    assert rows[("plain", 32)]["accs"] == [0.5, 0.5] and rows[("plain", 32)]["acc_sd"] == 0.0
    D.print_summary(result | dict(meta=dict(n_test=1000)))  # each seed's accuracy with its own Wilson interval
    assert "plain-32  loss 1.525 +- 0.035 | test 50.0 +-  0.0 | 50.0 [46.9, 53.1], 50.0 [46.9, 53.1]" in \
        capsys.readouterr().out
    D.print_summary(result)
    D.print_verdict(result)
    D.print_catch_up(result)
    D.print_trained_gradients(result)
    out = capsys.readouterr().out
    assert "after 64 SGD steps" in out and "after 192 SGD steps" in out
    assert "did not narrow from 64 to 192 steps" in out and "Welch" in out
    assert "plain-32 after k times the steps vs plain-8 after 64 steps" in out and "k = 3" in out
    D.plot_sweep_curves(result, name="t_curves")
    D.plot_sweep_depth(result, name="t_depth")
    assert {p.name for p in tmp_figures.iterdir()} == {"t_curves.png", "t_depth.png"}


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
