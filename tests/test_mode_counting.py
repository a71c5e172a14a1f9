"""Mode counting on stacked digits: the shipped classifiers, their accuracy and the metric's definitions."""

import hashlib
import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from ganscape.config import load_config
from ganscape.data import build_dataset
from ganscape.errors import CheckpointError, ConfigError
from ganscape.metrics import digit_classifier
from ganscape.metrics.digit_classifier import (METADATA, WEIGHTS, WEIGHTS_DIR, classify_digits, classify_stacked,
                                               count_modes, load_digit_classifier)

MNIST_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
MNIST_SPLIT_SEED, MNIST_TRAIN = 0, 8000  # the held-out split of scripts/train_digit_classifiers.py
SAMPLES = 10000


def recorded() -> dict:
    return json.loads((WEIGHTS_DIR / METADATA).read_text())


def accuracy(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    return float((predicted == labels).to(torch.float64).mean())


@pytest.fixture(scope="module")
def classifier():
    return load_digit_classifier("digits")


@pytest.fixture(scope="module")
def stacked(classifier):
    """10,000 stacks of the digits test split (held out from the classifier), true and predicted modes."""
    data = build_dataset(load_config(None, ["data.name=stacked_digits", "data.split=test"]))
    x, labels = data.sample(SAMPLES, torch.Generator().manual_seed(0))
    return x, labels, classify_stacked(x, classifier)


def kl_of_counts(counts: list[int], num_modes: int = 1000) -> float:
    total = sum(counts)
    return sum(c / total * math.log(num_modes * c / total) for c in counts)


def test_shipped_weights_load_and_match_their_record():
    info = recorded()
    assert set(info) == set(WEIGHTS)
    for kind, name in WEIGHTS.items():
        path = WEIGHTS_DIR / name
        assert info[kind]["file"] == name
        assert hashlib.sha256(path.read_bytes()).hexdigest() == info[kind]["sha256"], f"{path} is not the recorded one"
        assert path.stat().st_size < 1_000_000
        assert info[kind]["held_out_accuracy"] >= 0.95
        model = load_digit_classifier(kind)
        assert not model.training and not any(p.requires_grad for p in model.parameters())
        assert sum(p.numel() for p in model.parameters()) == info[kind]["parameters"] < 100_000


def test_digits_classifier_reproduces_its_recorded_accuracy(classifier):
    data = build_dataset(load_config(None, ["data.name=digits", "data.split=test"]))
    x = data.images.to(torch.float32) / 127.5 - 1  # 8x8: the classifier resizes as the data set does
    assert accuracy(classify_digits(x, classifier), data.labels) == pytest.approx(
        recorded()["digits"]["held_out_accuracy"], abs=1e-4)


def test_real_stacked_digits_are_classified_and_cover_every_mode(classifier, stacked):
    x, labels, predicted = stacked
    assert accuracy(predicted, labels) >= 0.90
    stats = count_modes(x, classifier)
    assert stats["num_modes"] == 1000
    assert stats["modes_covered"] == len(predicted.unique()) >= 990
    counts = torch.bincount(predicted, minlength=1000)
    assert stats["kl_to_uniform"] == pytest.approx(kl_of_counts(counts[counts > 0].tolist()))
    # The true labels' KL is positive too: a finite sample ((K - 1) / 2n = 0.05) and the split's class balance.
    true_counts = torch.bincount(labels, minlength=1000)
    true_kl = kl_of_counts(true_counts[true_counts > 0].tolist())
    assert stats["kl_to_uniform"] < 0.1 and stats["kl_to_uniform"] == pytest.approx(true_kl, abs=0.03)


def test_batching_does_not_change_predictions(classifier, stacked):
    x, _, predicted = stacked
    assert torch.equal(classify_stacked(x[:100], classifier, batch_size=7), predicted[:100])


def test_collapsed_generators_cover_few_modes(classifier, stacked):
    x, labels, predicted = stacked
    one = count_modes(x[:1].expand(500, -1, -1, -1), classifier)
    assert one["modes_covered"] == 1 and one["kl_to_uniform"] == pytest.approx(math.log(1000))
    # Five distinct, correctly classified stacks: 200 copies each, then 1, 2, 3, 4 and 90 copies.
    correct = (predicted == labels).nonzero().flatten().tolist()
    picks = []
    for i in correct:
        if len(picks) < 5 and all(labels[i] != labels[j] for j in picks):
            picks.append(i)
    even = count_modes(x[picks].repeat(200, 1, 1, 1), classifier)
    assert even["modes_covered"] == 5
    assert even["kl_to_uniform"] == pytest.approx(math.log(1000) - math.log(5))
    copies = [1, 2, 3, 4, 90]
    uneven = count_modes(x[picks].repeat_interleave(torch.tensor(copies), dim=0), classifier)
    assert uneven["modes_covered"] == 5
    assert uneven["kl_to_uniform"] == pytest.approx(kl_of_counts(copies))
    assert uneven["kl_to_uniform"] > even["kl_to_uniform"]


@pytest.mark.skipif(not (any(MNIST_ROOT.glob("t10k-images-idx3-ubyte*"))
                         and any(MNIST_ROOT.glob("t10k-labels-idx1-ubyte*"))),
                    reason=f"the MNIST test files (t10k-*-ubyte) are not in {MNIST_ROOT}")
def test_mnist_classifier_on_its_held_out_mnist_test_images():
    data = build_dataset(load_config(None, ["data.name=mnist", "data.split=test", f"data.root={MNIST_ROOT}"]))
    held_out = torch.randperm(len(data), generator=torch.Generator().manual_seed(MNIST_SPLIT_SEED))[MNIST_TRAIN:]
    x = data.images[held_out].to(torch.float32) / 127.5 - 1
    found = accuracy(classify_digits(x, load_digit_classifier("mnist")), data.labels[held_out])
    assert found >= 0.97
    assert found == pytest.approx(recorded()["mnist"]["held_out_accuracy"], abs=1e-4)


def test_missing_or_corrupt_weights_give_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(CheckpointError, match="nowhere.safetensors do not exist"):
        load_digit_classifier("digits", tmp_path / "nowhere.safetensors")
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="corrupt.safetensors are corrupt"):
        load_digit_classifier("digits", corrupt)
    other = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(3)}, str(other))
    with pytest.raises(CheckpointError, match="other.safetensors are corrupt or do not fit"):
        load_digit_classifier("digits", other)
    monkeypatch.setattr(digit_classifier, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(CheckpointError, match=str(tmp_path / "mnist.safetensors")):
        load_digit_classifier("mnist")
    with pytest.raises(ConfigError, match="unknown digit classifier 'cifar10'"):
        load_digit_classifier("cifar10")


def test_inputs_are_checked(classifier, stacked):
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        classify_stacked(torch.zeros(2, 1, 32, 32), classifier)
    with pytest.raises(ValueError, match="at least one sample"):
        count_modes(torch.zeros(0, 3, 32, 32), classifier)
    with pytest.raises(ValueError, match="num_modes=10"):
        count_modes(stacked[0][stacked[2] >= 10][:1], classifier, num_modes=10)
