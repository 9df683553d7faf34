"""`python -m lintf_core bench`: the engine's speed as a ratio against a straightforward reference loop.

The reference is the authors' structure: one run at a time, token-level (N+1)x(N+1) attention scores, autograd and
torch.optim with manual global clipping. It shares nothing with the engine but the prompt streams, so it doubles
as an independent check of the engine (tests/test_train.py). Timings are medians of repeated rounds measured in
one process: compare the ratio, not absolute times across machines.
"""

import inspect
import math
import statistics
import time

import numpy as np
import torch

from . import cache, engine
from .data import EVAL, INIT, TRAIN, PromptStream, child_seed, input_matrix
from .model import transcription
from .sampler import sample_statistics
from .settings import get_setting


def reference_forward(params, Z):
    """model.transcription (Eq. (7)-(8) as printed) for one run's sparse blocks params (L, 2, d, d), embedded as the
    authors' code does (P_full = [[P, 0], [0, 1]], Q_full = [[Q, 0], [0, 0]]); Z: (B, d+1, n+1)."""
    L, _, d, _ = params.shape
    corner = torch.zeros(d + 1, d + 1, dtype=Z.dtype)
    corner[d, d] = 1.0
    # built layer by layer as transcription reads them (the order autograd sums the gradient in, so the bits)
    P_layers = (corner + torch.nn.functional.pad(params[layer, 0], (0, 1, 0, 1)) for layer in range(L))
    Q_layers = (torch.nn.functional.pad(params[layer, 1], (0, 1, 0, 1)) for layer in range(L))
    return transcription(P_layers, Q_layers, Z)


def reference_per_prompt_loss(params, prompts):
    """Squared error of every prompt under reference_forward (params shaped (L, 2, d, d)), in the params' dtype."""
    Z = input_matrix(prompts).to(params.dtype)
    return (reference_forward(params, Z) - prompts.y_query.to(params.dtype)) ** 2


def reference_train(setting, optimizer, seed, lr, n_iters, batch_size=None, clip=None, eval_every=None,
                    eval_batch_size=1000, eval_seed=99, stop_at_divergence=False, dtype=torch.float32, use_cache=True):
    """One run, the straightforward way. Returns (final parameters (n_params,), per-iteration minibatch losses,
    evaluations): with eval_every, evaluations lists (t, mean, median) of the per-prompt losses on the same fixed
    evaluation batch the engine uses. stop_at_divergence: end at the first evaluation whose mean loss is not finite
    (a cross-check of a divergence needs nothing after it). dtype: torch.float64 re-runs it in double precision
    from the same float32 initialization and prompts (is a divergence float32's overflow or the optimizer's
    instability?). Cached unless use_cache=False (the book's pages cross-check against it, ~20 ms
    a step; the benchmark times it), keyed by its arguments and the source of this loop and its model, which are not
    part of the engine's cache key."""
    setting = get_setting(setting)
    config = dict(kind="reference_train", setting=setting.name, optimizer=optimizer, seed=seed, lr=lr,
                  n_iters=n_iters, batch_size=batch_size, clip=clip, eval_every=eval_every,
                  eval_batch_size=eval_batch_size, eval_seed=eval_seed, stop_at_divergence=stop_at_divergence,
                  **({"dtype": str(dtype)} if dtype != torch.float32 else {}),
                  code=[inspect.getsource(f) for f in (_reference_train, reference_per_prompt_loss, reference_forward,
                                                       transcription)])
    result = cache.cached(config, lambda: dict(zip(("params", "losses", "evaluations"), _reference_train(
        setting, optimizer, seed, lr, n_iters, batch_size, clip, eval_every, eval_batch_size, eval_seed,
        stop_at_divergence, dtype))), use_cache)
    return result["params"], result["losses"], [tuple(e) for e in result["evaluations"]]


def reference_evaluations(setting, optimizer, seed, lr, n_iters, config, **options):
    """The cross-check of one engine run: reference_train on the run's setting, optimizer, seed and rate at a
    resolved profile's batch size and evaluation stride (`options`: stop_at_divergence, dtype, ...). Returns
    {"iterations", "mean", "median"}: the evaluations as arrays (its last iteration is where it ended)."""
    _, _, evaluations = reference_train(setting, optimizer, seed, lr, n_iters, batch_size=config["batch_size"],
                                        eval_every=config["eval_every"], **options)
    iterations, mean, median = (np.array(column) for column in zip(*evaluations))
    return {"iterations": iterations, "mean": mean, "median": median}


def _reference_train(setting, optimizer, seed, lr, n_iters, batch_size, clip, eval_every, eval_batch_size, eval_seed,
                     stop_at_divergence, dtype=torch.float32):
    evaluations = []
    if eval_every:
        eval_prompts = PromptStream(setting, eval_seed, EVAL).sample(eval_batch_size)
    batch_size = batch_size or setting.batch_size
    clip = setting.clip("code") if clip is None else clip
    generator = torch.Generator().manual_seed(child_seed(seed, INIT))
    shape = (setting.n_layers, 2, setting.d, setting.d)
    params = (torch.randn(shape, generator=generator) * setting.init_std).to(dtype).requires_grad_(True)
    if optimizer == "sgd":
        opt = torch.optim.SGD([params], lr=lr, momentum=0.9)
    else:
        opt = torch.optim.AdamW([params], lr=lr, betas=(0.9, 0.9), weight_decay=0.0)
    stream = PromptStream(setting, seed, TRAIN)
    losses = []
    for t in range(n_iters + 1):
        if eval_every and t % eval_every == 0:
            with torch.no_grad():
                per_prompt = reference_per_prompt_loss(params, eval_prompts)
            evaluations.append((t, per_prompt.mean().item(), per_prompt.median().item()))
            if stop_at_divergence and not math.isfinite(evaluations[-1][1]):
                break
        if t == n_iters:
            break
        prompts = stream.sample(batch_size)
        loss = reference_per_prompt_loss(params, prompts).mean()
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


def run(setting="setting1", n_runs=12, iters=50, rounds=5):
    """Run-steps per second of the engine (n_runs batched) and of the reference loop; prints and returns both."""
    from .train import train

    seeds = list(range(n_runs // 2))
    n_runs = 2 * len(seeds)  # seeds x {SGDM, Adam}, as the figures train them

    def engine():
        train(setting, seeds=seeds, n_iters=iters, eval_every=iters, progress=False, use_cache=False)

    def reference():
        for seed in seeds:
            for opt in ("sgd", "adam"):
                reference_train(setting, opt, seed, get_setting(setting).learning_rate(opt), iters, use_cache=False)

    engine()  # warm-up (allocator, thread pool, compiled code)
    # Rounds alternate engine and reference, and the ratio is taken per round: these machines drift by +-20-30 %
    # over seconds, and a drift then moves both sides of a ratio alike.
    t_engine, t_reference = [], []
    for _ in range(rounds):
        t_engine.append(_median_time(engine, 1))
        t_reference.append(_median_time(reference, 1))
    ratio = statistics.median(r / e for e, r in zip(t_engine, t_reference))
    engine_rate = n_runs * iters / statistics.median(t_engine)
    reference_rate = n_runs * iters / statistics.median(t_reference)
    print(f"setting {setting}, {n_runs} runs x {iters} iterations, batch {get_setting(setting).batch_size}, "
          f"{torch.get_num_threads()} threads, {rounds} alternating rounds")
    print(f"  reference loop (one run at a time, token level, torch.optim): {reference_rate:8.1f} run-steps/s "
          f"({1e3 / reference_rate:6.2f} ms per run-step)")
    print(f"  lintf engine (batched runs, fused kernel, direct statistics): {engine_rate:8.1f} run-steps/s "
          f"({1e3 / engine_rate:6.2f} ms per run-step)")
    print(f"  speed-up: {ratio:.1f}x (median of the rounds' ratios; each round: "
          f"{', '.join(f'{r / e:.1f}x' for e, r in zip(t_engine, t_reference))})")
    diagnostics = run_diagnostics(setting, rounds=rounds)
    models = run_models(rounds=rounds)
    return {"engine_run_steps_per_s": engine_rate, "reference_run_steps_per_s": reference_rate,
            "speedup": ratio, **diagnostics, **models}


def run_diagnostics(setting="setting1", rounds=3):
    """Second-order and noise throughput: exact Hessians per second on the 1,000-prompt evaluation batch (Setting 1,
    150 parameters, against torch.autograd.functional.hessian on the reference model; and L = 8, 400 parameters),
    several runs per call as the figures batch them; stochastic gradients per second for the noise histogram
    (batches of 1,000), against one reference backward pass per batch."""
    from .data import prompt_statistics
    from .diagnostics import gradient_noise
    from .engine import hessians
    from .model import Architecture, init_params

    s = get_setting(setting)
    arch = Architecture.of(s)
    theta = init_params(arch, range(6), s.init_std)
    eval_prompts = PromptStream(s, 99, EVAL).sample(1000)
    stats = prompt_statistics(eval_prompts)

    def reference_loss(flat):
        return reference_per_prompt_loss(flat.reshape(s.n_layers, 2, s.d, s.d), eval_prompts).mean()

    hessians(theta[:1], arch, stats)  # compiled-code warm-up
    t_hessian = _median_time(lambda: hessians(theta, arch, stats), rounds) / len(theta)
    t_hessian_ref = _median_time(lambda: torch.autograd.functional.hessian(reference_loss, theta[0]), 1)
    deep = get_setting("depth8")
    deep_arch = Architecture.of(deep)
    deep_theta = init_params(deep_arch, range(6), deep.init_std)
    deep_stats = prompt_statistics(PromptStream(deep, 99, EVAL).sample(1000))
    hessians(deep_theta[:1], deep_arch, deep_stats)
    t_deep = _median_time(lambda: hessians(deep_theta, deep_arch, deep_stats), rounds) / len(deep_theta)

    n = 200
    t_noise = _median_time(lambda: gradient_noise(s, arch, theta[0], n, 1000, 1000, seed=0), rounds) / n
    stream = PromptStream(s, 0, TRAIN)

    def reference_noise():
        for _ in range(20):
            p = stream.sample(1000)
            params = theta[0].reshape(s.n_layers, 2, s.d, s.d).clone().requires_grad_(True)
            reference_per_prompt_loss(params, p).mean().backward()

    t_noise_ref = _median_time(reference_noise, rounds) / 20
    print(f"  exact Hessians ({arch.n_params}x{arch.n_params}, 1,000 prompts): {1 / t_hessian:6.2f}/s, reference "
          f"torch.autograd.functional.hessian {1 / t_hessian_ref:6.2f}/s ({t_hessian_ref / t_hessian:.1f}x)")
    print(f"  exact Hessians at L = 8 ({deep_arch.n_params}x{deep_arch.n_params}, 1,000 prompts): "
          f"{1 / t_deep:6.2f}/s")
    print(f"  stochastic gradients (batch 1,000, noise histogram): {1 / t_noise:6.1f}/s, reference "
          f"{1 / t_noise_ref:6.1f}/s ({t_noise_ref / t_noise:.1f}x)")
    return {"hessians_per_s": 1 / t_hessian, "reference_hessians_per_s": 1 / t_hessian_ref,
            "deep_hessians_per_s": 1 / t_deep,
            "stochastic_gradients_per_s": 1 / t_noise, "reference_stochastic_gradients_per_s": 1 / t_noise_ref}


def _alternating_ratio(new, old, rounds):
    """Median time of `new` and the median over rounds of old/new, the two timed alternately in each round."""
    t_new, ratios = [], []
    for _ in range(rounds):
        t_new.append(_median_time(new, 1))
        ratios.append(_median_time(old, 1) / t_new[-1])
    return statistics.median(t_new), statistics.median(ratios)


def run_models(rounds=3):
    """Per run-step cost of one training gradient (B = 1000 fresh prompts, drawn inside the timing) for the models
    beyond Setting 1, against the engine's autograd path (engine/autograd.py, the engine before the compiled
    kernels): the L = 8, d = 20, N = 60 model (engine/sparse.py against the autograd statistics path) and the
    token-level softmax and Gaussian-kernel models of Fig. 7 (engine/tokens.py against autograd at token level).
    6 runs on 3 seeds' batches, as the figures train them."""
    from .data import stack_prompts
    from .engine.autograd import loss_and_grad
    from .model import Architecture, init_params, model_input

    seeds, run_seed = range(3), torch.tensor([0, 0, 1, 1, 2, 2])
    large = get_setting("large")
    arch = Architecture.of(large)
    theta = init_params(arch, seeds, large.init_std)[run_seed]
    streams = [PromptStream(large, s, TRAIN) for s in seeds]
    engine.sparse.loss_and_grad(theta, arch, sample_statistics(streams, 1000), run_seed.numpy())  # compile warm-up
    t, ratio = _alternating_ratio(
        lambda: engine.sparse.loss_and_grad(theta, arch, sample_statistics(streams, 1000), run_seed.numpy()),
        lambda: loss_and_grad(theta, arch, sample_statistics(streams, 1000).select(run_seed)), rounds)
    print(f"  L=8, d=20, N=60 (6,400 parameters): fused {1e3 * t / 6:6.1f} ms per run-step, "
          f"{ratio:.1f}x the autograd statistics path")
    out = {"large_fused_ms": 1e3 * t / 6, "large_speedup": ratio}
    s1 = get_setting("setting1")
    streams = [PromptStream(s1, s, TRAIN) for s in seeds]
    for attention, query_key in (("softmax", "single"), ("gaussian", "separate")):
        arch = Architecture.of(s1, attention=attention, query_key=query_key)
        theta = init_params(arch, seeds, s1.init_std)[run_seed]

        def fused():
            prompts = stack_prompts([stream.sample(1000) for stream in streams])
            engine.tokens.loss_and_grad(theta, arch, prompts, run_seed.numpy())

        def autograd():
            prompts = stack_prompts([stream.sample(1000) for stream in streams])
            loss_and_grad(theta, arch, model_input(arch, prompts).select(run_seed))

        fused()
        t, ratio = _alternating_ratio(fused, autograd, rounds)
        print(f"  token-level {attention} attention (Fig. 7): fused {1e3 * t / 6:6.2f} ms per run-step, {ratio:.1f}x "
              f"autograd at token level")
        out[f"{attention}_ms"], out[f"{attention}_speedup"] = 1e3 * t / 6, ratio
    out.update(_run_fig15(rounds))
    return out


def _run_fig15(rounds):
    """Fig. 15's model (learned pre-layer, full P, Q; B = 2,000): a training gradient of 4 runs
    (engine/full.py against autograd, engine/autograd.py) and one exact Hessian on a 1,000-prompt batch (the compiled
    forward-over-reverse against torch.func's on engine/autograd.py)."""
    from .data import stack_prompts
    from .engine import autograd
    from .model import Architecture, init_params

    nonlinear = get_setting("nonlinear")
    arch = Architecture.of(nonlinear)
    theta = init_params(arch, range(4), nonlinear.init_std)
    streams = [PromptStream(nonlinear, s, TRAIN) for s in range(4)]

    def batch():
        return stack_prompts([stream.sample(nonlinear.batch_size) for stream in streams])

    engine.full.loss_and_grad_full(theta, arch, batch())  # compiled-code warm-up
    t, ratio = _alternating_ratio(lambda: engine.full.loss_and_grad_full(theta, arch, batch()),
                                  lambda: autograd.loss_and_grad(theta, arch, batch()), rounds)
    print(f"  Fig. 15's model ({arch.n_params} parameters, B = {nonlinear.batch_size:,}): fused {1e3 * t / 4:6.2f} ms "
          f"per run-step, {ratio:.1f}x autograd (engine/autograd.py)")
    prompts = PromptStream(nonlinear, 99, EVAL).sample(1000)
    engine.hessians(theta[:1], arch, prompts)
    t_hessian, hessian_ratio = _alternating_ratio(lambda: engine.hessians(theta[:1], arch, prompts),
                                                  lambda: autograd.hessians(theta[:1], arch, prompts), rounds)
    print(f"  exact Hessians of Fig. 15's model (1,000 prompts): {1 / t_hessian:5.2f}/s, {hessian_ratio:.1f}x "
          f"torch.func forward-over-reverse (engine/autograd.py)")
    return {"fig15_fused_ms": 1e3 * t / 4, "fig15_speedup": ratio, "fig15_hessians_per_s": 1 / t_hessian,
            "fig15_hessian_speedup": hessian_ratio}
