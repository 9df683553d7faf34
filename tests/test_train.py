"""The batched training engine against the straightforward reference loop, and its bookkeeping."""

import numpy as np
import pytest
import torch

from lintf_core.bench import reference_train
from lintf_core.errors import ParameterError
from lintf_core.train import concatenate, train


@pytest.mark.parametrize("setting", ["setting1", "setting3", "sphere"])
def test_engine_matches_reference_loop(setting):
    """Same seeds, same data streams (the engine drawing every prompt, as the reference loop does): the batched
    engine with its fused kernel and the one-run-at-a-time token-level loop with torch.optim end at the same
    parameters (float32 round-off only)."""
    result = train(setting, seeds=[0, 1], n_iters=15, batch_size=64, eval_every=5, iterate_every=15,
                   sampler="prompts", progress=False, use_cache=False)
    for r in range(result.n_runs):
        params, losses, evaluations = reference_train(setting, result.optimizer[r], int(result.seed[r]),
                                                      float(result.lr[r]), 15, batch_size=64, eval_every=5,
                                                      use_cache=False)
        np.testing.assert_allclose(result.iterates[r, -1], params.numpy(), rtol=1e-3, atol=2e-5)
        np.testing.assert_allclose(result.train_loss[r], losses, rtol=1e-3)
        assert [t for t, _, _ in evaluations] == list(result.eval_iterations)
        np.testing.assert_allclose([m for _, m, _ in evaluations], result.eval_loss[r], rtol=1e-3)
        np.testing.assert_allclose([m for _, _, m in evaluations], result.eval_loss_median[r], rtol=1e-3)


def test_same_seed_shares_init_and_data_and_seeds_are_independent():
    both = train("setting1", seeds=[1, 3], n_iters=10, batch_size=32, eval_every=5, progress=False,
                 use_cache=False)
    alone = train("setting1", seeds=[3], n_iters=10, batch_size=32, eval_every=5, progress=False, use_cache=False)
    sgd, adam = both.runs(optimizer="sgd", seed=3), both.runs(optimizer="adam", seed=3)
    # SGDM and Adam of one seed start from the same point and see the same first batch
    assert np.array_equal(both.iterates[sgd[0], 0], both.iterates[adam[0], 0])
    assert both.train_loss[sgd[0], 0] == both.train_loss[adam[0], 0]
    assert both.eval_loss[sgd[0], 0] == both.eval_loss[adam[0], 0]
    # seed 3's runs do not depend on whether seed 1 trained beside them
    for opt in ("sgd", "adam"):
        np.testing.assert_allclose(both.eval_loss[both.runs(optimizer=opt, seed=3)],
                                   alone.eval_loss[alone.runs(optimizer=opt)], rtol=1e-5)


def test_runs_trained_apart_concatenate_to_the_runs_trained_together():
    """Fig. 8 reuses its rate search's runs: a run's record is the same bits whichever runs train beside it, so the
    search's seed-1 runs at one rate plus seed 3 trained alone equal both seeds trained together."""
    kwargs = dict(n_iters=12, batch_size=32, eval_every=4, iterate_every=6, progress=False, use_cache=False)
    search = train("setting1", seeds=[1], lr={"sgd": [0.01, 0.02], "adam": [0.001, 0.002]}, **kwargs)
    best = {"sgd": [0.02], "adam": [0.001]}
    together = train("setting1", seeds=[1, 3], lr=best, **kwargs)
    rest = train("setting1", seeds=[3], lr=best, **kwargs)
    reused = search.select([r for r in range(search.n_runs) if search.lr[r] in (0.02, 0.001)])
    joined = concatenate([reused, rest])
    assert joined.config == together.config and joined.optimizer == together.optimizer
    for name in ("lr", "seed", "eval_loss", "eval_loss_median", "train_loss", "grad_norm", "iterates", "steps"):
        assert np.array_equal(getattr(joined, name), getattr(together, name), equal_nan=True), name
    with pytest.raises(ValueError, match="differ in more than their runs"):
        concatenate([reused, train("setting1", seeds=[3], lr=best, **{**kwargs, "n_iters": 6})])


@pytest.mark.parametrize("parametrization", [None, "full"])  # the fused kernel; autograd through model.py
def test_diverged_runs_are_retired_with_the_same_records(parametrization, monkeypatch):
    """A run whose parameters are all NaN is no longer computed (train._train's retire_diverged): its records are
    the NaN the full computation gives, and the runs beside it are unchanged bit for bit."""
    from lintf_core import train as train_module

    kwargs = dict(seeds=[0, 1], n_iters=40, lr={"sgd": [0.01, 200.0], "adam": [0.001, 20.0]}, batch_size=32,
                  eval_every=5, iterate_every=10, parametrization=parametrization, progress=False, use_cache=False)
    retired = train("setting1", **kwargs)
    full = train_module._train
    monkeypatch.setattr(train_module, "_train", lambda *a, **k: full(*a, **k, retire_diverged=False))
    computed = train("setting1", **kwargs)
    assert np.isnan(retired.iterates[:, -2]).all(1).sum() >= 2  # some runs diverged well before the end
    assert np.isfinite(retired.eval_loss[retired.lr < 1]).all()
    for name in ("eval_loss", "eval_loss_se", "eval_loss_median", "train_loss", "grad_norm", "iterates", "steps"):
        assert np.array_equal(getattr(retired, name), getattr(computed, name), equal_nan=True), name


def test_readings_trained_together_equal_each_reading_trained_alone():
    """Figures 12-14 train their two readings' runs as one batch (train_profile_readings), one shared rate once."""
    from lintf_core import profiles
    from lintf_core.train import train_profile, train_profile_readings

    config = profiles.resolve("quick", seeds=[0, 2], n_iters=8, eval_every=4)
    readings = {"a": None, "b": {"sgd": 0.05, "adam": 0.01}, "c": {"sgd": 0.02}}
    together = train_profile_readings("depth2", config, readings)
    for name, lr in readings.items():
        alone = train_profile("depth2", config, lr=lr)
        assert together[name].config == alone.config and together[name].optimizer == alone.optimizer
        for field in ("lr", "seed", "eval_loss", "train_loss", "iterates", "steps"):
            assert np.array_equal(getattr(together[name], field), getattr(alone, field), equal_nan=True), (name, field)


def test_learning_rate_grid_and_recording_strides():
    result = train("setting2", seeds=[0, 1], n_iters=20, lr={"sgd": 0.01, "adam": [0.001, 0.01]}, batch_size=16,
                   eval_every=5, iterate_every=8, progress=False, use_cache=False)
    assert result.n_runs == 6
    assert sorted(result.lr[result.runs(optimizer="adam")]) == [0.001, 0.001, 0.01, 0.01]
    assert list(result.eval_iterations) == [0, 5, 10, 15, 20]
    assert list(result.iterate_iterations) == [0, 8, 16, 20]
    assert result.eval_loss.shape == (6, 5) and result.train_loss.shape == (6, 20)
    assert result.iterates.shape == (6, 4, 150)
    assert np.all(result.eval_loss_se > 0)


def test_setting_learning_rates_follow_the_code_or_the_paper():
    code = train("setting1", seeds=[0], n_iters=0, progress=False, use_cache=False)
    paper = train("setting1", seeds=[0], n_iters=0, lr_source="paper", progress=False, use_cache=False)
    assert dict(zip(code.optimizer, code.lr)) == {"sgd": 0.02, "adam": 0.02}
    assert dict(zip(paper.optimizer, paper.lr)) == {"sgd": 0.02, "adam": 0.005}


def test_training_lowers_the_loss():
    result = train("setting1", seeds=[0], n_iters=150, batch_size=256, eval_every=150, progress=False,
                   use_cache=False)
    assert np.all(result.eval_loss[:, -1] < 0.5 * result.eval_loss[:, 0])


@pytest.mark.parametrize("kwargs, name", [
    (dict(setting="setting9"), "setting"),
    (dict(setting="setting1", n_iters=-1), "n_iters"),
    (dict(setting="setting1", lr=0.0), "lr"),
    (dict(setting="setting1", lr={"adam": -1.0}), "lr[adam]"),
    (dict(setting="setting1", optimizers=["rmsprop"]), "optimizer"),
    (dict(setting="setting1", lr_source="blog"), "lr_source"),
    (dict(setting="setting1", seeds=[]), "seeds"),
    (dict(setting="setting1", batch_size=-5), "batch_size"),
    (dict(setting="large"), "lr"),
])
def test_bad_input_is_one_line_naming_parameter_and_allowed_values(kwargs, name):
    with pytest.raises(ParameterError) as error:
        train(progress=False, **kwargs)
    message = str(error.value)
    assert message.startswith(f"{name}:") and "allowed:" in message and "\n" not in message


def test_results_are_cached_and_reused(private_cache):
    a = train("setting2", seeds=[0], n_iters=5, batch_size=8, progress=False)
    assert len(list(private_cache.glob("*.pt"))) == 1
    b = train("setting2", seeds=[0], n_iters=5, batch_size=8, progress=False)
    assert np.array_equal(a.iterates, b.iterates) and a.config == b.config
    train("setting2", seeds=[0], n_iters=6, batch_size=8, progress=False)
    assert len(list(private_cache.glob("*.pt"))) == 2


def test_late_loss_and_spike_detection():
    result = train("setting1", seeds=[0, 1], n_iters=0, progress=False, use_cache=False)
    result.eval_iterations = np.arange(0, 101, 10)
    result.eval_loss = np.array([[5, 4, 3, 2, 1, 1, 1, 1, 1, 2, 100.0]] * 2 + [[5, 4, 3, 2, 1, 1, 1, 1, 1, 1, 1]] * 2)
    # the last 10% are iterations 90 and 100: median of (2, 100) and of (1, 1)
    np.testing.assert_allclose(result.late_loss(seed=0), [51.0, 51.0])
    np.testing.assert_allclose(result.late_loss(seed=1), [1.0, 1.0])
    assert result.spiking_runs(factor=10).tolist() == [True, True, False, False]


def test_heavy_tailed_covariates_train_as_setting3():
    """The covariate-tails page reads Setting 3's runs (Figure 2's, cached) for its heavy-tailed covariates: the same
    law, rates, clipping and streams give the same numbers, bit for bit."""
    heavy = train("heavy_tailed", seeds=[0, 1], n_iters=20, eval_every=10, use_cache=False, progress=False)
    setting3 = train("setting3", seeds=[0, 1], n_iters=20, eval_every=10, use_cache=False, progress=False)
    np.testing.assert_array_equal(heavy.eval_loss, setting3.eval_loss)
    np.testing.assert_array_equal(heavy.iterates, setting3.iterates)


def test_training_in_float64_is_the_same_run_in_double_precision():
    """The depth page re-runs a diverged run in float64 (train's dtype): the same initialization, prompts and rate,
    double-precision arithmetic; a few steps agree with float32 to its precision, and every record is float64."""
    options = dict(optimizers=["adam"], seeds=[0], n_iters=6, lr={"adam": 0.05}, batch_size=100, eval_every=2,
                   eval_batch_size=100, iterate_every=2, use_cache=False, progress=False)
    runs32, runs64 = train("depth6", **options), train("depth6", dtype="float64", **options)
    assert runs32.iterates.dtype == np.float32 and runs64.iterates.dtype == np.float64
    assert runs64.eval_loss.dtype == np.float64 and runs64.train_loss.dtype == np.float64
    np.testing.assert_array_equal(runs64.iterates[:, 0], runs32.iterates[:, 0].astype(np.float64))
    np.testing.assert_allclose(runs64.train_loss, runs32.train_loss, rtol=1e-4)
    np.testing.assert_allclose(runs64.iterates, runs32.iterates, rtol=1e-3, atol=1e-5)
    with pytest.raises(ParameterError, match="dtype"):
        train("depth6", dtype="float16", **options)


def test_the_engine_in_float64_equals_the_readable_model_in_float64():
    """The fused kernels are compiled for the parameters' dtype: in float64 their loss and gradient equal model.py's
    autograd in float64 to double precision (not only to float32's)."""
    from lintf_core import engine, model
    from lintf_core.data import EVAL, PromptStatistics, PromptStream, prompt_statistics
    from lintf_core.model import Architecture, init_params
    from lintf_core.settings import get_setting

    setting = get_setting("depth6")
    arch = Architecture.of(setting)
    theta = init_params(arch, range(2), 0.2).double()
    stats = prompt_statistics(PromptStream(setting, 0, EVAL).sample(50))
    stats = PromptStatistics(stats.G.double(), stats.z_query.double(), stats.target.double())
    loss, grad = engine.loss_and_grad(theta, arch, stats)
    loss_ref, grad_ref = model.loss_and_grad(theta, arch, stats)
    assert grad.dtype == torch.float64
    np.testing.assert_allclose(loss, loss_ref, rtol=1e-10)
    np.testing.assert_allclose(grad, grad_ref, rtol=1e-8, atol=1e-10 * grad_ref.abs().max().item())


def test_the_learning_rate_experiment_trains_the_verdict_seeds_at_the_grids_best_rates():
    """Figures 2, 4 and 5 diagnose a failing claim at the paper's rule applied at the full horizon: the best of Table
    2's rate x 2^k (k = -5..4) by verdicts.grid_best, then the verdict seeds at those rates, the grid's seeds taken
    from the grid: the same runs, bit for bit, as training every verdict seed afresh at the best rates."""
    from lintf_core import profiles, verdicts
    from lintf_core.settings import get_setting
    from lintf_core.train import _ARRAYS, full_horizon_grid, rates_at_full_horizon, train_at_full_horizon_rates, \
        train_verdict_seeds

    config = profiles.resolve("quick", n_iters=20, seeds=[0], verdict_seeds=[0, 1, 2], horizon_seeds=[1],
                              eval_every=10)
    best = rates_at_full_horizon("setting1", config)
    grid, grid_runs = full_horizon_grid("setting1", config)
    assert best == {opt: verdicts.grid_best(grid_runs, opt, grid[opt])["best"] for opt in grid}
    assert all(any(np.isclose(best[opt], v) for v in grid[opt]) for opt in grid)
    assert grid["adam"][5] == get_setting("setting1").learning_rate("adam", "paper")  # k = 0 is Table 2's rate
    assert sorted(set(grid_runs.seed)) == [1] and grid_runs.eval_iterations.tolist() == [0, 10, 20]
    verdict_runs, _ = train_verdict_seeds("setting1", config)
    found, used, runs = train_at_full_horizon_rates("setting1", config, verdict_runs)
    assert found == best and used == {"sgd": 0.02, "adam": 0.02}  # the code's rates
    afresh = train_verdict_seeds("setting1", config, lr=best)[0]
    assert runs.seed.tolist() == afresh.seed.tolist() == [0, 0, 1, 1, 2, 2]
    assert runs.optimizer == afresh.optimizer and runs.config == afresh.config
    for name in _ARRAYS:
        np.testing.assert_array_equal(getattr(runs, name), getattr(afresh, name))


def test_eval_index_and_the_late_losses_of_either_metric():
    from lintf_core import verdicts

    runs = train("setting1", seeds=[0], n_iters=20, eval_every=5, use_cache=False, progress=False)
    assert runs.eval_index(15) == 3 and runs.eval_iterations[runs.eval_index(20)] == 20
    with pytest.raises(ParameterError, match="iteration"):
        runs.eval_index(7)
    for metric in ("eval_loss", "eval_loss_median"):
        np.testing.assert_array_equal(verdicts.late_losses(runs, "adam", metric=metric),
                                      runs.late_loss("adam", metric=metric))


def test_reference_evaluations_are_reference_trains_evaluations():
    from lintf_core.bench import reference_evaluations

    config = {"batch_size": 50, "eval_every": 5}
    got = reference_evaluations("setting1", "adam", 0, 0.01, 10, config, use_cache=False)
    _, _, evaluations = reference_train("setting1", "adam", 0, 0.01, 10, batch_size=50, eval_every=5, use_cache=False)
    assert got["iterations"].tolist() == [0, 5, 10]
    np.testing.assert_array_equal(got["mean"], [m for _, m, _ in evaluations])
    np.testing.assert_array_equal(got["median"], [m for _, _, m in evaluations])
