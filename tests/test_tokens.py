"""The token-level fast path (lintf_core/engine/tokens.py: softmax and Gaussian-kernel attention, Fig. 7) against the
readable model (model.predict_tokens), and its vectorised exponential against numpy's."""

import numpy as np
import pytest
import torch

from lintf_core import model
from lintf_core.engine import tokens
from lintf_core.data import TRAIN, Prompts, PromptStream, stack_prompts
from lintf_core.model import Architecture, init_params
from lintf_core.settings import get_setting
from lintf_core.train import train

VARIANTS = {"softmax": dict(attention="softmax"), "gaussian": dict(attention="gaussian", query_key="separate")}


def _double(prompts):
    return Prompts(prompts.x.double(), prompts.w.double(), prompts.x_query.double())


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", ["setting1", "setting2", "depth2"])
def test_loss_and_gradient_equal_the_readable_model_in_float64(variant, name):
    setting = get_setting(name)
    arch = Architecture.of(setting, **VARIANTS[variant])
    assert tokens.supports(arch)
    # two data batches, each run reading its own (run_data), parameters large enough for peaked attention
    prompts = _double(stack_prompts([PromptStream(setting, s, TRAIN).sample(70) for s in range(2)]))
    theta = init_params(arch, range(3), 0.4).double()
    run_data = np.array([1, 0, 1])
    loss, grad = tokens.loss_and_grad(theta, arch, prompts, run_data)
    loss_ref, grad_ref = model.loss_and_grad(theta, arch, prompts.select(torch.from_numpy(run_data)))
    np.testing.assert_allclose(loss, loss_ref, rtol=1e-10)
    np.testing.assert_allclose(grad, grad_ref, rtol=1e-8, atol=1e-10 * grad_ref.abs().max().item())
    one = prompts.select(0)  # one batch for every run
    np.testing.assert_allclose(tokens.per_prompt_loss(theta, arch, one),
                               model.per_prompt_loss(theta, arch, one), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("variant", VARIANTS)
def test_float32_kernel_matches_float64_model(variant):
    """The training precision: float32 with the vectorised exponential, against the float64 model."""
    setting = get_setting("setting1")
    arch = Architecture.of(setting, **VARIANTS[variant])
    prompts = PromptStream(setting, 0, TRAIN).sample(300)
    theta = init_params(arch, range(2), 0.3)
    loss, grad = tokens.loss_and_grad(theta, arch, prompts)
    loss_ref, grad_ref = model.loss_and_grad(theta.double(), arch, _double(prompts))
    np.testing.assert_allclose(loss, loss_ref, rtol=1e-4)
    np.testing.assert_allclose(grad, grad_ref, rtol=1e-3, atol=1e-4 * grad_ref.abs().max().item())


def test_vectorised_exponential_matches_numpy():
    x = -np.random.default_rng(0).random(10000).astype(np.float32) * 86
    x[:3] = [0.0, -1e-7, -86.9]
    value = x.copy()
    tokens._exp_inplace(value, np.empty(len(x), np.int32))
    np.testing.assert_allclose(value, np.exp(x.astype(np.float64)), rtol=1e-6)
    far = np.array([-87.5, -200.0, -1e30], np.float32)  # clamped at exp(-87): zero beside any real weight
    tokens._exp_inplace(far, np.empty(3, np.int32))
    assert (far >= 0).all() and (far < 2e-38).all()


def test_supports_only_the_variants_it_computes():
    s = get_setting("setting1")
    assert not tokens.supports(Architecture.of(s))  # linear: engine/sparse.py
    assert not tokens.supports(Architecture.of(s, attention="softmax", parametrization="full"))
    assert not tokens.supports(Architecture.of(s, attention="softmax", query_key="separate"))
    assert not tokens.supports(Architecture.of(get_setting("nonlinear"), attention="softmax"))


def test_training_through_the_kernel_follows_the_autograd_step():
    """A few engine iterations (fused kernel) against the same iterations by autograd on the same batches."""
    setting = get_setting("setting1")
    arch = Architecture.of(setting, attention="softmax")
    runs = train("setting1", seeds=[0], n_iters=3, attention="softmax", eval_every=3, iterate_every=1,
                 progress=False, use_cache=False)
    stream = PromptStream(setting, 0, TRAIN)
    for t in range(3):
        prompts = stream.sample(setting.batch_size)
        theta = torch.from_numpy(runs.iterates[:, t])
        _, grad = model.loss_and_grad(theta.double(), arch, _double(prompts))
        norm = grad.norm(dim=1, keepdim=True)
        assert torch.allclose(torch.from_numpy(runs.grad_norm[:, t]).double(), norm[:, 0], rtol=1e-3)
