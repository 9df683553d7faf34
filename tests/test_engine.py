"""The engine's compiled paths (lintf_core/engine/) against the readable model (model.py), the dispatcher's choice of
path, and the direct prompt-statistics sampler (sampler.py) against the explicit construction from N covariates
(data.py)."""

import numpy as np
import pytest
import torch
from scipy import stats as scipy_stats

from lintf_core import engine, model, sampler
from lintf_core.data import EVAL, TRAIN, Prompts, PromptStatistics, PromptStream, prompt_statistics, stack_prompts
from lintf_core.model import Architecture, init_params
from lintf_core.sampler import sample_statistics
from lintf_core.settings import get_setting
from lintf_core.train import train


def _case(name, batch=200, runs=3, std=0.2, query_key=None):
    setting = get_setting(name)
    arch = Architecture.of(setting, query_key=query_key)
    theta = init_params(arch, range(runs), std)
    stats = prompt_statistics(PromptStream(setting, 0, EVAL).sample(batch))
    return arch, theta, stats


def _double(stats):
    return PromptStatistics(stats.G.double(), stats.z_query.double(), stats.target.double())


@pytest.mark.parametrize("name, query_key", [("setting1", None), ("setting2", None), ("depth2", None),
                                             ("depth8", None), ("large", None), ("setting1", "separate")])
def test_fused_loss_and_gradient_equal_the_readable_model(name, query_key):
    arch, theta, stats = _case(name, std=0.05 if name in ("depth8", "large") else 0.2,
                               batch=40 if name == "large" else 200, query_key=query_key)
    assert engine.sparse.supports(arch)
    loss_ref, grad_ref = model.loss_and_grad(theta.double(), arch, _double(stats))
    loss, grad = engine.sparse.loss_and_grad(theta, arch, stats)
    np.testing.assert_allclose(loss, loss_ref, rtol=2e-4)
    np.testing.assert_allclose(grad, grad_ref, rtol=2e-3, atol=2e-4 * grad_ref.abs().max().item())
    per_prompt = engine.sparse.per_prompt_loss(theta, arch, stats)
    np.testing.assert_allclose(per_prompt, model.per_prompt_loss(theta.double(), arch, _double(stats)), rtol=1e-3,
                               atol=1e-6)


def test_each_run_reads_its_own_batch():
    setting = get_setting("setting1")
    arch = Architecture.of(setting)
    theta = init_params(arch, range(4), 0.2)
    batches = sample_statistics([PromptStream(setting, s, TRAIN) for s in range(2)], 100)
    run_data = np.array([1, 0, 1, 0])
    _, grad = engine.sparse.loss_and_grad(theta, arch, batches, run_data)
    _, grad_ref = model.loss_and_grad(theta.double(), arch, _double(batches.select(torch.from_numpy(run_data))))
    np.testing.assert_allclose(grad, grad_ref, rtol=2e-3, atol=2e-4 * grad_ref.abs().max().item())


@pytest.mark.parametrize("name, query_key", [("setting1", None), ("depth4", None), ("setting1", "separate")])
def test_fused_hessians_equal_autograd_hessians(name, query_key):
    arch, theta, stats = _case(name, batch=100, runs=2, query_key=query_key)
    H = engine.hessians(theta, arch, stats)
    for r in range(2):
        reference = torch.func.hessian(lambda t: model.loss(t[None], arch, _double(stats))[0])(theta[r].double())
        scale = reference.abs().max().item()
        np.testing.assert_allclose(H[r], reference, atol=2e-4 * scale)
        assert torch.equal(H[r], H[r].T)


def test_products_from_a_first_layer_are_the_full_products_in_the_layers_it_keeps():
    # hessians() asks each unit vector of a layer-l parameter for the rows of layers >= l only (and mirrors the rest)
    arch, theta, stats = _case("depth4", batch=100, runs=2)
    p = arch.n_params
    directions = torch.randn(2, 3, p, generator=torch.Generator().manual_seed(5)).numpy()
    layer = np.arange(p) // (p // arch.n_layers)
    first = np.array([0, 1, 3])
    directions[:, 1, layer < 1] = 0
    directions[:, 2, layer < 3] = 0
    full = engine.sparse_hvp.hessian_vector_products(theta, arch, stats, directions)
    kept = engine.sparse_hvp.hessian_vector_products(theta, arch, stats, directions, first=first)
    for k, f in enumerate(first):
        np.testing.assert_allclose(kept[:, k, layer >= f], full[:, k, layer >= f], rtol=1e-5,
                                   atol=1e-6 * full.abs().max().item())
        assert (kept[:, k, layer < f] == 0).all()


def test_fused_directional_smoothness_is_u_h_u():
    arch, theta, stats = _case("setting1", batch=100, runs=2)
    direction = torch.randn(theta.shape, generator=torch.Generator().manual_seed(3))
    smoothness = engine.directional_smoothness(theta, direction, arch, stats)
    for r in range(2):
        H = torch.func.hessian(lambda t: model.loss(t[None], arch, _double(stats))[0])(theta[r].double())
        u = direction[r].double()
        np.testing.assert_allclose(smoothness[r].item(), (u @ H @ u / (u @ u)).item(), rtol=1e-3)


def test_hessians_and_smoothness_share_one_compiled_kernel_whatever_the_number_of_runs():
    # a read-only argument (np.broadcast_to's view for one run) is another signature to numba: a second cold compile
    # of the product kernel, ~25 s, in the first process that meets it
    from lintf_core.engine import sparse_hvp

    setting = get_setting("setting1")
    arch = Architecture.of(setting)
    stats = sample_statistics([PromptStream(setting, 0, EVAL)], 8)
    theta = init_params(arch, [0, 1], 0.1)
    engine.hessians(theta[:1], arch, stats)
    engine.directional_smoothness(theta, torch.randn_like(theta), arch, stats)
    engine.hessians(theta, arch, stats)
    float32 = [s for s in sparse_hvp._fused_hvp.signatures if s[0].dtype.name == "float32"]
    assert len(float32) == 1


def test_fig15_kernel_equals_the_readable_model():
    """The learned pre-layer + full P, Q path (engine.full.loss_and_grad_full) against autograd through model.py, on one
    batch per seed (each run reading its own) and on one batch for all runs."""
    setting = get_setting("nonlinear")
    arch = Architecture.of(setting)
    assert engine.full.supports_full(arch) and not engine.sparse.supports(arch)
    prompts = stack_prompts([PromptStream(setting, s, TRAIN).sample(300) for s in range(2)])
    theta = init_params(arch, range(3), 0.2)
    run_data = np.array([1, 0, 1])
    loss, grad = engine.full.loss_and_grad_full(theta, arch, prompts, run_data)
    loss_ref, grad_ref = model.loss_and_grad(theta, arch, prompts.select(torch.from_numpy(run_data)))
    np.testing.assert_allclose(loss, loss_ref, rtol=1e-4)
    np.testing.assert_allclose(grad, grad_ref, rtol=2e-3, atol=2e-4 * grad_ref.abs().max().item())
    a = arch.n_attention_params  # the pre-layer's part (torch, from the kernel's adjoints) on its own scale
    np.testing.assert_allclose(grad[:, a:], grad_ref[:, a:], rtol=2e-3, atol=2e-4 * grad_ref[:, a:].abs().max().item())
    one = prompts.select(0)
    loss, grad = engine.full.loss_and_grad_full(theta, arch, one)
    loss_ref, grad_ref = model.loss_and_grad(theta, arch, one)
    np.testing.assert_allclose(grad, grad_ref, rtol=2e-3, atol=2e-4 * grad_ref.abs().max().item())


def _fig15_case(batch=48):
    """Fig. 15's model, and its prompts in float64 for the reference (the fixed target network stays float32: the
    labels are data)."""
    setting = get_setting("nonlinear")
    arch = Architecture.of(setting)
    prompts = PromptStream(setting, 0, EVAL).sample(batch)
    double = Prompts(prompts.x.double(), prompts.w.double(), prompts.x_query.double(),
                     lambda x, phi=prompts.feature: phi(x.float()).double())
    return arch, prompts, double


def test_fig15_hessians_equal_autograd_hessians():
    """engine.hessians on Fig. 15's model (the compiled tangent pass, the pre-layer's derivatives by hand, the
    symmetric fill) against torch.func.hessian of model.loss in float64, block by block on each block's own scale;
    and Hessian-vector products along directions that move both parts against H v."""
    arch, prompts, double = _fig15_case()
    theta = init_params(arch, range(2), 0.2)
    H = engine.hessians(theta, arch, prompts)
    directions = torch.randn(2, 3, arch.n_params, generator=torch.Generator().manual_seed(0))
    products = engine.full.hessian_vector_products_full(theta, arch, prompts, directions.numpy(), chunk=2)
    a = arch.n_attention_params
    for r in range(2):
        reference = torch.func.hessian(lambda t: model.loss(t[None], arch, double)[0])(theta[r].double())
        for rows, cols in [(slice(0, a), slice(0, a)), (slice(a, None), slice(a, None)), (slice(0, a), slice(a, None))]:
            block = reference[rows, cols]
            np.testing.assert_allclose(H[r][rows, cols], block, rtol=0, atol=2e-5 * block.abs().max().item())
        expected = directions[r].double() @ reference
        np.testing.assert_allclose(products[r], expected, rtol=0, atol=2e-5 * expected.abs().max().item())
    u = directions[:, 0]
    np.testing.assert_allclose(engine.directional_smoothness(theta, u, arch, prompts),
                               torch.einsum("ri,rij,rj->r", u, H, u) / (u * u).sum(1), rtol=1e-4)


def test_a_diverged_run_gives_nan_and_leaves_the_others_alone():
    arch, theta, stats = _case("setting1", batch=50)
    theta[1] = float("nan")
    loss, grad = engine.sparse.loss_and_grad(theta, arch, stats)
    assert torch.isnan(loss[1]) and torch.isfinite(loss[[0, 2]]).all() and torch.isfinite(grad[[0, 2]]).all()


def test_the_dispatcher_picks_one_path_per_model_and_derivative():
    s1, nonlinear = get_setting("setting1"), get_setting("nonlinear")
    stats = prompt_statistics(PromptStream(s1, 0, EVAL).sample(4))
    prompts = PromptStream(s1, 0, EVAL).sample(4)
    cases = [  # (architecture, data, {derivative: path})
        (Architecture.of(s1), stats, dict(loss="sparse", gradient="sparse", hessian="sparse")),
        (Architecture.of(s1, query_key="separate"), stats, dict(loss="sparse", gradient="sparse", hessian="sparse")),
        (Architecture.of(s1, parametrization="full"), stats, dict(loss="autograd", gradient="autograd",
                                                                  hessian="autograd")),
        (Architecture.of(s1, attention="softmax"), prompts, dict(loss="tokens", gradient="tokens", hessian="autograd")),
        (Architecture.of(s1, attention="gaussian", query_key="separate"), prompts,
         dict(loss="tokens", gradient="tokens", hessian="autograd")),
        (Architecture.of(nonlinear), PromptStream(nonlinear, 0, EVAL).sample(4),
         dict(loss="autograd", gradient="full", hessian="full")),
    ]
    for arch, data, paths in cases:
        assert {k: engine.kernel_for(arch, data, k) for k in paths} == paths, arch
        assert engine.reads_statistics(arch) == (paths["gradient"] == "sparse")


def test_the_dispatcher_returns_its_paths_numbers_bit_for_bit():
    arch, theta, stats = _case("setting1", batch=60)
    for got, want in zip(engine.loss_and_grad(theta, arch, stats), engine.sparse.loss_and_grad(theta, arch, stats)):
        assert torch.equal(got, want)
    setting = get_setting("setting1")
    prompts = stack_prompts([PromptStream(setting, s, TRAIN).sample(30) for s in range(2)])
    run_data = np.array([0, 1, 1])
    full = Architecture.of(setting, parametrization="full")
    theta = init_params(full, range(3), 0.2)
    selected = model.model_input(full, prompts).select(torch.from_numpy(run_data))  # each run's own batch
    got, want = engine.loss_and_grad(theta, full, prompts, run_data), engine.autograd.loss_and_grad(theta, full, selected)
    assert all(torch.equal(a, b) for a, b in zip(got, want))
    losses = engine.per_prompt_loss(theta, full, prompts, run_data)
    assert torch.equal(losses, engine.autograd.per_prompt_loss(theta, full, selected).detach())
    assert not losses.requires_grad


@pytest.mark.parametrize("parametrization, query_key", [("sparse", "single"), ("sparse", "separate"),
                                                        ("full", "single")])
def test_the_autograd_path_is_the_readable_model(parametrization, query_key):
    """engine/autograd.py (the examples-innermost layout and its hand-written derivatives) against model.py's
    statistics identity in plain matrix products: values, gradients and a Hessian, float64."""
    setting = get_setting("setting2")
    arch = Architecture.of(setting, parametrization=parametrization, query_key=query_key)
    theta = init_params(arch, range(2), 0.3).double()
    stats = _double(prompt_statistics(PromptStream(setting, 0, EVAL).sample(50)))
    torch.testing.assert_close(engine.autograd.per_prompt_loss(theta, arch, stats),
                               model.per_prompt_loss(theta, arch, stats), rtol=1e-10, atol=0)
    for got, want in zip(engine.autograd.loss_and_grad(theta, arch, stats), model.loss_and_grad(theta, arch, stats)):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)
    H = engine.autograd.hessians(theta[:1], arch, stats)[0]
    reference = torch.func.hessian(lambda t: model.loss(t[None], arch, stats)[0])(theta[0])
    torch.testing.assert_close(H, reference, rtol=1e-8, atol=1e-10 * reference.abs().max().item())


def test_the_autograd_path_of_fig15s_model_is_the_readable_model():
    arch, prompts, double = _fig15_case(batch=40)
    theta = init_params(arch, range(2), 0.2).double()
    for got, want in zip(engine.autograd.loss_and_grad(theta, arch, double), model.loss_and_grad(theta, arch, double)):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


# ---- the direct sampler: same law as N explicit covariates --------------------------------------------------------

def _assert_same_law_as_explicit(setting, direct, explicit):
    """Two-sample KS of the direct sampler's statistics against explicit prompts': the smallest eigenvalue of S, and
    the per-prompt loss of one fixed model."""
    d = setting.d
    smallest = [torch.linalg.eigvalsh(s.G[:d, :d].permute(2, 0, 1).double())[:, 0].numpy() for s in (direct, explicit)]
    assert scipy_stats.ks_2samp(*smallest).pvalue > 1e-3
    arch = Architecture.of(setting)
    theta = init_params(arch, [0], 0.2)
    losses = [engine.sparse.per_prompt_loss(theta, arch, s)[0].numpy() for s in (direct, explicit)]
    assert scipy_stats.ks_2samp(*losses).pvalue > 1e-3


def _direct_and_explicit(name, n):
    setting = get_setting(name)
    direct = sample_statistics([PromptStream(setting, 1, TRAIN)], n).select(0)
    explicit = prompt_statistics(PromptStream(setting, 2, TRAIN).sample(n))
    return setting, direct, explicit


@pytest.mark.parametrize("name", ["setting1", "setting2"])
def test_direct_statistics_have_the_wishart_moments(name):
    setting, direct, _ = _direct_and_explicit(name, 100_000)
    d, N = setting.d, setting.n_context
    S, b, c = direct.G[:d, :d].double(), direct.G[:d, d].double(), direct.G[d, d].double()
    # E S = I, Var S_ij = (1 + [i = j]) / N (Wishart(N, I) / N); E b = 0, Var b_i = E[(S w)_i^2] = E[(S^2)_ii]
    # = 1 + (d + 1) / N; E c = E w^T S w = d; E target = 0, Var target = E |w|^2... = d (x_query, w ~ N(0, I))
    se = 4 / 100_000 ** 0.5
    np.testing.assert_allclose(S.mean(-1), torch.eye(d, dtype=torch.float64), atol=4 * se)
    np.testing.assert_allclose(S.var(-1), (1 + torch.eye(d, dtype=torch.float64)) / N, rtol=0.05)
    np.testing.assert_allclose(b.mean(-1), 0, atol=se * (1 + (d + 1) / N) ** 0.5 * 2)
    np.testing.assert_allclose(b.var(-1), 1 + (d + 1) / N, rtol=0.05)
    np.testing.assert_allclose(c.mean().item(), d, rtol=0.02)
    np.testing.assert_allclose(direct.target.double().var().item(), d, rtol=0.03)
    assert torch.equal(direct.z_query[d], torch.zeros(100_000))


@pytest.mark.parametrize("name", ["setting1", "setting2"])
def test_direct_statistics_match_the_explicit_construction_in_law(name):
    setting, direct, explicit = _direct_and_explicit(name, 20_000)
    d, N = setting.d, setting.n_context
    # N tr S ~ chi^2(N d) exactly
    trace = direct.G[:d, :d].diagonal(dim1=0, dim2=1).sum(-1).double() * N
    assert scipy_stats.kstest(trace.numpy(), scipy_stats.chi2(N * d).cdf).pvalue > 1e-3
    # the smallest eigenvalue of S, and the prediction of a fixed model: two-sample KS against explicit prompts
    _assert_same_law_as_explicit(setting, direct, explicit)


def test_direct_sampler_is_reproducible_and_streams_are_independent():
    setting = get_setting("setting1")
    a = sample_statistics([PromptStream(setting, s, TRAIN) for s in (0, 1)], 50)
    b = sample_statistics([PromptStream(setting, s, TRAIN) for s in (1,)], 50)
    assert torch.equal(a.G[1], b.G[0])  # seed 1's batch does not depend on seed 0 beside it
    assert not torch.equal(a.G[0], a.G[1])


@pytest.mark.parametrize("name", ["setting1", "setting3", "sphere"])
def test_direct_sampler_is_its_formula_on_each_streams_own_draws(name):
    """The direct sampler, transcribed with float64 algebra from each stream's own draws in their order (torch's
    normals, then numpy's uniforms for the chi-squares or its Gamma radii): the same statistics, and the generators
    left in the same state (a sampler that drew in another order, or other numbers, would not be this stream any
    more). The chi-squares: Marsaglia and Tsang's method (2000) as they state it, rejected candidates retried with
    the spare pairs in order."""
    setting = get_setting(name)
    d, N, B = setting.d, setting.n_context, 40
    streams = [PromptStream(setting, s, TRAIN) for s in (3, 4, 5)]
    direct = [sample_statistics(streams, B) for _ in range(2)]  # twice: the second batch continues each stream
    for i, seed in enumerate((3, 4, 5)):
        stream = PromptStream(setting, seed, TRAIN)
        for batch in direct:
            if setting.covariates == "normal":  # Bartlett: N S = A A^T, A_jj^2 ~ chi^2(N - j), normals below
                K = 3 * d + d * (d - 1) // 2
                spares = sampler.SPARE_PAIRS + int(sampler.SPARE_FRACTION * B * d)
                numbers = torch.empty(B + -(-spares // K), K).normal_(generator=stream.generator).double().numpy()
                uniforms = stream.np_rng.random((B + -(-spares // d), d), dtype=np.float32).astype(np.float64)
                chi2 = _marsaglia_tsang_chi_squares(numbers[:B, K - d:], uniforms[:B], numbers[B:].ravel(),
                                                    uniforms[B:].ravel(), N)
                numbers = numbers[:B]
                A = np.zeros((B, d, d))
                A[:, np.arange(d), np.arange(d)] = np.sqrt(chi2)
                A[:, *np.tril_indices(d, -1)] = numbers[:, 2 * d:2 * d + d * (d - 1) // 2]
                S, x_query = A @ A.swapaxes(1, 2) / N, numbers[:, d:2 * d]
            else:  # x = r g / |g|, r^2 ~ Gamma(k, theta) or 1
                numbers = torch.empty(B, (N + 2) * d).normal_(generator=stream.generator).double().numpy()
                g = numbers[:, d:].reshape(B, N + 1, d)
                r2 = np.ones((B, N + 1)) if setting.covariates == "sphere" else (
                    stream.np_rng.standard_gamma(setting.gamma_shape, size=(B, N + 1), dtype=np.float32)
                    * np.float32(setting.gamma_scale)).astype(np.float64)
                x = g * np.sqrt(r2 / (g * g).sum(-1))[..., None]
                S, x_query = np.einsum("bni,bnj->bij", x[:, :N], x[:, :N]) / N, x[:, N]
            w = numbers[:, :d]
            b = np.einsum("bij,bj->bi", S, w)
            np.testing.assert_allclose(batch.G[i, :d, :d].permute(2, 0, 1), S, rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(batch.G[i, :d, d].T, b, rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(batch.G[i, d, d], (b * w).sum(1), rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(batch.z_query[i, :d].T, x_query, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(batch.target[i], (w * x_query).sum(1), rtol=1e-4, atol=1e-5)
        assert stream.np_rng.bit_generator.state == streams[i].np_rng.bit_generator.state
        assert torch.equal(stream.generator.get_state(), streams[i].generator.get_state())


def _statistics_arrays(D, d, B):
    return np.empty((D, d + 1, d + 1, B), np.float32), np.empty((D, d + 1, B), np.float32), np.empty((D, B), np.float32)


def _marsaglia_tsang_chi_squares(normals, uniforms, spare_normals, spare_uniforms, N):
    """(B, d) chi-squares chi^2(N - j) = 2 Gamma((N - j) / 2), candidate (e, j) from normals[e, j] and
    uniforms[e, j], a rejected one retried with the next spare pair; chi^2(1) = z^2."""
    B, d = normals.shape
    out, s = np.empty((B, d)), 0
    for e in range(B):
        for j in range(d):
            z, u, a = normals[e, j], uniforms[e, j], (N - j) / 2 - 1 / 3
            while N - j > 1:
                v = (1 + z / np.sqrt(9 * a)) ** 3
                if v > 0 and (u < 1 - 0.0331 * z ** 4 or np.log(u) < z ** 2 / 2 + a * (1 - v + np.log(v))):
                    break
                z, u, s = spare_normals[s], spare_uniforms[s], s + 1
            out[e, j] = z * z if N - j == 1 else 2 * a * v
    return out


@pytest.mark.parametrize("N", [20, 5])
def test_bartlett_chi_squares_have_their_laws(N, monkeypatch):
    """Each A_jj^2 against chi^2(N - j) (KS), chi^2(1) included (N = 5); without spares the rejected candidates are
    left NaN and counted, and sampler.sample_statistics then draws them from numpy's Gamma, in law as before."""
    d, B = 5, 20_000
    generator = torch.Generator().manual_seed(N)
    normals = torch.empty(2, B + 400, 3 * d + d * (d - 1) // 2).normal_(generator=generator).numpy()
    uniforms = torch.empty(2, B + 2000, d).uniform_(generator=generator).numpy()
    chi2, G, z_query, target = np.empty((2, d, B)), *_statistics_arrays(2, d, B)
    assert (sampler.gaussian_statistics(normals, uniforms, N, chi2, G, z_query, target, True) == 0).all()
    for j in range(d):
        assert scipy_stats.kstest(chi2[:, j].ravel(), scipy_stats.chi2(N - j).cdf).pvalue > 1e-3
    np.testing.assert_allclose(G[:, np.arange(d), np.arange(d)].sum(1) * N, chi2.sum(1) + (normals[:, :B, 2 * d:2 * d
                               + d * (d - 1) // 2].astype(np.float64) ** 2).sum(-1), rtol=1e-5)  # N tr S = sum A_ij^2
    missing = sampler.gaussian_statistics(normals[:, :B], uniforms[:, :B], N, chi2, G, z_query, target, True)
    assert (missing > 0).all() and (np.isnan(chi2).sum((1, 2)) == missing).all()
    monkeypatch.setattr(sampler, "SPARE_PAIRS", 0)
    monkeypatch.setattr(sampler, "SPARE_FRACTION", 0.0)
    setting = get_setting("setting1" if N == 20 else "setting2")
    direct = sample_statistics([PromptStream(setting, s, TRAIN) for s in (0, 1)], B // 2)
    trace = direct.G[:, :d, :d].diagonal(dim1=1, dim2=2).sum(-1).double() * N
    assert torch.isfinite(trace).all()
    assert scipy_stats.kstest(trace.numpy().ravel(), scipy_stats.chi2(N * d).cdf).pvalue > 1e-3


def test_training_with_either_sampler_learns_alike():
    """The two samplers are two random streams of one law: after 300 steps the runs reach similar losses."""
    kwargs = dict(seeds=[0, 1], n_iters=300, batch_size=256, eval_every=300, progress=False, use_cache=False)
    direct = train("setting1", sampler="statistics", **kwargs)
    explicit = train("setting1", sampler="prompts", **kwargs)
    assert direct.config["sampler"] == "statistics" and explicit.config["sampler"] == "prompts"
    assert np.all(direct.eval_loss[:, -1] < 0.5 * direct.eval_loss[:, 0])
    np.testing.assert_allclose(np.median(direct.eval_loss[:, -1]), np.median(explicit.eval_loss[:, -1]), rtol=0.5)


@pytest.mark.parametrize("name", ["setting3", "sphere"])
def test_radial_statistics_have_their_closed_form_laws(name):
    """Spherical and heavy-tailed covariates x = sqrt(s) u: N tr S = sum of the N context s_i, exactly 1 per
    covariate on the sphere and Gamma(N k, theta) for s ~ Gamma(k, theta); E S = E s I / d; the target <w, x_q> is
    N(0, 1) on the sphere. Two-sample KS tests against explicit prompts: lambda_min(S) and a fixed model's loss."""
    setting, direct, explicit = _direct_and_explicit(name, 20_000)
    d, N = setting.d, setting.n_context
    trace = direct.G[:d, :d].diagonal(dim1=0, dim2=1).sum(-1).double() * N
    S = direct.G[:d, :d].double()
    if setting.covariates == "sphere":
        np.testing.assert_allclose(trace, N, rtol=1e-5)
        assert scipy_stats.kstest(direct.target.double().numpy(), scipy_stats.norm.cdf).pvalue > 1e-3
        mean_s = 1.0
    else:
        k, theta = setting.gamma_shape, setting.gamma_scale
        assert scipy_stats.kstest(trace.numpy(), scipy_stats.gamma(N * k, scale=theta).cdf).pvalue > 1e-3
        mean_s = k * theta
    np.testing.assert_allclose(S.mean(-1), mean_s * torch.eye(d, dtype=torch.float64) / d, atol=0.05 * mean_s)
    _assert_same_law_as_explicit(setting, direct, explicit)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compiled_clip_and_step_is_optims(dtype):
    """engine.clip_and_step against optim.clip_by_global_norm + optim.step (the readable torch operations, themselves
    tested against torch.optim): SGDM and Adam runs, clipping on and off, a zero gradient and a NaN run."""
    from lintf_core import optim
    runs = [("sgd", 0.02, 1.0), ("adam", 0.02, 1.0), ("sgd", 0.1, 0.05), ("sgd", 0.05, 1e9), ("adam", 0.3, 1e9)]
    generator = torch.Generator().manual_seed(0)
    theta = torch.randn(len(runs), 150, generator=generator, dtype=dtype)
    states = [optim.init_state(theta, *zip(*runs)) for _ in range(2)]
    ours, reference = theta.clone(), theta.clone()
    for t in range(30):
        grad = torch.randn(len(runs), 150, generator=generator, dtype=dtype) * 2.0 ** (t % 7 - 3)
        grad[2] = 0 if t == 4 else grad[2]
        grad[4] = float("nan") if t >= 20 else grad[4]
        ours, norm = engine.clip_and_step(ours, grad, states[0])
        clipped, reference_norm = optim.clip_by_global_norm(grad, states[1].clip)
        reference = optim.step(reference, clipped, states[1])
        tolerance = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-13)
        torch.testing.assert_close(norm, reference_norm, equal_nan=True, **tolerance)
        torch.testing.assert_close(ours, reference, equal_nan=True, **tolerance)
    assert torch.isnan(ours[4]).all() and not torch.isnan(ours[:4]).any()
