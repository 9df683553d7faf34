"""The prompt distributions against closed-form facts (Table 1, Section 4.1)."""

import numpy as np
import pytest
import torch
from scipy import stats

from lintf_core.data import EVAL, INIT, TRAIN, PromptStream, input_matrix, prompt_statistics, sample_covariates
from lintf_core.errors import ParameterError
from lintf_core.settings import get_setting


def covariates(kind, n, d=5, k=0.1, theta=10.0, seed=0):
    return sample_covariates((n,), d, kind, torch.Generator().manual_seed(seed), np.random.default_rng(seed),
                             k, theta).double()


def test_gamma_2_5_scale_2_sphere_is_standard_normal():
    """sqrt(Gamma(k=2.5, theta=2)) = sqrt(chi^2_5): the norm of N(0, I_5). KS test on the norms, and the
    directions are uniform either way."""
    norms = covariates("gamma", 20000, k=2.5, theta=2.0).norm(dim=1).numpy()
    assert stats.kstest(norms, stats.chi(df=5).cdf).pvalue > 1e-3
    gauss = covariates("normal", 20000, seed=1).norm(dim=1).numpy()
    assert stats.ks_2samp(norms, gauss).pvalue > 1e-3
    # and a clearly different law is rejected, so the test has power
    heavy = covariates("gamma", 20000, k=0.1, theta=10.0).norm(dim=1).numpy()
    assert stats.kstest(heavy, stats.chi(df=5).cdf).pvalue < 1e-10


def test_sphere_norms_are_one_and_directions_uniform():
    x = covariates("sphere", 20000)
    torch.testing.assert_close(x.norm(dim=1), torch.ones(20000, dtype=torch.float64))
    # E[x x^T] = I/d on the sphere
    torch.testing.assert_close(x.T @ x / len(x), torch.eye(5, dtype=torch.float64) / 5, atol=0.01, rtol=0)


def test_heavy_tailed_scale_has_the_papers_variance():
    """|x|^2 = s ~ Gamma(k=0.1, theta=10): Var(s) = k theta^2 = 10 ("the same variance", Section 4.1) and
    E|x|^2 = k theta = 1 (not 5 as for N(0, I_5): the second moment is not matched)."""
    s = covariates("gamma", 400000).norm(dim=1).numpy() ** 2
    assert s.var() == pytest.approx(10.0, rel=0.05)
    assert s.mean() == pytest.approx(1.0, rel=0.02)
    assert stats.kstest(s, stats.gamma(a=0.1, scale=10.0).cdf).pvalue > 1e-3


def test_prompts_are_noiseless_linear_regression():
    setting = get_setting("setting1")
    p = PromptStream(setting, 0).sample(4000)
    assert p.x.shape == (4000, 20, 5) and p.w.shape == (4000, 5) and p.x_query.shape == (4000, 5)
    torch.testing.assert_close(p.y, torch.einsum("bnd,bd->bn", p.x, p.w))
    torch.testing.assert_close(p.y_query, (p.x_query * p.w).sum(1))
    # w ~ N(0, I_d) and the query from the context's distribution
    assert abs(p.w.var().item() - 1) < 0.03 and abs(p.w.mean().item()) < 0.03
    assert abs(p.x_query.var().item() - 1) < 0.03 and abs(p.x.var().item() - 1) < 0.01


def test_query_of_heavy_tailed_prompts_has_its_own_scale():
    p = PromptStream(get_setting("setting3"), 0).sample(20000)
    q = p.x_query.double().norm(dim=1).numpy() ** 2
    assert stats.kstest(q, stats.gamma(a=0.1, scale=10.0).cdf).pvalue > 1e-3


def test_input_matrix_is_eq_4():
    p = PromptStream(get_setting("setting2"), 0).sample(3)
    Z = input_matrix(p)
    assert Z.shape == (3, 6, 6)
    torch.testing.assert_close(Z[:, :5, :5], p.x.transpose(1, 2))
    torch.testing.assert_close(Z[:, 5, :5], p.y)
    torch.testing.assert_close(Z[:, :5, 5], p.x_query)
    assert torch.all(Z[:, 5, 5] == 0)


def test_prompt_statistics_are_the_context_second_moments():
    p = PromptStream(get_setting("setting1"), 0).sample(5)
    s = prompt_statistics(p)
    tokens = input_matrix(p)[:, :, :20]  # context columns
    torch.testing.assert_close(s.G.permute(2, 0, 1), tokens @ tokens.transpose(1, 2) / 20)
    torch.testing.assert_close(s.z_query[:5].T, p.x_query)
    assert torch.all(s.z_query[5] == 0)


def test_streams_are_reproducible_and_independent():
    setting = get_setting("setting3")
    a, b = PromptStream(setting, 4).sample(10), PromptStream(setting, 4).sample(10)
    assert torch.equal(a.x, b.x) and torch.equal(a.w, b.w)
    c = PromptStream(setting, 5).sample(10)
    assert not torch.equal(a.x, c.x)
    assert not torch.equal(PromptStream(setting, 4, EVAL).sample(10).x, a.x)
    assert len({PromptStream(setting, 4, purpose).generator.initial_seed() for purpose in (INIT, TRAIN, EVAL)}) == 3


def test_unknown_covariates_are_refused_in_one_line():
    with pytest.raises(ParameterError) as error:
        covariates("cauchy", 3)
    assert str(error.value).count("\n") == 0 and "covariates" in str(error.value) and "normal" in str(error.value)


@pytest.mark.parametrize("k", [0.2, 0.5, 2.5])
def test_gamma_sweep_keeps_the_scale_variance_at_ten(k):
    """gamma_setting(k): |x|^2 = s ~ Gamma(k, sqrt(10/k)), so Var(s) = 10 for every k and E|x|^2 = sqrt(10 k)."""
    from lintf_core.settings import gamma_setting
    setting = gamma_setting(k)
    s = (PromptStream(setting, 0).sample(40000).x ** 2).sum(-1).double().flatten()
    assert s.mean().item() == pytest.approx((10 * k) ** 0.5, rel=0.02)
    assert s.var().item() == pytest.approx(10.0, rel=0.08)
    assert gamma_setting(0.1) is get_setting("heavy_tailed")
    with pytest.raises(ParameterError, match="gamma_shape: got -1; allowed: a positive number"):
        gamma_setting(-1)
