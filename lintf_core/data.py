"""Random linear-regression prompts (Section 3.1, Table 1; paper-facts §4).

A prompt is N context pairs (x_i, y_i = <w, x_i>) and a query x_{N+1}, with w ~ N(0, I_d) drawn per prompt and no
label noise. The query covariate comes from the same distribution as the context covariates.

Covariates:
  normal  x ~ N(0, I_d)
  sphere  x ~ Unif(S^{d-1})                          (g / |g| with g Gaussian)
  gamma   x ~ sqrt(s) * Unif(S^{d-1}), s ~ Gamma(shape k, scale theta)   (k=2.5, theta=2 gives N(0, I_5))
"""

from dataclasses import dataclass

import numpy as np
import torch

from .errors import check_choice
from .settings import COVARIATES

# Independent random streams per (seed, purpose): runs with the same seed share their initialization and their
# training data, and the evaluation batch has its own seed (99, as in the authors' code). NOISE and TRUE_GRADIENT
# feed the noise histogram's minibatches and its large "true gradient" batch.
INIT, TRAIN, EVAL, NOISE, TRUE_GRADIENT = 0, 1, 2, 3, 4


def child_seed(seed, purpose):
    """A 63-bit seed for the stream `purpose` of `seed`, independent of every other (seed, purpose)."""
    return int(np.random.SeedSequence([int(seed), int(purpose)]).generate_state(1, np.uint64)[0] >> 1)


@dataclass
class Prompts:
    """A batch of prompts. x: (..., B, N, d) context covariates, w: (..., B, d), x_query: (..., B, d)."""

    x: torch.Tensor
    w: torch.Tensor
    x_query: torch.Tensor

    @property
    def y(self):
        return torch.einsum("...nd,...d->...n", self.x, self.w)

    @property
    def y_query(self):
        return (self.x_query * self.w).sum(-1)


def sample_covariates(shape, d, covariates, generator, np_rng, gamma_shape=0.1, gamma_scale=10.0):
    """Covariates of shape (*shape, d) drawn from `covariates` ("normal" | "sphere" | "gamma")."""
    check_choice("covariates", covariates, COVARIATES)
    g = torch.randn(*shape, d, generator=generator)
    if covariates == "normal":
        return g
    direction = g / g.norm(dim=-1, keepdim=True)
    if covariates == "sphere":
        return direction
    scale = np_rng.gamma(gamma_shape, gamma_scale, size=shape)
    return direction * torch.from_numpy(np.sqrt(scale)).to(direction.dtype).unsqueeze(-1)


class PromptStream:
    """The stream of prompt batches of one (setting, seed, purpose): the same seed always gives the same batches."""

    def __init__(self, setting, seed, purpose=TRAIN):
        self.setting = setting
        state = child_seed(seed, purpose)
        self.generator = torch.Generator().manual_seed(state)
        self.np_rng = np.random.default_rng(state)  # Gamma scales (numpy's sampler, as in the authors' code)

    def sample(self, batch_size):
        s = self.setting
        x = sample_covariates((batch_size, s.n_context + 1), s.d, s.covariates, self.generator, self.np_rng,
                              s.gamma_shape, s.gamma_scale)
        w = torch.randn(batch_size, s.d, generator=self.generator)
        return Prompts(x=x[:, :-1], w=w, x_query=x[:, -1])


def input_matrix(prompts):
    """Z_0 of Eq. (4): columns are tokens [x_i; y_i], the last column is the query [x_{N+1}; 0]. (..., d+1, N+1)."""
    tokens = torch.cat([prompts.x, prompts.y.unsqueeze(-1)], dim=-1)
    query = torch.cat([prompts.x_query, torch.zeros_like(prompts.x_query[..., :1])], dim=-1)
    return torch.cat([tokens, query.unsqueeze(-2)], dim=-2).transpose(-1, -2)


@dataclass
class PromptStatistics:
    """What a linear-attention model sees of a prompt (exact, see model.py): G = (1/N) sum_i z_i z_i^T over the
    context tokens z_i = [x_i; y_i], the query token z_q = [x_q; 0] and the target <w, x_q>.
    Examples are the LAST dimension (the engine's fast layout): G (..., d+1, d+1, B), z_query (..., d+1, B),
    target (..., B)."""

    G: torch.Tensor
    z_query: torch.Tensor
    target: torch.Tensor

    def select(self, index):
        """The statistics of the batches `index` along the leading dimension (e.g. runs -> their seed's batch)."""
        return PromptStatistics(self.G[index], self.z_query[index], self.target[index])


def prompt_statistics(prompts):
    """PromptStatistics of a batch of prompts with any leading dimensions (..., B, N, d)."""
    x = prompts.x.movedim((-3, -2), (-1, -2)).contiguous()  # (..., d, N, B)
    y = prompts.y.movedim(-2, -1)  # (..., N, B)
    n = x.shape[-2]
    # S = (1/N) sum_n x_n x_n^T, accumulated over n: long vectorised ops instead of thousands of tiny matmuls.
    S = x[..., :, None, 0, :] * x[..., None, :, 0, :]
    for i in range(1, n):
        S = torch.addcmul(S, x[..., :, None, i, :], x[..., None, :, i, :])
    S = S / n
    b = (x * y.unsqueeze(-3)).mean(-2)  # (1/N) sum_n x_n y_n
    c = (y * y).mean(-2, keepdim=True)  # (1/N) sum_n y_n^2
    G = torch.cat([torch.cat([S, b.unsqueeze(-2)], -2), torch.cat([b, c], -2).unsqueeze(-3)], -3)
    x_query = prompts.x_query.movedim(-2, -1)
    z_query = torch.cat([x_query, torch.zeros_like(x_query[..., :1, :])], -2)
    return PromptStatistics(G=G, z_query=z_query, target=prompts.y_query)


def stack_prompts(batches):
    """One Prompts with a new leading dimension from a list of equally shaped batches."""
    return Prompts(torch.stack([p.x for p in batches]), torch.stack([p.w for p in batches]),
                   torch.stack([p.x_query for p in batches]))
