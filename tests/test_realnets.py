"""The premise's real networks and data (lintf_core/realnets.py): the loaders' counts and shapes, the tokenizer's
round trip, the models' gradients against finite differences, determinism by seed, the full gradient against one
pass over the whole set, the midpoint smoothness against a Hessian-vector product, and the one-line errors."""

from functools import partial

import numpy as np
import pytest
import torch

from lintf_core import realnets
from lintf_core.errors import ParameterError


def test_the_digits_are_mlxtends_5000_mnist_images_500_a_class():
    images, labels = realnets.digits()
    assert images.shape == (5000, 1, 32, 32) and images.dtype == torch.float32
    assert np.bincount(labels.numpy()).tolist() == [500] * 10
    assert torch.isfinite(images).all()
    assert abs(images.mean().item()) < 1e-4 and abs(images.std().item() - 1) < 1e-4


def test_the_fortunes_are_english_prose_with_a_heavy_tailed_vocabulary():
    corpus = [t for fortune in realnets.fortunes() for t in fortune + [realnets.END]]
    vocab = realnets.vocabulary(corpus)
    assert len(vocab) == realnets.VOCABULARY and vocab[-1] == realnets.UNK
    assert len(set(vocab)) == len(vocab)
    assert len(corpus) > 500_000 and vocab[0] in {".", ",", "the"}
    ids = realnets.encode(corpus, vocab)
    covered = (ids != len(vocab) - 1).float().mean().item()
    assert 0.9 < covered < 0.99  # the top 10k words cover most tokens, not all: a long tail


def test_the_small_vocabulary_is_the_top_of_the_large_one():
    """Fig. 1's Transformer reads the same text over fewer words: the 1,999 most frequent, UNK for the rest."""
    large, large_vocab = realnets.text(5000)
    small, small_vocab = realnets.text(5000, realnets.SMALL_VOCABULARY)
    assert len(small_vocab) == realnets.SMALL_VOCABULARY and small_vocab[:-1] == large_vocab[:len(small_vocab) - 1]
    kept = large < realnets.SMALL_VOCABULARY - 1
    assert torch.equal(small[kept], large[kept]) and (small[~kept] == realnets.SMALL_VOCABULARY - 1).all()


def test_the_tokenizer_round_trips_known_words_and_maps_the_rest_to_unk():
    vocab = ["the", "cat", ".", realnets.UNK]
    tokens = realnets.tokenize("The cat. The CAT!")
    assert tokens == ["the", "cat", ".", "the", "cat", "!"]
    ids = realnets.encode(tokens, vocab)
    assert realnets.decode(ids, vocab) == ["the", "cat", ".", "the", "cat", realnets.UNK]
    assert realnets.tokenize("don't stop") == ["don't", "stop"]


def test_the_language_models_sequences_are_the_text_shifted_by_one():
    inputs, targets = realnets.training_set("transformer", n_tokens=1000)
    ids, _ = realnets.text(1000)
    assert inputs.shape == targets.shape == ((1000 - 1) // realnets.SEQUENCE_LENGTH, realnets.SEQUENCE_LENGTH)
    assert torch.equal(inputs.reshape(-1)[1:], targets.reshape(-1)[:-1])
    assert torch.equal(inputs.reshape(-1), ids[:inputs.numel()])


@pytest.mark.parametrize("model", realnets.MODELS)
def test_each_model_maps_its_inputs_to_one_score_per_class(model):
    net = realnets.build(model, seed=0)
    inputs, targets = realnets.training_set(model, n_tokens=1000)
    out = net(inputs[:3])
    classes = 10 if model == "lenet5" else realnets.VOCABULARY_OF[model]
    assert out.shape == (*targets[:3].shape, classes)
    assert int(targets.max()) < classes and int(inputs.max()) < classes


def _tiny(model):
    """A float64 model without dropout and a tiny batch (a 40-word vocabulary for the language models)."""
    torch.manual_seed(0)
    if model == "lenet5":
        net, inputs, targets = realnets.LeNet5(), torch.randn(4, 1, 32, 32), torch.tensor([0, 3, 7, 9])
    else:
        net = {"transformer": realnets.TransformerLM, "lstm": realnets.LSTMLM,
               "transformer_small": partial(realnets.TransformerLM, width=realnets.SMALL_WIDTH)}[model](
            n_tokens=40, dropout=0.0)
        inputs, targets = torch.randint(0, 40, (2, 6)), torch.randint(0, 40, (2, 6))
    return net.double(), inputs.double() if model == "lenet5" else inputs, targets


@pytest.mark.parametrize("model", realnets.MODELS)
def test_the_gradient_matches_central_differences(model):
    net, inputs, targets = _tiny(model)
    net.eval()
    _, g = realnets.gradient(net, inputs, targets)
    theta = torch.nn.utils.parameters_to_vector(net.parameters()).detach()
    direction = torch.randn(theta.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    direction /= direction.norm()  # a unit step: the differences' O(h^2) error stays far below the tolerance
    h = 1e-4

    def f(x):
        torch.nn.utils.vector_to_parameters(x, net.parameters())
        with torch.no_grad():
            return realnets.loss(net, inputs, targets).item()
    numeric = (f(theta + h * direction) - f(theta - h * direction)) / (2 * h)
    assert (g @ direction).item() == pytest.approx(numeric, rel=1e-6, abs=1e-10)


@pytest.mark.parametrize("model", realnets.MODELS)
def test_a_run_is_determined_by_its_seed(model):
    first = realnets.train(model, "adam", 1e-3, seed=3, n_steps=3, batch_size=4, n_tokens=1000, use_cache=False)
    again = realnets.train(model, "adam", 1e-3, seed=3, n_steps=3, batch_size=4, n_tokens=1000, use_cache=False)
    other = realnets.train(model, "adam", 1e-3, seed=4, n_steps=3, batch_size=4, n_tokens=1000, use_cache=False)
    assert np.array_equal(first["loss"], again["loss"]) and not np.array_equal(first["loss"], other["loss"])


def test_the_optimizers_are_torchs_with_and_without_momentum():
    params = [torch.nn.Parameter(torch.zeros(2))]
    assert realnets.make_optimizer("sgd", params, 0.1).defaults["momentum"] == 0.0
    assert realnets.make_optimizer("sgd_momentum", params, 0.1).defaults["momentum"] == 0.9
    assert realnets.make_optimizer("adam", params, 0.1).defaults["betas"] == (0.9, 0.999)
    assert realnets.make_optimizer("adam_no_momentum", params, 0.1).defaults["betas"] == (0.0, 0.999)


def test_the_midpoint_smoothness_is_the_hessians_stretch_along_the_step():
    """For a small step u the estimate |g(x + u/2) - g(x)| / |u/2| tends to |H u| / |u| (torch's Hessian-vector
    product): a float64 LeNet-5 without dropout, one SGD step."""
    net, inputs, targets = _tiny("lenet5")
    _, g = realnets.gradient(net, inputs, targets)
    before = torch.nn.utils.parameters_to_vector(net.parameters()).detach().clone()
    after = before - 1e-6 * g
    torch.nn.utils.vector_to_parameters(after, net.parameters())
    estimate = realnets._midpoint_smoothness(net, inputs, targets, before, after, g)
    names = [name for name, _ in net.named_parameters()]
    shapes = [p.shape for p in net.parameters()]

    def loss_of(flat):
        parts, start = {}, 0
        for name, shape in zip(names, shapes):
            parts[name] = flat[start:start + shape.numel()].reshape(shape)
            start += shape.numel()
        logits = torch.func.functional_call(net, parts, (inputs,))
        return torch.nn.functional.cross_entropy(logits, targets)
    _, Hu = torch.autograd.functional.hvp(loss_of, before, -g)
    assert estimate == pytest.approx((Hu.norm() / g.norm()).item(), rel=1e-3)


def test_the_full_gradient_is_the_gradient_of_the_whole_set():
    """gradient_noise's full gradient, averaged over chunks, against one pass over all examples at once (dropout
    off: the two passes then see the same function)."""
    model, n_tokens = "lstm", 2000
    inputs, targets = realnets.training_set(model, n_tokens)
    noise = realnets.gradient_noise(model, batch_size=16, n_samples=2, n_tokens=n_tokens, dropout=False,
                                    use_cache=False)
    net = realnets.build(model, 0, dropout=False)
    _, whole = realnets.gradient(net, inputs, targets)
    assert noise["full_norm"] == pytest.approx(whole.norm().item(), rel=1e-4)
    assert noise["norms"].shape == (2,) and np.all(noise["norms"] > 0)


@pytest.mark.parametrize("call, name", [
    (lambda: realnets.build("resnet", 0), "model"),
    (lambda: realnets.train("lenet5", "adam", 1e-3, 0, 5, batch_size=6000), "batch_size"),
    (lambda: realnets.train("lenet5", "rmsprop", 1e-3, 0, 5, batch_size=8), "optimizer"),
    (lambda: realnets.gradient_noise("transformer", 16, 10, n_tokens=10), "n_tokens"),
])
def test_bad_parameters_stop_with_one_line(call, name):
    with pytest.raises(ParameterError) as error:
        call()
    assert str(error.value).startswith(name + ":") and "\n" not in str(error.value)


def test_smoothness_readings_leave_the_run_as_it_is():
    """With dropout on, the readings reuse the step's dropout masks and restore the random state: the losses are
    those of the run without readings, and each reading is a finite positive ratio."""
    plain = realnets.train("lstm", "adam", 1e-3, seed=0, n_steps=4, batch_size=4, n_tokens=1000, use_cache=False)
    read = realnets.train("lstm", "adam", 1e-3, seed=0, n_steps=4, batch_size=4, n_tokens=1000, smoothness_every=2,
                          use_cache=False)
    assert np.array_equal(plain["loss"], read["loss"])
    assert read["smoothness_steps"].tolist() == [0, 2]
    assert np.all(np.isfinite(read["smoothness"])) and np.all(read["smoothness"] > 0)
    assert np.all(read["grad_norm"] > 0)


def test_the_final_loss_is_the_tails_mean_and_a_diverged_run_is_infinite():
    assert realnets.final_loss([5.0, 4.0, 3.0, 1.0], last=2) == 2.0
    assert realnets.final_loss([5.0, np.nan, np.nan], last=2) == float("inf")


def test_the_best_rate_minimises_the_worst_seeds_final_loss():
    finals = {0.1: [1.0, 3.0], 0.01: [2.0, 2.5], 1.0: [0.5, float("inf")]}
    assert realnets.best_rate(finals) == 0.01  # 0.1 has the best seed, 1.0 a diverged one
    assert realnets.best_rate({0.1: [2.0], 0.01: [2.0]}) == 0.01  # a tie: the smaller rate
    assert realnets.best_rate({1.0: [float("inf")]}) is None


def test_the_step_size_search_trains_every_rate_on_every_seed():
    found = realnets.step_size_search("lenet5", "sgd", [1e-3, 1e-1], seeds=[0, 1], n_steps=3, batch_size=8)
    assert set(found["final"]) == {1e-3, 1e-1} and all(len(v) == 2 for v in found["final"].values())
    assert found["best"] == realnets.best_rate(found["final"])



def test_hutchinsons_diagonal_converges_to_the_exact_hessian_diagonal():
    """On a tiny float64 network (a 3-5-3 tanh classifier, 38 parameters): the exact diagonal of torch.func's
    Hessian of the loss in the flat parameters, against Hutchinson's estimate, within 5 standard errors of the
    estimator (entry i's variance over one Rademacher probe is the sum of H_ij^2 over j != i)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)).double()
    inputs, targets = torch.randn(8, 3, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    names, shapes = zip(*[(name, p.shape) for name, p in net.named_parameters()])
    theta = torch.nn.utils.parameters_to_vector(net.parameters()).detach()

    def f(flat):
        pieces = dict(zip(names, torch.split(flat, [s.numel() for s in shapes])))
        pieces = {name: piece.reshape(shape) for (name, piece), shape in zip(pieces.items(), shapes)}
        return realnets.loss(lambda x: torch.func.functional_call(net, pieces, (x,)), inputs, targets)
    H = torch.func.hessian(f)(theta)
    exact = H.diagonal()
    n_probes = 4000
    estimate = realnets.hessian_diagonal(net, inputs, targets, n_probes=n_probes)
    standard_error = ((H ** 2).sum(1) - exact ** 2).sqrt() / np.sqrt(n_probes)
    assert estimate.shape == exact.shape
    assert ((estimate - exact).abs() <= 5 * standard_error + 1e-12).all()
    assert torch.equal(estimate, realnets.hessian_diagonal(net, inputs, targets, n_probes=n_probes))  # seeded


def test_each_model_has_three_powers_of_ten_for_each_method():
    for model in realnets.MODELS:
        for optimizer in realnets.OPTIMIZERS:
            grid = np.array(realnets.step_size_grid(model, optimizer))
            assert len(grid) == 3 and np.allclose(grid[1:] / grid[:-1], 10.0)
    assert realnets.step_size_grid("lstm", "adam") == (1e-2, 1e-1, 1.0)
    assert realnets.step_size_grid("lenet5", "adam") == realnets.STEP_SIZE_GRID["adam"]


def test_runs_train_with_denormals_flushed_and_leave_them_as_they_were():
    """realnets.train flushes denormals (an Intel CPU's microcode assists made a saturated LSTM run ~13x slower):
    inside, a denormal input reads as zero; after the run, and after an error inside, arithmetic is IEEE's again."""
    tiny = torch.tensor([1e-39])  # a float32 denormal
    assert (tiny * 1.0).item() > 0
    with realnets.denormals_flushed():
        assert (tiny * 1.0).item() == 0
    assert (tiny * 1.0).item() > 0
    with pytest.raises(RuntimeError):
        with realnets.denormals_flushed():
            raise RuntimeError("a run failed")
    assert (tiny * 1.0).item() > 0
    realnets.train("lenet5", "sgd", 0.1, 0, 2, 64, use_cache=False)
    assert (tiny * 1.0).item() > 0
