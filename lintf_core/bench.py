"""`python -m lintf_core bench`: the engine's speed as a ratio against a straightforward reference loop.

The reference is the authors' structure: one run at a time, token-level (N+1)x(N+1) attention scores, autograd and
torch.optim with manual global clipping. It shares nothing with the engine but the prompt streams, so it doubles
as an independent check of the engine (tests/test_train.py). Timings are medians of repeated rounds measured in
one process: compare the ratio, not absolute times across machines.
"""

import statistics
import time

import torch

from .data import EVAL, INIT, TRAIN, PromptStream, child_seed, input_matrix
from .settings import get_setting


def reference_forward(params, Z):
    """A direct transcription of Eq. (7)-(8) for one run. params: (L, 2, d, d) sparse blocks; Z: (B, d+1, n+1)."""
    L, _, d, _ = params.shape
    n = Z.shape[-1] - 1
    M = torch.eye(n + 1)
    M[n, n] = 0.0
    for layer in range(L):
        P = torch.zeros(d + 1, d + 1)
        P[d, d] = 1.0
        P = P + torch.nn.functional.pad(params[layer, 0], (0, 1, 0, 1))
        Q = torch.nn.functional.pad(params[layer, 1], (0, 1, 0, 1))
        Z = Z + (P @ Z @ M @ (Z.transpose(-1, -2) @ Q @ Z)) / n
    return -Z[:, d, n]


def reference_train(setting, optimizer, seed, lr, n_iters, batch_size=None, clip=None, eval_every=None,
                    eval_batch_size=1000, eval_seed=99):
    """One run, the straightforward way. Returns (final parameters (n_params,), per-iteration minibatch losses,
    evaluations): with eval_every, evaluations lists (t, mean, median) of the per-prompt losses on the same fixed
    evaluation batch the engine uses."""
    setting = get_setting(setting)
    evaluations = []
    if eval_every:
        eval_prompts = PromptStream(setting, eval_seed, EVAL).sample(eval_batch_size)
        eval_Z = input_matrix(eval_prompts)
    batch_size = batch_size or setting.batch_size
    clip = setting.clip("code") if clip is None else clip
    generator = torch.Generator().manual_seed(child_seed(seed, INIT))
    shape = (setting.n_layers, 2, setting.d, setting.d)
    params = (torch.randn(shape, generator=generator) * setting.init_std).requires_grad_(True)
    if optimizer == "sgd":
        opt = torch.optim.SGD([params], lr=lr, momentum=0.9)
    else:
        opt = torch.optim.AdamW([params], lr=lr, betas=(0.9, 0.9), weight_decay=0.0)
    stream = PromptStream(setting, seed, TRAIN)
    losses = []
    for t in range(n_iters + 1):
        if eval_every and t % eval_every == 0:
            with torch.no_grad():
                per_prompt = (reference_forward(params, eval_Z) - eval_prompts.y_query) ** 2
            evaluations.append((t, per_prompt.mean().item(), per_prompt.median().item()))
        if t == n_iters:
            break
        prompts = stream.sample(batch_size)
        loss = ((reference_forward(params, input_matrix(prompts)) - prompts.y_query) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        norm = params.grad.norm()
        if norm > clip:
            params.grad.mul_(clip / norm)
        opt.step()
        losses.append(loss.item())
    return params.detach().reshape(-1), losses, evaluations


def _median_time(fn, rounds):
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(setting="setting1", n_runs=12, iters=20, rounds=3):
    """Run-steps per second of the engine (n_runs batched) and of the reference loop; prints and returns both."""
    from .train import train

    seeds = list(range(n_runs // 2))
    n_runs = 2 * len(seeds)  # seeds x {SGDM, Adam}, as the figures train them

    def engine():
        train(setting, seeds=seeds, n_iters=iters, eval_every=iters, progress=False, use_cache=False)

    def reference():
        for seed in seeds:
            for opt in ("sgd", "adam"):
                reference_train(setting, opt, seed, get_setting(setting).learning_rate(opt), iters)

    engine()  # warm-up (allocator, thread pool)
    t_engine = _median_time(engine, rounds)
    t_reference = _median_time(reference, rounds)
    engine_rate = n_runs * iters / t_engine
    reference_rate = n_runs * iters / t_reference
    print(f"setting {setting}, {n_runs} runs x {iters} iterations, batch {get_setting(setting).batch_size}, "
          f"{torch.get_num_threads()} threads, median of {rounds} rounds")
    print(f"  reference loop (one run at a time, token level, torch.optim): {reference_rate:8.1f} run-steps/s "
          f"({1e3 / reference_rate:6.2f} ms per run-step)")
    print(f"  lintf engine (batched runs, prompt statistics):               {engine_rate:8.1f} run-steps/s "
          f"({1e3 / engine_rate:6.2f} ms per run-step)")
    print(f"  speed-up: {engine_rate / reference_rate:.1f}x")
    return {"engine_run_steps_per_s": engine_rate, "reference_run_steps_per_s": reference_rate,
            "speedup": engine_rate / reference_rate}
