"""The L-layer linear Transformer TF_L of Eq. (7)-(8), batched over independent runs: the readable reference that
the engine (engine/) is tested against.

    Attn_{P,Q}(Z) = P Z M (Z^T Q Z),   M = diag(I_n, 0)
    Z_{l+1}       = Z_l + (1/n) Attn_{P_l,Q_l}(Z_l)
    TF_L(Z_0)     = -[Z_L]_{d+1, n+1}
    loss          = (TF_L(Z_0) - <w, x_{n+1}>)^2         (no 1/2, as in the paper and the code)

`transcription` is those lines as printed, one run at a time; the tests and bench.py's reference loop use it.
`predict_tokens` is the same computation for many runs and the attention variants; `predict_statistics` the
identity that makes linear attention cheap:

    G_l = (1/n) Z_l M Z_l^T = (1/n) sum_{i<=n} z_i z_i^T,   so   Z_{l+1} = (I + P_l G_l Q_l) Z_l = A_l Z_l:

every token moves by the same matrix A_l, G_{l+1} = A_l G_l A_l^T, and a prompt enters only through G_0, its query
token and its target (data.PromptStatistics).

Parameters are one flat tensor `theta` of shape (runs, n_params): a run dimension first, so that one call evaluates
many independent runs (seeds x optimizers x learning rates).

Parametrizations:
  sparse  the authors' code (Ahn et al. 2023b): only the top-left d x d blocks of P and Q are trained;
          P_full = [[P, 0], [0, 1]], Q_full = [[Q, 0], [0, 0]]. Layout (L, 2, d, d), as the code's `allparam`.
  full    all of the (d+1) x (d+1) P and Q are trained. Layout (L, 2, d+1, d+1).
The code scores token pairs as z_n^T Q z_l where Eq. (7) has z_l^T Q z_n; we follow Eq. (7). The two differ by
Q <-> Q^T, a relabelling of coordinates that i.i.d. initialization, both optimizers and diagonal Hessian
statistics are all blind to.

Variants (each tested against a literal transcription of its equations in tests/test_model.py):
  attention="softmax"     the authors' code comment (Fig. 7): softmax over each query's scores before the mask, 1/n kept;
  attention="gaussian"    the poster's kernel exp(-|W_Q z_j - W_K z_i|^2 / (2 sqrt d)), unnormalized (needs separate);
  query_key="separate"    Q = W_K^T W_Q with both factors trained (Fig. 8 left);
  mlp_hidden=k            a learned ReLU pre-layer on every token's covariate (Appendix B, Fig. 15).
The poster's own one-layer multi-head regression model lives in multihead.py.
"""

from dataclasses import dataclass

import torch

from .data import INIT, Prompts, PromptStatistics, child_seed, input_matrix, prompt_statistics
from .errors import ParameterError, check_choice, check_nonnegative_int
from .settings import ATTENTIONS, PARAMETRIZATIONS, QUERY_KEYS


@dataclass(frozen=True)
class Architecture:
    n_layers: int
    d: int
    parametrization: str = "sparse"
    attention: str = "linear"
    query_key: str = "single"
    mlp_hidden: int = 0

    def __post_init__(self):
        check_choice("parametrization", self.parametrization, PARAMETRIZATIONS)
        check_choice("attention", self.attention, ATTENTIONS)
        check_choice("query_key", self.query_key, QUERY_KEYS)
        if self.attention == "gaussian" and self.query_key != "separate":
            raise ParameterError("query_key", self.query_key, "'separate' with attention='gaussian' (the Gaussian "
                                                              "kernel compares W_Q z_j with W_K z_i)")
        check_nonnegative_int("mlp_hidden", self.mlp_hidden)

    @classmethod
    def of(cls, setting, **overrides):
        fields = dict(n_layers=setting.n_layers, d=setting.d, parametrization=setting.parametrization,
                      attention=setting.attention, query_key=setting.query_key, mlp_hidden=setting.mlp_hidden)
        fields.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**fields)

    @property
    def block(self):
        """Side of the trainable P and Q blocks."""
        return self.d if self.parametrization == "sparse" else self.d + 1

    @property
    def matrices_per_layer(self):
        return 2 if self.query_key == "single" else 3  # P, Q  or  P, W_Q, W_K

    @property
    def n_attention_params(self):
        return self.n_layers * self.matrices_per_layer * self.block**2

    @property
    def n_params(self):
        h, d = self.mlp_hidden, self.d
        return self.n_attention_params + (h * d + h + d * h + d if h else 0)

    @property
    def uses_statistics(self):
        """Whether the exact prompt-statistics path applies (linear attention; any pre-layer is applied first)."""
        return self.attention == "linear"


def init_params(arch, seeds, std):
    """Initial parameters, i.i.d. N(0, std^2), one row per seed, each from its own seed's init stream (every trained
    matrix alike, as the authors' code; also W_Q, W_K and the pre-layer MLP, whose init the paper does not give)."""
    rows = [torch.randn(arch.n_params, generator=torch.Generator().manual_seed(child_seed(s, INIT))) for s in seeds]
    return torch.stack(rows) * std


def attention_blocks(theta, arch):
    """The trained blocks of every layer, each (runs, L, b, b): P, the score matrix Q (= W_K^T W_Q for separate
    query and key) and the projections (W_Q, W_K), or None for a single Q."""
    runs, b = theta.shape[0], arch.block
    blocks = theta[:, :arch.n_attention_params].reshape(runs, arch.n_layers, arch.matrices_per_layer, b, b)
    if arch.query_key == "single":
        return blocks[:, :, 0], blocks[:, :, 1], None
    W_Q, W_K = blocks[:, :, 1], blocks[:, :, 2]
    return blocks[:, :, 0], W_K.transpose(-1, -2) @ W_Q, (W_Q, W_K)


def _corner(arch, dtype):
    corner = torch.zeros(arch.d + 1, arch.d + 1, dtype=dtype)
    corner[arch.d, arch.d] = 1.0
    return corner


def attention_matrices(theta, arch):
    """The full (d+1)x(d+1) matrices P_l and Q_l of every run: two tensors of shape (runs, L, d+1, d+1)."""
    P, Q, _ = attention_blocks(theta, arch)
    if arch.parametrization == "full":
        return P, Q
    pad = (0, 1, 0, 1)
    return torch.nn.functional.pad(P, pad) + _corner(arch, theta.dtype), torch.nn.functional.pad(Q, pad)


def pre_layer(theta, arch, x):
    """The learned ReLU MLP applied to covariates x (runs|1, ..., d) of every run (identity without one):
    x -> W2 relu(W1 x + b1) + b2, replacing x (Appendix B). Returns (runs, ..., d)."""
    if not arch.mlp_hidden:
        return x
    h, d, runs = arch.mlp_hidden, arch.d, theta.shape[0]
    flat = theta[:, arch.n_attention_params:]
    sizes = [h * d, h, d * h, d]
    W1, b1, W2, b2 = torch.split(flat, sizes, dim=1)
    W1, W2 = W1.reshape(runs, h, d), W2.reshape(runs, d, h)
    shape = x.shape
    x = x.reshape(x.shape[0], -1, d)  # (runs|1, M, d)
    hidden = torch.relu(x @ W1.transpose(1, 2) + b1[:, None])
    return (hidden @ W2.transpose(1, 2) + b2[:, None]).reshape(runs, *shape[1:])


def predict_tokens(theta, arch, Z0):
    """TF_L(Z_0) at token level. Z0: (B, d+1, n+1) shared by all runs, or (runs, B, d+1, n+1). Returns (runs, B).
    Attention scores of query token j for key token i:
      linear    z_i^T Q z_j                                   (Eq. 7)
      softmax   softmax_i(z_i^T Q z_j), over all n+1 keys before the mask, 1/n kept (the authors' code comment)
      gaussian  exp(-|W_Q z_j - W_K z_i|^2 / (2 sqrt(d)))     (the poster's Eq. 3-4; no normalization)"""
    P, Q = attention_matrices(theta, arch)
    runs, n = theta.shape[0], Z0.shape[-1] - 1
    X = Z0.transpose(-1, -2)  # tokens as rows: (..., B, n+1, d+1)
    X = X.expand(runs, *X.shape[-3:]) if X.dim() == 3 else X
    if arch.mlp_hidden:
        X = torch.cat([pre_layer(theta, arch, X[..., :arch.d]), X[..., arch.d:]], dim=-1)
    if arch.attention == "gaussian":
        _, _, (W_Q, W_K) = attention_blocks(theta, arch)
        if arch.parametrization == "sparse":  # the projections see only the covariates, as Q does
            W_Q, W_K = (torch.nn.functional.pad(W, (0, 1, 0, 1)) for W in (W_Q, W_K))
    key_mask = torch.ones(n + 1, dtype=X.dtype)
    key_mask[n] = 0.0  # M: the query token is never a key/value
    for layer in range(arch.n_layers):
        Pl, Ql = P[:, layer, None], Q[:, layer, None]
        if arch.attention == "gaussian":
            queries = X @ W_Q[:, layer, None].transpose(-1, -2)  # rows W_Q z_j
            keys = X @ W_K[:, layer, None].transpose(-1, -2)
            # |q_j - k_i|^2 = |q_j|^2 + |k_i|^2 - 2 q_j.k_i: matrix products, no (n+1)^2 x d intermediate
            distance2 = ((queries**2).sum(-1, keepdim=True) + (keys**2).sum(-1).unsqueeze(-2)
                         - 2 * queries @ keys.transpose(-1, -2)).clamp_min(0)  # [j, i]
            scores = torch.exp(-distance2 / (2 * arch.d**0.5))
        else:
            scores = X @ Ql.transpose(-1, -2) @ X.transpose(-1, -2)  # [j, i] = z_i^T Q z_j (query j, key i)
            if arch.attention == "softmax":
                scores = torch.softmax(scores, dim=-1)
        X = X + (scores * key_mask) @ (X @ Pl.transpose(-1, -2)) / n
    return -X[..., n, arch.d]


def transcription(P_layers, Q_layers, Z, softmax=False):
    """Eq. (7)-(8) as printed, for one run: Z_{l+1} = Z_l + (1/n) P_l Z_l M (Z_l^T Q_l Z_l), the prediction
    -[Z_L]_{d+1, n+1}. P_layers, Q_layers: the (d+1) x (d+1) matrices of each layer; Z: (..., d+1, n+1) prompts.
    softmax=True: the authors' code comment (Fig. 7), softmax over each query's scores before M."""
    n = Z.shape[-1] - 1
    M = torch.eye(n + 1, dtype=Z.dtype)
    M[n, n] = 0.0  # the query token is never a key or a value

    def attention(scores):  # scores[i, j] = z_i^T Q z_j: key i, query j
        return torch.softmax(scores, dim=-2) if softmax else scores

    for P, Q in zip(P_layers, Q_layers):
        Z = Z + (P @ Z @ M @ attention(Z.transpose(-1, -2) @ Q @ Z)) / n
    return -Z[..., -1, -1]


def predict_statistics(theta, arch, stats):
    """TF_L from prompt statistics (linear attention only; exact, the identity of the module docstring): per prompt,
    layer by layer, A = I + P G Q, the query token z <- A z and G <- A G A^T; the prediction is -z[d+1].
    stats.G: (k, k, B) shared by all runs, or (runs, k, k, B) (examples last, data.PromptStatistics). Returns
    (runs, B)."""
    if arch.attention != "linear":
        raise ValueError(f"attention: the statistics path is exact only for 'linear', got {arch.attention!r}")
    P, Q = attention_matrices(theta, arch)  # (runs, L, k, k)
    G = stats.G.movedim(-1, -3)  # (..., B, k, k): one matrix per prompt
    z = stats.z_query.movedim(-1, -2).unsqueeze(-1)  # (..., B, k, 1): the query token
    eye = torch.eye(arch.d + 1, dtype=theta.dtype)
    for layer in range(arch.n_layers):
        P_l, Q_l = P[:, layer, None], Q[:, layer, None]  # (runs, 1, k, k): the same matrices for every prompt
        A = eye + P_l @ G @ Q_l
        z = A @ z
        G = A @ G @ A.transpose(-1, -2)
    return -z[..., arch.d, 0]


def model_input(arch, prompts):
    """What the model needs of a batch of prompts: their exact statistics where those suffice (linear attention, no
    learned pre-layer), else the prompts themselves."""
    if arch.uses_statistics and not arch.mlp_hidden:
        return prompt_statistics(prompts)
    return prompts


def per_prompt_loss(theta, arch, data, predict_statistics=predict_statistics):
    """Squared error of every prompt for every run: (runs, B). `data` is PromptStatistics (linear attention, no
    pre-layer) or Prompts (anything; linear attention with a pre-layer runs on the statistics of the mapped
    covariates; without one, Prompts take the token-level path). predict_statistics: the statistics path (the
    engine passes its faster one, engine/autograd.py)."""
    if isinstance(data, PromptStatistics):
        if arch.mlp_hidden:
            raise ValueError("data: a model with a learned pre-layer needs Prompts, not PromptStatistics")
        return (predict_statistics(theta, arch, data) - data.target) ** 2
    if isinstance(data, Prompts):
        if arch.mlp_hidden and arch.uses_statistics:
            shared = data.w.dim() == 2  # one batch for all runs: give it a run dimension of 1
            x, x_query = (v[None] if shared else v for v in (data.x, data.x_query))
            stats = prompt_statistics(data, x=pre_layer(theta, arch, x), x_query=pre_layer(theta, arch, x_query))
            return (predict_statistics(theta, arch, stats) - stats.target) ** 2
        return (predict_tokens(theta, arch, input_matrix(data)) - data.y_query) ** 2
    raise TypeError(f"data: expected Prompts or PromptStatistics, got {type(data).__name__}")


def loss(theta, arch, data):
    """The empirical objective f of every run on a batch: mean squared error, shape (runs,)."""
    return per_prompt_loss(theta, arch, data).mean(-1)


def loss_and_grad(theta, arch, data, loss=loss):
    """Per-run loss (runs,) and per-run gradient (runs, n_params) of `loss`: the runs are independent, so the
    gradient of the sum over runs is every run's own gradient."""
    theta = theta.detach().requires_grad_(True)
    value = loss(theta, arch, data)
    (grad,) = torch.autograd.grad(value.sum(), theta)
    return value.detach(), grad
