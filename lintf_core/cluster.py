"""Dask distributed, the one scheduler: the book's notebooks run as its tasks, and on a cluster train()'s sweeps too.

`make book` starts a LocalCluster of one single-threaded worker process per core, or connects to a running scheduler
(`--scheduler tcp://host:8786`, or $LINTF_SCHEDULER). Where a scheduler is given, a notebook's kernel gets its
address in LINTF_SCHEDULER and train() splits the runs of a sweep it has to compute into chunks, one task each
(split_runs), then concatenates them: the same runs, the same numbers (a run does not depend on the runs beside it).
The client caches the result, so workers need no shared disk.
"""

import logging
import os
import re
import warnings
from contextlib import contextmanager

import dask

from .errors import ParameterError

SCHEDULER_VARIABLE = "LINTF_SCHEDULER"
# Dask's nanny exports MALLOC_TRIM_THRESHOLD_ to its workers (and into its own process's environment), which turns
# glibc's dynamic mmap threshold off: every large torch buffer is then mapped and zeroed afresh (torch's training
# slower by half; PERFORMANCE.md). The book's workers keep glibc's default.
MALLOC_VARIABLE = "MALLOC_TRIM_THRESHOLD_"
dask.config.set({f"distributed.nanny.pre-spawn-environ.{MALLOC_VARIABLE}": None,
                 # the workers' own housekeeping runs on the cores the notebooks compute on: no statistical profiler
                 # (a sample every 10 ms), a coarser system monitor and event-loop tick (PERFORMANCE.md)
                 "distributed.worker.profile.enabled": False,
                 "distributed.admin.system-monitor.interval": "5s",
                 "distributed.admin.tick.interval": "500ms"})
ADDRESS = re.compile(r"^(tcp|tls|ws|wss|inproc|ucx)://\S+$")


def scheduler_address(scheduler=None):
    """The scheduler to use: `scheduler`, else $LINTF_SCHEDULER, else None (a LocalCluster of our own)."""
    address = scheduler or os.environ.get(SCHEDULER_VARIABLE) or None
    if address is not None and not ADDRESS.match(address):
        raise ParameterError("scheduler", address, "a Dask scheduler's address such as tcp://host:8786")
    return address


@contextmanager
def client_of(scheduler=None, n_workers=None):
    """A dask.distributed Client: on the given scheduler (scheduler_address), else on a LocalCluster of `n_workers`
    worker processes of one thread each, closed on exit. Workers without a memory limit: a notebook's kernel is a
    child process of its worker, and a limit would have Dask restart a worker for memory that is not its own."""
    from distributed import Client, LocalCluster

    address = scheduler_address(scheduler)
    if address is not None:
        try:
            client = Client(address, timeout="20s", set_as_default=False)
        except OSError as error:
            raise SystemExit(f"scheduler: cannot reach {address} ({error}); start one with 'dask scheduler' "
                             "(README, 'On a cluster')") from None
        with client:
            yield client
        return
    with warnings.catch_warnings():  # port 8787 taken (another cluster): Dask serves the dashboard on another port
        warnings.filterwarnings("ignore", message="Port 8787 is already in use", category=UserWarning)
        local = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, memory_limit=0,
                             dashboard_address=":8787", silence_logs=logging.ERROR)
    with local, Client(local, set_as_default=False) as client:
        yield client


def dashboard(client):
    """The dashboard's address, or None where none is up (it needs bokeh, which requirements.txt installs)."""
    try:
        return client.dashboard_link if "dashboard" in client.scheduler_info()["services"] else None
    except Exception:
        return None


def total_threads(client):
    return sum(client.nthreads().values())


_SWEEP_CLIENTS = {}


def sweep_client():
    """The Client train() splits its sweeps over: one per process on $LINTF_SCHEDULER; None where it is unset (the
    default: make book's notebooks already fill every core)."""
    address = scheduler_address(os.environ.get(SCHEDULER_VARIABLE))
    if address is None:
        return None
    if address not in _SWEEP_CLIENTS:
        from distributed import Client

        _SWEEP_CLIENTS[address] = Client(address, timeout="20s", set_as_default=False)
    return _SWEEP_CLIENTS[address]


def split_runs(runs, n_chunks):
    """`runs` (seed, optimizer, lr) in at most `n_chunks` contiguous chunks, in order: whole seeds where there are
    enough of them (a seed's runs share its stream of prompts, drawn once per chunk), else single runs."""
    seeds = list(dict.fromkeys(seed for seed, _, _ in runs))
    groups = [[run for run in runs if run[0] == seed] for seed in seeds] if len(seeds) >= n_chunks else \
        [[run] for run in runs]
    n_chunks = max(1, min(n_chunks, len(groups)))
    size, extra = divmod(len(groups), n_chunks)
    chunks, start = [], 0
    for i in range(n_chunks):
        stop = start + size + (i < extra)
        chunks.append([run for group in groups[start:stop] for run in group])
        start = stop
    return chunks


def check_worker(expected):
    """On a worker, before it computes a chunk: it must compute as the client does (the same lintf_core numeric code,
    thread counts and CPU code path), or the chunks would not be the runs the client's cache key names."""
    from . import cache

    found = cache.computing_environment()
    if found != expected:
        differ = sorted(k for k in expected if found.get(k) != expected[k])
        raise RuntimeError(f"worker: computes with another {', '.join(differ)} than the client ({found} against "
                           f"{expected}); start workers from the same checkout with OMP_NUM_THREADS=1, "
                           "NUMBA_NUM_THREADS=1 and --nthreads 1 (README, 'On a cluster')")


if __name__ == "__main__":  # make worker: `dask worker`'s command line, with this module's Dask settings
    from distributed.cli.dask_worker import main

    main()
