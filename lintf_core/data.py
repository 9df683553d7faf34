"""Random linear-regression prompts (Section 3.1, Table 1).

A prompt is N context pairs (x_i, y_i = <w, x_i>) and a query x_{N+1}, with w ~ N(0, I_d) drawn per prompt and no
label noise. The query covariate comes from the same distribution as the context covariates.

Covariates:
  normal  x ~ N(0, I_d)
  sphere  x ~ Unif(S^{d-1})                          (g / |g| with g Gaussian)
  gamma   x ~ sqrt(s) * Unif(S^{d-1}), s ~ Gamma(shape k, scale theta)   (k=2.5, theta=2 gives N(0, I_5))
Targets: "linear" y = <w, x>; "mlp" (Appendix B) y = <w, MLP(x)> for one fixed random ReLU MLP; the prompt's
tokens still carry the raw x.
"""

from dataclasses import dataclass

import numpy as np
import torch

from .errors import check_choice
from .settings import COVARIATES

# Independent random streams per (seed, purpose): runs with the same seed share their initialization and their
# training data, and the evaluation batch has its own seed (99, as in the authors' code). NOISE and TRUE_GRADIENT
# feed the noise histogram's minibatches and its large "true gradient" batch. TARGET draws Appendix B's fixed MLP.
INIT, TRAIN, EVAL, NOISE, TRUE_GRADIENT, TARGET = 0, 1, 2, 3, 4, 5
TARGET_MLP_SEED = 7  # the authors create their target MLP once, under seed 7
# How training batches are drawn: what the model sees of each prompt directly, or every prompt (PromptStream)
SAMPLERS = ("statistics", "prompts")


def child_seed(seed, purpose):
    """A 63-bit seed for the stream `purpose` of `seed`, independent of every other (seed, purpose)."""
    return int(np.random.SeedSequence([int(seed), int(purpose)]).generate_state(1, np.uint64)[0] >> 1)


@dataclass
class Prompts:
    """A batch of prompts. x: (..., B, N, d) context covariates, w: (..., B, d), x_query: (..., B, d).
    feature: None (y = <w, x>) or the fixed target map phi of a nonlinear task (y = <w, phi(x)>)."""

    x: torch.Tensor
    w: torch.Tensor
    x_query: torch.Tensor
    feature: object = None

    def _phi(self, x):
        return x if self.feature is None else self.feature(x)

    @property
    def y(self):
        return torch.einsum("...nd,...d->...n", self._phi(self.x), self.w)

    @property
    def y_query(self):
        return (self._phi(self.x_query) * self.w).sum(-1)

    def select(self, index):
        """The batches `index` along the leading dimension (e.g. runs -> their seed's batch)."""
        return Prompts(self.x[index], self.w[index], self.x_query[index], self.feature)


def target_mlp(d, hidden, seed=TARGET_MLP_SEED):
    """Appendix B's fixed random target: x -> W2 relu(W1 x + b1) + b2, d -> hidden -> d, with PyTorch's default
    nn.Linear initialization (uniform in +-1/sqrt(fan_in)), drawn once from `seed`."""
    generator = torch.Generator().manual_seed(child_seed(seed, TARGET))

    def uniform(*shape, fan_in):
        return (torch.rand(*shape, generator=generator) * 2 - 1) / fan_in**0.5

    W1, b1 = uniform(hidden, d, fan_in=d), uniform(hidden, fan_in=d)
    W2, b2 = uniform(d, hidden, fan_in=hidden), uniform(d, fan_in=hidden)

    def mlp(x):  # numpy's products (OpenBLAS, its kernels pinned by make), not torch's: MKL's bits depend on the CPU
        # (optim.exact_sqrt). On the covariates as columns, W2 relu(W1 x + b1) + b2.
        try:
            columns = x.reshape(-1, x.shape[-1]).numpy().T
        except RuntimeError:  # no numpy view: x requires grad or is inside a torch.func transform (the tests' Hessians)
            return torch.relu(x @ W1.T.to(x.dtype) + b1.to(x.dtype)) @ W2.T.to(x.dtype) + b2.to(x.dtype)
        hidden = np.maximum(W1.numpy() @ columns + b1.numpy()[:, None], 0)
        return torch.from_numpy(np.ascontiguousarray((W2.numpy() @ hidden + b2.numpy()[:, None]).T)).reshape(x.shape)

    return mlp


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
        # Gamma scales (numpy's sampler, as in the authors' code) and the direct sampler's numbers
        self.np_rng = np.random.default_rng(state)
        self.feature = target_mlp(setting.d, setting.target_hidden) if setting.target == "mlp" else None

    def sample(self, batch_size):
        s = self.setting
        x = sample_covariates((batch_size, s.n_context + 1), s.d, s.covariates, self.generator, self.np_rng,
                              s.gamma_shape, s.gamma_scale)
        w = torch.randn(batch_size, s.d, generator=self.generator)
        return Prompts(x=x[:, :-1], w=w, x_query=x[:, -1], feature=self.feature)


# Which evaluation batch a run is scored on: "book", the book's own seed-99 stream (PromptStream(setting, 99, EVAL));
# "authors", the batch the authors' plotting code draws (authors_evaluation_batch).
EVAL_STREAMS = ("book", "authors")


def authors_evaluation_batch(setting, batch_size=1000, seed=99):
    """The evaluation batch exactly as the authors' plot_loss / plot_condition_number / plot_smoothness draw it:
    torch's and numpy's global generators seeded with `seed`, then generate_data's draws in its order: w (B, d), the context covariates (B, N, d), the query covariates (B, 1, d), all normal_(0, 1) from torch's
    CPU generator; for gamma covariates the squared radii np.random.gamma(k, sqrt(10 / k)) for the context (B, N)
    and then the query (B, 1) from numpy's legacy generator, as float32, square-rooted; sphere and gamma covariates
    are divided by their norms first. Private generators seeded alike give the same numbers without touching the
    global ones. Linear targets only (the authors' evaluation of Fig. 15 draws its own batch per seed)."""
    s = setting
    if s.target != "linear":
        raise ValueError(f"authors_evaluation_batch: the authors' seed-99 batch has linear targets; "
                         f"setting {s.name!r} has target {s.target!r}")
    generator = torch.Generator().manual_seed(seed)
    w = torch.empty(batch_size, s.d).normal_(0, 1, generator=generator)
    x = torch.empty(batch_size, s.n_context, s.d).normal_(0, 1, generator=generator)
    x_query = torch.empty(batch_size, 1, s.d).normal_(0, 1, generator=generator)
    if s.covariates in ("sphere", "gamma"):
        x = x / x.norm(dim=2, keepdim=True)
        x_query = x_query / x_query.norm(dim=2, keepdim=True)
    if s.covariates == "gamma":
        legacy = np.random.RandomState(seed)
        k = s.gamma_shape
        radii = torch.Tensor(legacy.gamma(shape=k, scale=(10 / k) ** 0.5, size=[batch_size, s.n_context])).sqrt()
        radii_query = torch.Tensor(legacy.gamma(shape=k, scale=(10 / k) ** 0.5, size=[batch_size, 1])).sqrt()
        x = x * radii.unsqueeze(-1)
        x_query = x_query * radii_query.unsqueeze(-1)
    return Prompts(x=x, w=w, x_query=x_query[:, 0])


def evaluation_prompts(setting, stream="book", batch_size=1000, seed=99):
    """The evaluation batch of `stream` (EVAL_STREAMS) for a run whose evaluation seed is `seed`."""
    check_choice("eval_stream", stream, EVAL_STREAMS)
    if stream == "authors":
        return authors_evaluation_batch(setting, batch_size, seed)
    return PromptStream(setting, seed, EVAL).sample(batch_size)


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


def prompt_statistics(prompts, x=None, x_query=None):
    """PromptStatistics of a batch of prompts with any leading dimensions (..., B, N, d). x, x_query: covariates as
    the attention sees them, if not the raw ones (a learned pre-layer's output); the labels stay the prompts'.
    Differentiable in x and x_query."""
    x = prompts.x if x is None else x
    x_query = prompts.x_query if x_query is None else x_query
    y = prompts.y.movedim(-2, -1)  # (..., N, B)
    x = x.movedim((-3, -2), (-1, -2)).contiguous()  # (..., d, N, B)
    y = y.expand(*x.shape[:-3], *y.shape[-2:])
    n = x.shape[-2]
    # S = (1/N) sum_n x_n x_n^T, accumulated over n: long vectorised ops instead of thousands of tiny matmuls.
    S = x[..., :, None, 0, :] * x[..., None, :, 0, :]
    for i in range(1, n):
        S = torch.addcmul(S, x[..., :, None, i, :], x[..., None, :, i, :])
    S = S / n
    b = (x * y.unsqueeze(-3)).mean(-2)  # (1/N) sum_n x_n y_n
    c = (y * y).mean(-2, keepdim=True)  # (1/N) sum_n y_n^2
    G = torch.cat([torch.cat([S, b.unsqueeze(-2)], -2), torch.cat([b, c], -2).unsqueeze(-3)], -3)
    x_query = x_query.movedim(-2, -1)
    z_query = torch.cat([x_query, torch.zeros_like(x_query[..., :1, :])], -2)
    return PromptStatistics(G=G, z_query=z_query, target=prompts.y_query.expand(*x_query.shape[:-2],
                                                                                 x_query.shape[-1]))


def stack_statistics(batches):
    """One PromptStatistics with a new leading dimension from a list of equally shaped ones."""
    return PromptStatistics(torch.stack([s.G for s in batches]), torch.stack([s.z_query for s in batches]),
                            torch.stack([s.target for s in batches]))


def stack_prompts(batches):
    """One Prompts with a new leading dimension from a list of equally shaped batches."""
    return Prompts(torch.stack([p.x for p in batches]), torch.stack([p.w for p in batches]),
                   torch.stack([p.x_query for p in batches]), batches[0].feature)
