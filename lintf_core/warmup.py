"""`python -m lintf_core compile`: numba's kernels (engine/, sampler.py) compiled into its cache (NUMBA_CACHE_DIR)
before anything runs, one family of kernels per process, on every core at once.

A kernel compiles on its first call, one at a time in the process that needs it (single-threaded LLVM), and that
is minutes on a fresh clone. Compiling needs no data, so the families can compile side by side: each task here calls
the engine on a few prompts of exactly the types the book and the tests pass (float32, the same array layouts),
which compiles and caches its kernels; later processes load them. No torch work runs, so the processes do not
compete for threads. A kernel whose cache entry already exists just loads.
"""

import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context

import numpy as np

from . import cache


def _sparse(dtype):
    import torch

    from . import engine
    from .data import EVAL, PromptStream
    from .model import Architecture, init_params
    from .optim import init_state
    from .sampler import sample_statistics
    from .settings import get_setting

    setting = get_setting("setting1")
    arch = Architecture.of(setting)
    stats = sample_statistics([PromptStream(setting, 0, EVAL)], 8)
    theta = init_params(arch, [0], 0.1).to(getattr(torch, dtype))
    engine.loss_and_grad(theta, arch, stats)
    engine.clip_and_step(theta, theta, init_state(theta, ["adam"], [0.1], [1.0]))  # the loop's optimizer step


def _sparse_hessians():
    from . import engine
    from .data import EVAL, PromptStream
    from .model import Architecture, init_params
    from .sampler import sample_statistics
    from .settings import get_setting

    setting = get_setting("setting1")
    arch = Architecture.of(setting)
    engine.hessians(init_params(arch, [0], 0.1), arch, sample_statistics([PromptStream(setting, 0, EVAL)], 8))


def _samplers():
    from .data import TRAIN, PromptStream
    from .sampler import sample_statistics
    from .settings import get_setting

    for name in ("setting1", "sphere", "setting3"):  # Gaussian, spherical, heavy-tailed covariates
        sample_statistics([PromptStream(get_setting(name), 0, TRAIN)], 4)


def _full():
    from . import engine
    from .data import EVAL, PromptStream
    from .model import Architecture, init_params
    from .settings import get_setting

    setting = get_setting("nonlinear")
    arch = Architecture.of(setting)
    engine.loss_and_grad(init_params(arch, [0], 0.1), arch, PromptStream(setting, 0, EVAL).sample(8))


def _full_hessians():
    from . import engine
    from .data import EVAL, PromptStream
    from .model import Architecture, init_params
    from .settings import get_setting

    setting = get_setting("nonlinear")
    arch = Architecture.of(setting)
    engine.hessians(init_params(arch, [0], 0.1), arch, PromptStream(setting, 0, EVAL).sample(8))


def _tokens(dtype):
    import torch

    from . import engine
    from .data import EVAL, PromptStream, stack_prompts
    from .model import Architecture, init_params
    from .settings import get_setting

    setting = get_setting("setting1")
    arch = Architecture.of(setting, attention="softmax")
    prompts = stack_prompts([PromptStream(setting, 0, EVAL).sample(8)])
    if dtype == "float64":
        prompts.x, prompts.w, prompts.x_query = prompts.x.double(), prompts.w.double(), prompts.x_query.double()
    engine.loss_and_grad(init_params(arch, [0], 0.1).to(getattr(torch, dtype)), arch, prompts)


# name: (what it compiles, the function); roughly largest first by their cold compile times (PERFORMANCE.md), so
# that the pool ends together
TASKS = {
    "full_hessians": _full_hessians,
    "sparse_hessians": _sparse_hessians,
    "sparse": lambda: _sparse("float32"),
    "sparse_float64": lambda: _sparse("float64"),  # the depth page's precision re-runs
    "tokens": lambda: _tokens("float32"),
    "tokens_float64": lambda: _tokens("float64"),  # the tests' float64 check of the token-level kernel only
    "samplers": _samplers,
    "full": _full,
}
BOOK_TASKS = [name for name in TASKS if name != "tokens_float64"]


def _run_task(name):
    start = time.perf_counter()
    TASKS[name]()
    return name, time.perf_counter() - start


def compile_kernels(tasks=None, processes=None, quiet=False):
    """Run the tasks (default: the book's) in a pool of `processes` (default: one per core) fresh processes."""
    tasks = list(BOOK_TASKS if tasks is None else tasks)
    if os.environ.get("NUMBA_CACHE_DIR"):
        cache.check_writable(os.environ["NUMBA_CACHE_DIR"], "numba's cache", "NUMBA_CACHE_DIR")
    processes = processes or min(len(tasks), os.cpu_count() or 1)
    start = time.perf_counter()
    with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
        for future in as_completed([pool.submit(_run_task, name) for name in tasks]):
            name, seconds = future.result()
            if not quiet:
                print(f"compiled {name} in {seconds:.1f} s", file=sys.stderr, flush=True)
    if not quiet:
        print(f"numba kernels ready in {time.perf_counter() - start:.1f} s ({processes} processes, cache "
              f"{os.environ.get('NUMBA_CACHE_DIR', 'beside the sources')})", file=sys.stderr, flush=True)
    return np.round(time.perf_counter() - start, 1)
