"""The poster's classifier (lintf_core/postertasks.py) against a literal transcription of its Eq. 1-4."""

import math

import pytest
import torch

from lintf_core import postertasks
from lintf_core.errors import ParameterError


def _literal_attention(X, WQ, WK, WV, WO, heads, kernel):
    """Eq. 1-4 entry by entry, in plain loops: head h's S_kj from token k's query and token j's key, the head's
    output sum_j S_kj x_j W^V_h, the heads concatenated, times W^O. X: (n, D); W*: (D, D) as x @ W."""
    n, D = X.shape
    d = D // heads
    out = torch.zeros(n, D, dtype=X.dtype)
    for k in range(n):
        concatenated = []
        for h in range(heads):
            cols = slice(h * d, (h + 1) * d)
            q = X[k] @ WQ[:, cols]
            scores = []
            for j in range(n):
                key = X[j] @ WK[:, cols]
                if kernel == "softmax":
                    scores.append(math.exp(float(q @ key) / math.sqrt(d)))
                else:
                    scores.append(math.exp(-float(((q - key) ** 2).sum()) / (2 * math.sqrt(d))))
            if kernel == "softmax":
                total = sum(scores)
                scores = [s / total for s in scores]
            concatenated.append(sum(scores[j] * (X[j] @ WV[:, cols]) for j in range(n)))
        out[k] = torch.cat(concatenated) @ WO
    return out


@pytest.mark.parametrize("kernel", ["softmax", "gaussian"])
def test_attention_is_the_posters_equations(kernel):
    torch.manual_seed(0)
    layer = postertasks.Attention(kernel, width=6, heads=2).double()
    X = torch.randn(4, 6, dtype=torch.float64)
    with torch.no_grad():
        expected = _literal_attention(X, layer.query.weight.T, layer.key.weight.T, layer.value.weight.T,
                                      layer.out.weight.T, 2, kernel)
        assert torch.allclose(layer(X[None])[0], expected, atol=1e-12)


def test_the_gaussian_kernel_is_not_row_normalised():
    torch.manual_seed(0)
    layer = postertasks.Attention("gaussian", width=4, heads=1).double()
    X = torch.randn(1, 5, 4, dtype=torch.float64)
    with torch.no_grad():
        layer.value.weight.copy_(torch.eye(4))
        layer.out.weight.copy_(torch.eye(4))
        X[:] = 1.0  # identical tokens: every S_kj = exp(-|x (W^Q - W^K)|^2 / (2 sqrt d)); rows sum to 5 times that
        out = layer(X)
    q, k = X[0, 0] @ layer.query.weight.detach().T, X[0, 0] @ layer.key.weight.detach().T
    weight = math.exp(-float(((q - k) ** 2).sum()) / (2 * math.sqrt(4)))
    assert torch.allclose(out[0, 0], 5 * weight * X[0, 0], atol=1e-12)


def test_the_classifier_maps_token_ids_to_class_scores():
    net = postertasks.Classifier("gaussian", vocabulary=256, length=16, n_classes=2)
    assert net(torch.randint(0, 256, (3, 16))).shape == (3, 2)
    assert postertasks.Classifier("softmax", 256, 16, 2)(torch.randint(0, 256, (3, 10))).shape == (3, 2)


def test_a_bad_kernel_stops_with_one_line():
    with pytest.raises(ParameterError) as error:
        postertasks.Classifier("cosine", 256, 16, 2)
    assert str(error.value).startswith("kernel:") and "\n" not in str(error.value)


def _tiny_imdb(folder):
    """An archive with aclImdb_v1.tar.gz's layout: aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt, and a README."""
    import tarfile
    root = folder / "aclImdb"
    reviews = {("train", "pos"): ["A fine film.", "Loved it <br />"], ("train", "neg"): ["Dull."],
               ("test", "pos"): ["Great!"], ("test", "neg"): ["Awful, sadly.", "No."]}
    for (split, sentiment), texts in reviews.items():
        (root / split / sentiment).mkdir(parents=True)
        for i, text in enumerate(texts):
            (root / split / sentiment / f"{i}_{7 if sentiment == 'pos' else 2}.txt").write_text(text)
    (root / "README").write_text("not a review")
    archive = folder / "aclImdb_v1.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="aclImdb")
    return archive, reviews


def test_the_imdb_loader_reads_the_archives_layout(tmp_path):
    archive, reviews = _tiny_imdb(tmp_path)
    data = postertasks.imdb(archive)
    for split in ("train", "test"):
        texts, labels = data[split]
        expected = sorted((text, int(sentiment == "pos")) for (s, sentiment), ts in reviews.items() if s == split
                          for text in ts)
        assert sorted(zip(texts, labels)) == expected
    with pytest.raises(ParameterError) as error:
        postertasks.imdb(tmp_path / "missing.tar.gz")
    assert str(error.value).startswith("imdb_archive:")


def test_byte_ids_are_the_utf8_bytes_shifted_by_one_and_padded():
    ids = postertasks.byte_ids(["ab", "é"], length=3)
    assert ids.tolist() == [[98, 99, 0], [196, 170, 0]]
    assert bytes(int(i) - 1 for i in ids[1] if i).decode("utf-8") == "é"


def test_the_stand_in_is_balanced_and_split_one_to_four():
    data = postertasks.stand_in(seed=0)
    labels = data["train"][1] + data["test"][1]
    assert sum(labels) * 2 == len(labels) and len(labels) > 1000
    assert abs(len(data["test"][1]) - 0.2 * len(labels)) <= 1
    assert data == postertasks.stand_in(seed=0) and data != postertasks.stand_in(seed=1)


def test_training_records_the_test_curve_and_is_determined_by_its_seed():
    generator = torch.Generator().manual_seed(0)
    ids, labels = torch.randint(0, 5, (24, 6), generator=generator), torch.arange(24) % 2
    run = dict(train_ids=ids[:16], train_labels=labels[:16], test_ids=ids[16:], test_labels=labels[16:], seed=1,
               n_steps=5, batch_size=4, lr=1e-2, eval_every=2, vocabulary=5, config="tiny", use_cache=False)
    first = postertasks.train("gaussian", **run)
    assert first["steps"].tolist() == [0, 2, 4, 5] and first["train_loss"].shape == (5,)
    assert ((first["test_accuracy"] >= 0) & (first["test_accuracy"] <= 1)).all()
    again = postertasks.train("gaussian", **run)
    assert torch.equal(first["final"], again["final"]) and torch.equal(first["test_loss"], again["test_loss"])
    with pytest.raises(ParameterError):
        postertasks.train("softmax", **{**run, "batch_size": 17})


def test_training_from_given_parameters_and_the_loss_plane_leave_them_unchanged():
    # vector_to_parameters makes a network's parameters views of the vector: training or moving them in place would
    # change the caller's vector (the poster's stage-1 run, which both kernels' stage 2 start from)
    generator = torch.Generator().manual_seed(0)
    ids, labels = torch.randint(0, 5, (24, 6), generator=generator), torch.arange(24) % 2
    run = dict(train_ids=ids[:16], train_labels=labels[:16], test_ids=ids[16:], test_labels=labels[16:], seed=1,
               n_steps=5, batch_size=4, lr=1e-2, eval_every=2, vocabulary=5, config="tiny", use_cache=False)
    start = postertasks.train("softmax", **run)["final"]
    kept = start.clone()
    first = postertasks.train("gaussian", **run, initial=start)
    assert torch.equal(start, kept)
    assert torch.equal(postertasks.train("gaussian", **run, initial=start)["final"], first["final"])
    postertasks.loss_plane("gaussian", first["final"], ids, labels, 5, torch.tensor([-1.0, 1.0]), seed=3)
    assert torch.equal(first["final"], postertasks.train("gaussian", **run, initial=start)["final"])


def test_patches_cut_an_image_row_by_row():
    image = torch.arange(16).reshape(1, 16)  # a 4 x 4 image, pixel i = i
    assert postertasks.patches(image, 2).tolist() == [[[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]]
    net = postertasks.Classifier("softmax", 256, 4, 2, patch=2)
    assert net(torch.randint(0, 256, (3, 16))).shape == (3, 2)


def test_the_loss_plane_is_the_loss_at_its_centre_and_moves_only_the_queries_and_keys():
    torch.manual_seed(0)
    net = postertasks.Classifier("softmax", 5, 6, 2)
    flat = torch.nn.utils.parameters_to_vector(net.parameters()).detach()
    ids, labels = torch.randint(0, 5, (8, 6)), torch.arange(8) % 2
    plane = postertasks.loss_plane("softmax", flat, ids, labels, 5, torch.tensor([-1.0, 0.0, 1.0]), seed=3)
    with torch.no_grad():
        centre = torch.nn.functional.cross_entropy(net.eval()(ids), labels).item()
    assert plane.shape == (3, 3) and plane[1, 1].item() == pytest.approx(centre, rel=1e-6)
    assert plane[0, 0] != plane[1, 1]
