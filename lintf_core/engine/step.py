"""optim.clip_by_global_norm and optim.step in one compiled pass over every run's parameters."""

import numba
import numpy as np
import torch

from ..optim import BETAS, EPS, MOMENTUM


def clip_and_step(theta, grad, state):
    """optim.clip_by_global_norm and optim.step in one compiled pass (as ~15 small torch operations they were a
    visible share of a fast training step): the same updates in theta's dtype, tested against them. Returns (new parameters, each run's gradient norm before clipping); updates `state`."""
    state.steps += 1
    t, dtype = state.steps, theta.numpy().dtype
    constants = np.array([MOMENTUM, BETAS[0], 1 - BETAS[0], BETAS[1], 1 - BETAS[1], 1 - BETAS[0] ** t,
                          (1 - BETAS[1] ** t) ** 0.5, EPS], dtype)
    new_theta, norm = np.empty_like(theta.numpy()), np.empty(len(theta), dtype)
    _clip_and_step(theta.numpy(), np.ascontiguousarray(grad.detach().numpy()), state.is_adam.numpy(),
                   state.lr.numpy(), state.clip.numpy(), state.momentum_buffer.numpy(), state.exp_avg.numpy(),
                   state.exp_avg_sq.numpy(), constants, new_theta, norm)
    return torch.from_numpy(new_theta), torch.from_numpy(norm)


@numba.njit(cache=True, error_model="numpy")  # IEEE division: a zero norm gives inf, as torch's
def _clip_and_step(theta, grad, is_adam, lr, clip, momentum_buffer, exp_avg, exp_avg_sq, constants, new_theta, norms):
    momentum, beta1, one_minus_beta1, beta2, one_minus_beta2, bias1, bias2_root, eps = constants
    one = constants.dtype.type(1)
    for r in range(theta.shape[0]):
        squares = 0.0
        for k in range(theta.shape[1]):
            squares += np.float64(grad[r, k]) * grad[r, k]
        norm = norms.dtype.type(np.sqrt(squares))
        norms[r] = norm
        scale = clip[r] / norm  # norm 0 gives inf -> 1; a NaN norm stays NaN (torch.clamp's)
        if scale > one:
            scale = one
        for k in range(theta.shape[1]):
            g = grad[r, k] * scale
            momentum_buffer[r, k] = momentum_buffer[r, k] * momentum + g
            exp_avg[r, k] = exp_avg[r, k] * beta1 + one_minus_beta1 * g
            exp_avg_sq[r, k] = exp_avg_sq[r, k] * beta2 + one_minus_beta2 * g * g
            if is_adam[r]:
                direction = (exp_avg[r, k] / bias1) / (np.sqrt(exp_avg_sq[r, k]) / bias2_root + eps)
            else:
                direction = momentum_buffer[r, k]
            new_theta[r, k] = theta[r, k] - lr[r] * direction
