"""Dask as the scheduler: a sweep split over a 2-worker LocalCluster gives the unsplit sweep's runs and numbers."""

import logging

import numpy as np
import pytest

from lintf_core import cluster, train
from lintf_core.errors import ParameterError


def test_split_runs_keeps_the_order_and_a_seed_together_where_there_are_enough_seeds():
    runs = [(s, o, v) for s in (0, 1, 2) for o in ("sgd", "adam") for v in (0.1, 0.2)]
    chunks = cluster.split_runs(runs, 2)
    assert [run for chunk in chunks for run in chunk] == runs
    assert [sorted({s for s, _, _ in chunk}) for chunk in chunks] == [[0, 1], [2]]
    single = [(7, "sgd", 0.1), (7, "adam", 0.1), (7, "adam", 0.2)]
    assert cluster.split_runs(single, 2) == [single[:2], single[2:]]  # one seed: single runs
    assert cluster.split_runs(single, 10) == [[run] for run in single]
    assert cluster.split_runs(runs, 1) == [runs]


def test_the_scheduler_is_an_address_or_a_one_line_error(monkeypatch):
    monkeypatch.delenv(cluster.SCHEDULER_VARIABLE, raising=False)
    assert cluster.scheduler_address(None) is None
    assert cluster.scheduler_address("tcp://10.0.0.2:8786") == "tcp://10.0.0.2:8786"
    monkeypatch.setenv(cluster.SCHEDULER_VARIABLE, "tcp://host:8786")
    assert cluster.scheduler_address(None) == "tcp://host:8786"
    with pytest.raises(ParameterError, match="scheduler: got 'host:8786'; allowed: a Dask scheduler's address"):
        cluster.scheduler_address("host:8786")


@pytest.fixture(scope="module")
def two_workers():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit=0, dashboard_address=":0",
                      silence_logs=logging.ERROR) as local:
        yield local.scheduler_address


def _same(a, b):
    for name in train._ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.shape == y.shape and np.array_equal(x, y, equal_nan=True), name
    assert a.optimizer == b.optimizer and a.setting == b.setting


_split = train._train_split


@pytest.mark.parametrize("seeds, lr", [((0, 1, 2), {"sgd": [0.01, 0.02], "adam": [0.005, 0.01]}),
                                       ((3,), None)])
def test_a_sweep_split_over_two_workers_equals_the_unsplit_run(two_workers, monkeypatch, seeds, lr):
    """Three seeds split by seed (seeds 0-1 on one worker, 2 on the other), one seed split by run."""
    kwargs = dict(seeds=seeds, n_iters=60, lr=lr, eval_every=20, iterate_every=30, eval_batch_size=200,
                  progress=False, use_cache=False)
    monkeypatch.delenv(cluster.SCHEDULER_VARIABLE, raising=False)
    whole = train.train("setting1", **kwargs)
    monkeypatch.setenv(cluster.SCHEDULER_VARIABLE, two_workers)
    client = cluster.sweep_client()
    calls = []
    monkeypatch.setattr(train, "_train_split", lambda *a: calls.append(a) or _split(*a))
    split = train.train("setting1", **kwargs)
    assert len(calls) == 1 and len(cluster.split_runs(calls[0][3], cluster.total_threads(client))) == 2
    _same(whole, split)
    assert whole.config == split.config


def test_a_split_sweep_is_cached_by_the_client(two_workers, monkeypatch, private_cache):
    monkeypatch.setenv(cluster.SCHEDULER_VARIABLE, two_workers)
    first = train.train("setting2", seeds=(0, 1), n_iters=30, eval_every=10, iterate_every=30, eval_batch_size=100,
                        progress=False)
    assert len(list(private_cache.glob("*.pt"))) == 1
    monkeypatch.delenv(cluster.SCHEDULER_VARIABLE)
    _same(first, train.train("setting2", seeds=(0, 1), n_iters=30, eval_every=10, iterate_every=30,
                             eval_batch_size=100, progress=False))


def test_a_worker_that_computes_otherwise_is_refused_in_one_line():
    from lintf_core import cache

    expected = cache.computing_environment()
    cluster.check_worker(expected)
    with pytest.raises(RuntimeError, match="worker: computes with another code_path"):
        cluster.check_worker({**expected, "code_path": {**expected["code_path"], "threads": {"torch": 8}}})
