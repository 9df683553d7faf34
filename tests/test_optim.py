"""The batched optimizers against torch.optim.SGD / torch.optim.AdamW with the authors' manual clipping."""

import numpy as np
import pytest
import torch

from lintf_core.data import PromptStream, prompt_statistics
from lintf_core.model import Architecture, init_params, loss, loss_and_grad
from lintf_core.optim import clip_by_global_norm, init_state, step
from lintf_core.settings import get_setting

RUNS = [("sgd", 0.02, 1.0), ("adam", 0.02, 1.0), ("sgd", 0.1, 0.05), ("adam", 0.005, 0.05), ("adam", 0.3, 1e9)]


def torch_optimizer(kind, params, lr):
    if kind == "sgd":
        return torch.optim.SGD([params], lr=lr, momentum=0.9)
    return torch.optim.AdamW([params], lr=lr, betas=(0.9, 0.9), weight_decay=0.0)


def test_twenty_steps_match_torch_optim_with_manual_clipping():
    setting = get_setting("setting1")
    arch = Architecture.of(setting)
    theta0 = init_params(arch, range(len(RUNS)), 0.05).double()
    stream = PromptStream(setting, 0)
    batches = []
    for _ in range(20):
        p = stream.sample(64)
        p.x, p.w, p.x_query = p.x.double(), p.w.double(), p.x_query.double()
        batches.append(prompt_statistics(p))

    # ours: all runs at once
    theta = theta0.clone()
    state = init_state(theta, [k for k, _, _ in RUNS], [lr for _, lr, _ in RUNS], [c for _, _, c in RUNS])
    for batch in batches:
        _, grad = loss_and_grad(theta, arch, batch)
        grad, _ = clip_by_global_norm(grad, state.clip)
        theta = step(theta, grad, state)

    # torch.optim: one run at a time, clipping as in the authors' code
    for r, (kind, lr, clip) in enumerate(RUNS):
        params = theta0[r].clone().requires_grad_(True)
        opt = torch_optimizer(kind, params, lr)
        for batch in batches:
            opt.zero_grad()
            loss(params[None], arch, batch)[0].backward()
            norm = params.grad.norm()
            if norm > clip:
                params.grad.mul_(clip / norm)
            opt.step()
        torch.testing.assert_close(theta[r], params.detach(), rtol=1e-9, atol=1e-11, msg=f"run {r} {kind}")


def test_clipping_is_global_per_run():
    grad = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]])
    clipped, norm = clip_by_global_norm(grad, torch.tensor([1.0, 1.0, 1.0]))
    torch.testing.assert_close(norm, torch.tensor([5.0, 0.5, 0.0]))
    torch.testing.assert_close(clipped, torch.tensor([[0.6, 0.8], [0.3, 0.4], [0.0, 0.0]]))


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_runs_do_not_interact(kind):
    """A run's trajectory does not depend on which other runs share the batch."""
    arch = Architecture(n_layers=2, d=3)
    theta = torch.randn(3, arch.n_params, generator=torch.Generator().manual_seed(0))
    grads = [torch.randn(3, arch.n_params, generator=torch.Generator().manual_seed(i)) for i in range(5)]
    all_state = init_state(theta, [kind] * 3, [0.1, 0.2, 0.3], [1.0] * 3)
    one_state = init_state(theta[1:2], [kind], [0.2], [1.0])
    a, b = theta.clone(), theta[1:2].clone()
    for g in grads:
        a = step(a, clip_by_global_norm(g, all_state.clip)[0], all_state)
        b = step(b, clip_by_global_norm(g[1:2], one_state.clip)[0], one_state)
    torch.testing.assert_close(a[1:2], b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_adam_square_root_is_correctly_rounded(dtype):
    """Adam's sqrt is IEEE 754's correctly rounded root (the same bits on every CPU): in float32 it equals the
    float64 root rounded to float32 (exact: 53 >= 2 x 24 + 2 bits), in float64 it is the nearest double, so its
    square brackets x to within half an ulp of the root."""
    from lintf_core.optim import exact_sqrt

    x = torch.rand(100000, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 1e3
    x = torch.cat([x, torch.tensor([0.0, 1.0, 4.0, 2.0, 1e-30, 3e30])]).to(dtype)
    root = exact_sqrt(x)
    assert root.dtype == dtype
    if dtype == torch.float32:
        assert np.array_equal(root.numpy(), np.sqrt(x.double().numpy()).astype(np.float32))
    else:
        r = root.numpy()
        up, down = np.nextafter(r, np.inf), np.nextafter(r, 0)
        # |r^2 - x| is no larger than for either neighbour (the root is the nearest double)
        err = np.abs(r.astype(np.longdouble) ** 2 - x.numpy())
        assert (err <= np.abs(up.astype(np.longdouble) ** 2 - x.numpy())).all()
        assert (err <= np.abs(down.astype(np.longdouble) ** 2 - x.numpy())).all()
