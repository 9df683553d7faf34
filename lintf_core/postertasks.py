"""The poster's own tasks (Song et al., Figures 1 and 3): a small Transformer classifier whose attention is softmax or
the poster's Gaussian kernel, trained on Pathfinder images (pathfinder.py) and on text classification.

The model, as the poster describes it: tokens embedded in D = 64 with learned positions, 2 layers of multi-head
attention (H = 2 heads of d = D / H) and a feed-forward block of width 128, each with a residual connection (pre-layer
normalization), mean pooling over the tokens, a linear read-out. Head h's weights S_h are multihead.attention_scores:
    softmax  (Eq. 1-2)  S_h = row-softmax(X W^Q_h (X W^K_h)^T / sqrt(d))
    Gaussian (Eq. 3-4)  (S_h)_kj = exp(-|X_k W^Q_h - X_j W^K_h|^2 / (2 sqrt(d)))   (not row-normalised)
and the layer's output is [S_1 X W^V_1 ... S_H X W^V_H] W^O. The book's choices where the poster says nothing: pre-layer
normalization, and, for Pathfinder, a linear embedding of 2 x 2 pixel patches (LRA reads pixels one by one, which
costs our 2 cores 0.26 s a step at 16 x 16 pixels against 0.04 s in patches).
"""

import hashlib
import os
import tarfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import cache, pathfinder, realnets
from .errors import ParameterError, check_choice, check_positive
from .multihead import KERNELS, attention_scores

WIDTH, FEED_FORWARD, HEADS, LAYERS = 64, 128, 2, 2
# The hash of this file, the generator and realnets (its text and minibatches) joins every cached run's key (cache.py
# keys the linear engine by its own files).
SOURCE = hashlib.sha256(b"".join((Path(__file__).parent / name).read_bytes()
                                 for name in ("postertasks.py", "pathfinder.py", "realnets.py"))).hexdigest()[:12]


class Attention(nn.Module):
    """Multi-head self-attention, softmax or Gaussian kernel (no biases: the poster's W^Q, W^K, W^V, W^O)."""

    def __init__(self, kernel, width=WIDTH, heads=HEADS):
        super().__init__()
        self.kernel, self.heads = check_choice("kernel", kernel, KERNELS), heads
        self.query, self.key, self.value, self.out = (nn.Linear(width, width, bias=False) for _ in range(4))

    def forward(self, x):  # x: (batch, n, D)
        batch, n, width = x.shape

        def split(t):  # (batch, n, D) -> (batch, H, n, d)
            return t.reshape(batch, n, self.heads, width // self.heads).transpose(1, 2)
        scores = attention_scores(split(self.query(x)), split(self.key(x)), self.kernel)  # (batch, H, n, n)
        heads = scores @ split(self.value(x))
        return self.out(heads.transpose(1, 2).reshape(batch, n, width))


class Classifier(nn.Module):
    """The poster's 2-layer Transformer classifier over token ids (batch, n) -> class scores (batch, n_classes)."""

    def __init__(self, kernel, vocabulary, length, n_classes, width=WIDTH, feed_forward=FEED_FORWARD, heads=HEADS,
                 layers=LAYERS, patch=None):
        super().__init__()
        for name, value in (("vocabulary", vocabulary), ("length", length), ("n_classes", n_classes),
                            ("width", width), ("heads", heads)):
            check_positive(name, value, integer=True)
        # patch: the ids are a square image's pixel intensities (0 .. vocabulary - 1), read as patch x patch patches,
        # each embedded linearly (as a vision Transformer); length is then the number of patches
        self.patch = None if patch is None else check_positive("patch", patch, integer=True)
        self.embedding = nn.Embedding(vocabulary, width) if patch is None else nn.Linear(patch * patch, width)
        self.vocabulary = vocabulary
        self.positions = nn.Parameter(torch.randn(length, width) * 0.02)  # learned positions
        self.attention = nn.ModuleList(Attention(kernel, width, heads) for _ in range(layers))
        self.feed_forward = nn.ModuleList(nn.Sequential(nn.Linear(width, feed_forward), nn.ReLU(),
                                                        nn.Linear(feed_forward, width)) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(2 * layers + 1))
        self.readout = nn.Linear(width, n_classes)

    def forward(self, ids):
        if self.patch is not None:
            ids = patches(ids, self.patch).float() / (self.vocabulary - 1)
        x = self.embedding(ids) + self.positions[:ids.shape[1]]
        for i, (attention, feed_forward) in enumerate(zip(self.attention, self.feed_forward)):
            x = x + attention(self.norms[2 * i](x))
            x = x + feed_forward(self.norms[2 * i + 1](x))
        return self.readout(self.norms[-1](x).mean(dim=1))  # mean pooling over the tokens


def patches(ids, patch):
    """(batch, side * side) pixel ids of square images, row by row, as (batch, (side / patch)^2, patch^2) patches,
    row by row."""
    batch, n = ids.shape
    side = int(round(n ** 0.5))
    if side * side != n or side % patch:
        raise ParameterError("patch", patch, f"a divisor of the image side {side}")
    grid = ids.reshape(batch, side // patch, patch, side // patch, patch).transpose(2, 3)
    return grid.reshape(batch, (side // patch) ** 2, patch * patch)


# ---- text classification: IMDb when the reader supplies it, else a stand-in of real text ----------------------------

STAND_IN = ("computers", "songs-poems")  # two fortunes files of about the same size (~235 kB), classes 0 and 1
IMDB_ENV = "LINTF_IMDB"  # the environment variable that may name aclImdb_v1.tar.gz
BYTES = 257  # token ids: 0 pads, 1 + b for byte b


def byte_ids(texts, length):
    """Byte-level token ids (len(texts), length) of UTF-8 texts, as LRA's text task: 1 + each byte, cut at `length`
    bytes, padded with 0."""
    check_positive("length", length, integer=True)
    ids = torch.zeros(len(texts), length, dtype=torch.int64)
    for i, text in enumerate(texts):
        raw = text.encode("utf-8", errors="replace")[:length]
        ids[i, :len(raw)] = torch.tensor(list(raw), dtype=torch.int64) + 1
    return ids


def imdb(archive):
    """IMDb's reviews (Maas et al. 2011) from the reader's aclImdb_v1.tar.gz, read without unpacking:
    {"train": (texts, labels), "test": (texts, labels)}, label 1 for aclImdb/<split>/pos, 0 for neg, in file-name
    order."""
    path = Path(archive)
    if not path.is_file():
        raise ParameterError("imdb_archive", str(archive), f"the path of aclImdb_v1.tar.gz (or set {IMDB_ENV})")
    found = {"train": [], "test": []}
    with tarfile.open(path) as tar:
        for member in tar:
            parts = Path(member.name).parts
            if (member.isfile() and len(parts) == 4 and parts[0] == "aclImdb" and parts[1] in found
                    and parts[2] in ("pos", "neg") and parts[3].endswith(".txt")):
                text = tar.extractfile(member).read().decode("utf-8", errors="replace")
                found[parts[1]].append((member.name, text, int(parts[2] == "pos")))
    if not all(found.values()):
        raise ParameterError("imdb_archive", str(archive), "an archive with aclImdb/{train,test}/{pos,neg}/*.txt")
    return {split: ([t for _, t, _ in sorted(items)], [y for _, _, y in sorted(items)])
            for split, items in found.items()}


def stand_in(test_share=0.2, seed=0):
    """The offline stand-in: which of two fortunes files (STAND_IN) a fortune comes from, as many of each (the larger
    file cut to the smaller's count at random), split at random into train and test: the same form as imdb()."""
    pieces = []
    for label, name in enumerate(STAND_IN):
        text = (realnets.FORTUNES / name).read_text(encoding="utf-8", errors="replace")
        pieces.append([p.strip() for p in text.split("\n%\n") if p.strip()])
    rng = np.random.default_rng(seed)
    n = min(map(len, pieces))
    items = [(p, label) for label, ps in enumerate(pieces) for p in rng.permutation(np.array(ps, dtype=object))[:n]]
    order = rng.permutation(len(items))
    n_test = int(round(test_share * len(items)))
    split = {"test": order[:n_test], "train": order[n_test:]}
    return {name: ([items[i][0] for i in rows], [items[i][1] for i in rows]) for name, rows in split.items()}


# ---- data sets and training ----------------------------------------------------------------------------------------

TASKS = ("pathfinder", "text")
TEST_SEED_OFFSET = 1_000_000  # Pathfinder's test images: seeds far from any training seed


def pathfinder_set(seed, n_images, contour_length, size):
    """Pathfinder images as token ids (n_images, size * size): each pixel's intensity in 0..255, row by row (LRA's
    pixel sequence), and labels (n_images,), half of each. Cached."""
    found = _pathfinder_draws(seed, n_images, contour_length, size)
    return found["ids"], found["labels"]


def pathfinder_markers(seed, n_images, contour_length, size):
    """The marker centres (n_images, 2, 2) of pathfinder_set's images, in pixels (row, column). Cached with them."""
    return _pathfinder_draws(seed, n_images, contour_length, size)["markers"].numpy()


def _pathfinder_draws(seed, n_images, contour_length, size):
    config = dict(kind="postertasks.pathfinder", source=SOURCE, seed=int(seed), n_images=int(n_images),
                  contour_length=int(contour_length), size=int(size))

    def compute():
        pixels, labels, markers = [], [], []
        for i in range(n_images):
            image, label, marker = pathfinder.image(seed, i, contour_length=contour_length, size=size)
            pixels.append(np.round(image * 255).astype(np.int64).reshape(-1))
            labels.append(label)
            markers.append(marker)
        return {"ids": torch.from_numpy(np.stack(pixels)), "labels": torch.tensor(labels),
                "markers": torch.from_numpy(np.stack(markers))}

    return cache.cached(config, compute)


def pathfinder_run(kernel, seed, n_images, contour_length, size, patch, n_steps, batch_size, lr, initial=None):
    """train() on Pathfinder: the training images of seed 0 and the test images of TEST_SEED_OFFSET (n_images:
    [training, test]), read in patches, the test curve at 20 evaluations. The pages of the poster's Figures 1 and 3
    share these runs."""
    train_ids, train_labels = pathfinder_set(0, n_images[0], contour_length, size)
    test_ids, test_labels = pathfinder_set(TEST_SEED_OFFSET, n_images[1], contour_length, size)
    return train(kernel, train_ids, train_labels, test_ids, test_labels, seed, n_steps, batch_size, lr,
                 max(1, n_steps // 20), 256, f"pathfinder{size}L{contour_length}n{n_images[0]}/{n_images[1]}",
                 patch=patch, initial=initial)


def text_set(length, archive=None):
    """The text task's (train ids, train labels, test ids, test labels, name): IMDb from `archive` (or the file named
    by $LINTF_IMDB) when given, else the fortunes stand-in; byte ids cut at `length`."""
    archive = archive or os.environ.get(IMDB_ENV)
    data, name = (imdb(archive), "IMDb") if archive else (stand_in(), "stand-in: " + " vs ".join(STAND_IN))
    return (byte_ids(data["train"][0], length), torch.tensor(data["train"][1]),
            byte_ids(data["test"][0], length), torch.tensor(data["test"][1]), name)


def train(kernel, train_ids, train_labels, test_ids, test_labels, seed, n_steps, batch_size, lr, eval_every,
          vocabulary, config, patch=None, initial=None, use_cache=True):
    """Adam at rate `lr` on minibatches of `batch_size` (a seeded shuffle per pass) from Classifier(kernel) under
    `seed` (reading patches of `patch` x `patch` pixels where given; or from the flat parameters `initial`), with the
    test set's accuracy and mean loss every `eval_every` steps and at the end. `config` names the data in the cache
    key (beside a hash of the tensors). Returns {"steps", "test_accuracy", "test_loss", "train_loss" (each step's
    minibatch loss), "final" (flat parameters)}. Cached."""
    check_choice("kernel", kernel, KERNELS)
    n_steps = check_positive("n_steps", n_steps, integer=True)
    batch_size = check_positive("batch_size", batch_size, integer=True)
    if batch_size > len(train_ids):
        raise ParameterError("batch_size", batch_size, f"1 to {len(train_ids)} (the training set)")
    digest = hashlib.sha256()
    for tensor in (train_ids, train_labels, test_ids, test_labels):
        digest.update(tensor.numpy().tobytes())
    key = dict(kind="postertasks.train", source=SOURCE, data=config, data_hash=digest.hexdigest()[:16],
               kernel=kernel, seed=int(seed),
               n_steps=n_steps, batch_size=batch_size, lr=float(lr), eval_every=int(eval_every), patch=patch,
               initial=None if initial is None else hashlib.sha256(initial.numpy().tobytes()).hexdigest()[:16])

    def compute():
        torch.manual_seed(seed)
        length = train_ids.shape[1] // (patch * patch if patch else 1)
        net = Classifier(kernel, vocabulary, length, int(train_labels.max()) + 1, patch=patch)
        if initial is not None:
            realnets.load_parameters(net, initial)  # a copy: the stage-1 run both kernels start from stays as it is
        optimizer = torch.optim.Adam(net.parameters(), lr=lr)
        order = torch.Generator().manual_seed(seed)
        steps, accuracy, test_loss, train_loss = [], [], [], []
        batches = realnets.minibatches(len(train_ids), batch_size, order)
        for t in range(n_steps + 1):
            if t % eval_every == 0 or t == n_steps:
                acc, loss_value = evaluate(net, test_ids, test_labels)
                steps.append(t)
                accuracy.append(acc)
                test_loss.append(loss_value)
            if t == n_steps:
                break
            rows = next(batches)
            optimizer.zero_grad(set_to_none=True)
            value = nn.functional.cross_entropy(net(train_ids[rows]), train_labels[rows])
            value.backward()
            optimizer.step()
            train_loss.append(value.item())
        return {"steps": torch.tensor(steps), "test_accuracy": torch.tensor(accuracy, dtype=torch.float64),
                "test_loss": torch.tensor(test_loss, dtype=torch.float64),
                "train_loss": torch.tensor(train_loss, dtype=torch.float64),
                "final": nn.utils.parameters_to_vector(net.parameters()).detach()}

    return cache.cached(key, compute, use_cache)


def evaluate(net, ids, labels, chunk=256):
    """(accuracy, mean cross-entropy) of `net` on a whole set, in eval mode, in chunks."""
    net.eval()
    correct, total = 0, 0.0
    with torch.no_grad():
        for start in range(0, len(ids), chunk):
            scores = net(ids[start:start + chunk])
            correct += int((scores.argmax(1) == labels[start:start + chunk]).sum())
            total += float(nn.functional.cross_entropy(scores, labels[start:start + chunk], reduction="sum"))
    net.train()
    return correct / len(ids), total / len(ids)



# ---- the poster's Figure 3 on a task: loss planes along W^Q and W^K ----------------------------------------------

def loss_plane(kernel, parameters, ids, labels, vocabulary, coordinates, seed, patch=None):
    """The mean cross-entropy on (ids, labels) of the Classifier(kernel) at the flat `parameters`, moved to
    W^Q + a U and W^K + b V in every attention layer for every a, b in `coordinates`: (len, len), indexed [a, b].
    U and V are random directions drawn under `seed` and **filter-normalized** (Li et al., 2018): each row of each
    layer's direction (one output unit's weights) rescaled to that row's norm in the layer's W^Q (or W^K)."""
    length = ids.shape[1] // (patch * patch if patch else 1)
    net = Classifier(kernel, vocabulary, length, int(labels.max()) + 1, patch=patch)
    realnets.load_parameters(net, parameters)
    net.eval()
    generator = torch.Generator().manual_seed(seed)
    moved = []
    for layer in net.attention:
        for weight in (layer.query.weight, layer.key.weight):
            direction = torch.randn(weight.shape, generator=generator)
            direction *= weight.detach().norm(dim=1, keepdim=True) / direction.norm(dim=1, keepdim=True)
            moved.append((weight, weight.detach().clone(), direction))
    surface = torch.empty(len(coordinates), len(coordinates), dtype=torch.float64)
    with torch.no_grad():
        for i, a in enumerate(coordinates):
            for j, b in enumerate(coordinates):
                for k, (weight, original, direction) in enumerate(moved):
                    weight.copy_(original + (a if k % 2 == 0 else b) * direction)
                surface[i, j] = nn.functional.cross_entropy(net(ids), labels).item()
    return surface
