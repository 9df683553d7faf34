"""The engine: every loss, gradient, Hessian and directional smoothness the book computes goes through the four
functions below, the one place a code path is chosen (kernel_for). Tested against model.py, the readable reference
(tests/test_engine.py: values, gradients, Hessians).

The paths, fastest first:
  sparse    the authors' parametrization on prompt statistics: compiled forward + backward (sparse.py) and
            Hessian-vector products (sparse_hvp.py); linear attention, no pre-layer, one Q or separate W_Q, W_K.
  full      Fig. 15's model (a learned pre-layer, full P and Q) on prompts: compiled (full.py, pre_layer.py).
  tokens    the token-level variants of Fig. 7 (softmax, the poster's Gaussian kernel) on prompts, sparse
            parametrization: compiled forward + backward (tokens.py).
  autograd  everything else, and the derivatives the compiled paths lack: torch's autograd and torch.func on
            autograd.py (the full parametrization without a pre-layer, other token-level models; the per-prompt losses
            of Fig. 15's model, which have no loss-only kernel; Hessians of token-level models).

Rooms: products.py (per-example products), sparse.py, sparse_hvp.py, full.py, pre_layer.py, tokens.py, step.py (the
compiled optimizer step), autograd.py. The statistics sampler is ../sampler.py.
"""

import numpy as np
import torch

from ..data import Prompts, PromptStatistics
from ..model import model_input
from . import autograd, full, sparse, sparse_hvp, tokens
from .step import clip_and_step  # the training loop's step: optim's clipping and update, compiled

__all__ = ["PATHS", "kernel_for", "reads_statistics", "per_prompt_loss", "loss_and_grad", "hessians", "directional_smoothness",
           "clip_and_step"]
PATHS = ("sparse", "full", "tokens", "autograd")


def kernel_for(arch, data, derivative="gradient"):
    """The path that computes `derivative` ("loss", "gradient" or "hessian": Hessians and Hessian-vector products)
    of `arch` on `data` (PromptStatistics or Prompts): one of PATHS."""
    if sparse.supports(arch) and isinstance(data, PromptStatistics):
        return "sparse"
    if full.supports_full(arch) and isinstance(data, Prompts) and derivative != "loss":
        return "full"
    if tokens.supports(arch) and isinstance(data, Prompts) and derivative != "hessian":
        return "tokens"
    return "autograd"


def reads_statistics(arch):
    """Whether the engine's fastest path for `arch` reads prompts' statistics (data.PromptStatistics), so that a
    caller may draw them directly (sampler.py) instead of drawing every prompt."""
    return sparse.supports(arch)


def _autograd_input(arch, data, run_data):
    """What autograd.py reads: the model input of `data` (statistics where they suffice), run r's batch
    run_data[r] selected (None: one batch for all runs, or batch r for run r)."""
    data = model_input(arch, data) if isinstance(data, Prompts) else data
    return data if run_data is None else data.select(run_data)


def per_prompt_loss(theta, arch, data, run_data=None):
    """Squared error of every prompt for every run, (runs, B), no gradient. data: one batch for all runs, or one
    per data batch (leading axis; run_data[r] is run r's, default batch r)."""
    path = kernel_for(arch, data, "loss")
    if path == "sparse":
        return sparse.per_prompt_loss(theta, arch, data, run_data)
    if path == "tokens":
        return tokens.per_prompt_loss(theta, arch, data, run_data)
    with torch.no_grad():
        return autograd.per_prompt_loss(theta, arch, _autograd_input(arch, data, run_data))


def loss_and_grad(theta, arch, data, run_data=None):
    """Per-run mean loss (runs,) and gradient (runs, n_params) on `data` (as per_prompt_loss's)."""
    path = kernel_for(arch, data)
    if path == "sparse":
        return sparse.loss_and_grad(theta, arch, data, run_data)
    if path == "full":
        return full.loss_and_grad_full(theta, arch, data, run_data)
    if path == "tokens":
        return tokens.loss_and_grad(theta, arch, data, run_data)
    return autograd.loss_and_grad(theta, arch, _autograd_input(arch, data, run_data))


def hessians(theta, arch, data):
    """Exact Hessians (runs, n_params, n_params) of the loss on one batch shared by all runs.
    Compiled paths: the Hessian-vector products with every unit vector (symmetrised: the two triangles agree to
    round-off). Fig. 15's model: the attention parameters' unit vectors give their attention rows only (the compiled
    pass); the pre-layer's give whole columns, whose attention rows are, by symmetry, the missing pre-layer rows of
    the first. The statistics path: the unit vector of a layer-l parameter gives the rows of layers >= l only (its
    tangents vanish below l: a tangent pass through L - l layers instead of L, about twice as fast); the rows below
    are the symmetric entries."""
    path = kernel_for(arch, data, "hessian")
    if path == "autograd":
        return autograd.hessians(theta, arch, data)
    runs, p = theta.shape
    unit = np.broadcast_to(np.eye(p, dtype=np.float32), (runs, p, p))
    if path == "full":
        a = arch.n_attention_params
        H = torch.cat([full.hessian_vector_products_full(theta, arch, data, unit[:, :a], pre_layer_rows=False),
                       full.hessian_vector_products_full(theta, arch, data, unit[:, a:])], 1)
        H[:, :a, a:] = H[:, a:, :a].transpose(1, 2)
    else:
        layer = np.arange(p) // (p // arch.n_layers)  # the parameters are layer-major (model.py)
        H = sparse_hvp.hessian_vector_products(theta, arch, data, unit, first=layer)  # H[:, k, i], layer[i] >= layer[k]
        below = torch.from_numpy(layer[None, :] < layer[:, None])  # the entries not computed: their mirror was
        H = torch.where(below, H.transpose(1, 2), H)
    return (H + H.transpose(1, 2)) / 2


def directional_smoothness(theta, direction, arch, data):
    """u^T H(theta) u / |u|^2 per run for directions u (runs, n_params), e.g. the step actually taken, on one batch:
    one Hessian-vector product, no Hessian formed."""
    path = kernel_for(arch, data, "hessian")
    if path == "autograd":
        return autograd.directional_smoothness(theta, direction, arch, data)
    u = direction.detach()
    products = full.hessian_vector_products_full if path == "full" else sparse_hvp.hessian_vector_products
    Hu = products(theta, arch, data, u.numpy()[:, None, :])[:, 0]
    return (Hu * u).sum(1) / (u * u).sum(1)
