"""SGD with momentum and Adam as functions of tensors with a leading run dimension.

Each run has its own optimizer, learning rate and global gradient-norm clipping threshold, so seeds x optimizers x
learning rates step together. The updates are PyTorch's (the authors used torch.optim):
  SGDM  torch.optim.SGD(momentum=0.9): heavy ball, no dampening, no Nesterov: b <- mu b + g;  x <- x - lr b
  Adam  torch.optim.AdamW(betas=(0.9, 0.9), eps=1e-8, weight_decay=0): bias-corrected m / (sqrt(v) + eps)
Clipping follows the code: if |g| > c, g <- g c / |g| (one global norm over all parameters of a run).
"""

from dataclasses import dataclass

import numpy as np
import torch

MOMENTUM = 0.9
BETAS = (0.9, 0.9)
EPS = 1e-8


@dataclass
class OptimizerState:
    is_adam: torch.Tensor  # (runs,) bool
    lr: torch.Tensor  # (runs,)
    clip: torch.Tensor  # (runs,); inf disables clipping
    momentum_buffer: torch.Tensor  # (runs, n_params)
    exp_avg: torch.Tensor
    exp_avg_sq: torch.Tensor
    steps: int = 0


def init_state(theta, optimizers, lrs, clips):
    """State for runs whose optimizers ("sgd" | "adam"), learning rates and clipping thresholds are given per run."""
    zeros = torch.zeros_like(theta)
    return OptimizerState(
        is_adam=torch.tensor([o == "adam" for o in optimizers]),
        lr=torch.tensor(lrs, dtype=theta.dtype),
        clip=torch.tensor(clips, dtype=theta.dtype),
        momentum_buffer=zeros.clone(), exp_avg=zeros.clone(), exp_avg_sq=zeros.clone(),
    )


def clip_by_global_norm(grad, threshold):
    """Per run: scale the gradient to norm `threshold` when it is larger. Returns (clipped, norm before clipping)."""
    norm = grad.norm(dim=1)
    scale = torch.clamp(threshold / norm, max=1.0)  # norm 0 gives inf -> 1
    return grad * scale.unsqueeze(1), norm


def step(theta, grad, state):
    """One optimizer step of every run (grad already clipped). Returns the new parameters; updates `state`."""
    state.steps += 1
    t = state.steps
    state.momentum_buffer.mul_(MOMENTUM).add_(grad)
    state.exp_avg.mul_(BETAS[0]).add_(grad, alpha=1 - BETAS[0])
    state.exp_avg_sq.mul_(BETAS[1]).addcmul_(grad, grad, value=1 - BETAS[1])
    adam_direction = (state.exp_avg / (1 - BETAS[0] ** t)) / (
        exact_sqrt(state.exp_avg_sq) / (1 - BETAS[1] ** t) ** 0.5 + EPS)
    direction = torch.where(state.is_adam.unsqueeze(1), adam_direction, state.momentum_buffer)
    return theta - state.lr.unsqueeze(1) * direction


def exact_sqrt(x):
    """The correctly rounded square root (IEEE 754's, numpy's). torch's CPU sqrt calls MKL's vector math, which is
    not correctly rounded and whose bits depend on the CPU; Adam amplifies such last-bit differences into different
    chaotic runs, so the same seed would give other numbers on another CPU."""
    return torch.from_numpy(np.sqrt(x.numpy()))
