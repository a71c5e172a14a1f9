"""Metric ``digits``: digit-classifier Frechet distance, precision/recall, score and class match on real digits."""

from __future__ import annotations

import hashlib
import json
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.linalg
import torch
from scipy.spatial.distance import cdist
from torch import nn

from ganscape.config import DataConfig, MetricsConfig, from_dict
from ganscape.data import DATASETS
from ganscape.errors import ConfigError
from ganscape.metrics.digit_classifier import METADATA, WEIGHTS_DIR, load_digit_classifier
from ganscape.metrics.digit_metrics import DigitsSettings, digits_check, digits_protocol
from ganscape.metrics.evaluate import Evaluator

TRAIN, TEST = DataConfig(name="digits"), DataConfig(name="digits", split="test")


class Replay(nn.Module):
    """A 'generator' that emits given images in order, whatever the latent and label."""

    def __init__(self, images: torch.Tensor):
        super().__init__()
        self.images, self.offset = images, 0

    def forward(self, z, labels=None):
        out = self.images[self.offset:self.offset + len(z)]
        self.offset += len(z)
        return out


class RealDigits(nn.Module):
    """A 'generator' of real digits: sample i shows a digit of class ``labels[i] + shift`` (mod 10), or of class
    ``only`` for every sample, or of class i % 10 without labels; it cycles through that class's images."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, shift: int = 0, only: int | None = None):
        super().__init__()
        self.by_class = [images[labels == digit] for digit in range(10)]
        self.shift, self.only, self.offset = shift, only, 0

    def forward(self, z, labels=None):
        position = self.offset + torch.arange(len(z))
        self.offset += len(z)
        if labels is None:
            labels = torch.full_like(position, self.only) if self.only is not None else position % 10
        classes = (labels.cpu() + self.shift) % 10
        return torch.stack([self.by_class[c][p // 10 % len(self.by_class[c])]
                            for c, p in zip(classes.tolist(), position.tolist())])


@pytest.fixture(scope="module")
def train():
    return DATASETS["digits"](TRAIN)


@pytest.fixture(scope="module")
def test_digits():
    data = DATASETS["digits"](TEST)
    return data, *data.take(torch.arange(len(data)))


@pytest.fixture(scope="module")
def classifier():
    return load_digit_classifier("digits")


def outputs(classifier, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Penultimate features (N, 1024) and logits of ``images``, float64 numpy, from the classifier directly."""
    with torch.no_grad():
        maps = classifier.features(images)
        return maps.flatten(1).double().numpy(), classifier.head(maps).double().numpy()


def evaluate(G: nn.Module, data, cfg: DataConfig, num_samples: int, num_classes: int = 0, num_reference: int = 0,
             **digits) -> dict[str, float]:
    settings = from_dict({"digits": digits}, MetricsConfig) if digits else None
    evaluator = Evaluator(["digits"], data, cfg, latent_dim=4, num_samples=num_samples, num_classes=num_classes,
                          num_reference=num_reference, settings=settings)
    return evaluator(G)


@pytest.fixture(scope="module")
def held_out(train, test_digits):
    """The 297 test digits, replayed, against all 1,500 train digits, with k = 5 and 3 splits."""
    _, images, _ = test_digits
    return evaluate(Replay(images), train, TRAIN, len(images), num_reference=len(train), k=5, splits=3)


def numpy_frechet(a: np.ndarray, b: np.ndarray) -> float:
    """The TF FID formula in float64: ||m1 - m2||^2 + tr S1 + tr S2 - 2 tr sqrtm(S1 S2) (scipy)."""
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)  # dead ReLU units make S1 S2 singular
        root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(root))


def test_digit_fd_matches_scipy(train, test_digits, classifier, held_out):
    """Independent value: scipy's sqrtm Frechet distance of the classifier's own 1024-d features of the test
    digits (generated) and the train digits (reference), about 131."""
    _, images, _ = test_digits
    real, _ = outputs(classifier, train.take(torch.arange(len(train)))[0])
    fake, _ = outputs(classifier, images)
    assert held_out["digit_fd"] == pytest.approx(numpy_frechet(real, fake), rel=1e-5)


def test_digit_fd_of_the_reference_itself_is_zero(train, classifier):
    """Independent value: 0, to 1e-6 of tr S (the reference features' total variance, about 1,865)."""
    images = train.take(torch.arange(len(train)))[0]
    real, _ = outputs(classifier, images)
    values = evaluate(Replay(images), train, TRAIN, len(train))
    assert abs(values["digit_fd"]) < 1e-6 * np.trace(np.cov(real, rowvar=False))


def test_digit_score_by_hand(test_digits, classifier, held_out):
    """Independent value: mean over 3 contiguous splits of exp(mean_x KL(p(y|x) || p(y))), p(y|x) the numpy
    softmax of the classifier's logits of the test digits; held-out digits of every class score between 9
    and the ceiling 10."""
    _, images, _ = test_digits
    _, logits = outputs(classifier, images)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    n = len(probs)
    scores = []
    for i in range(3):
        p = probs[i * n // 3:(i + 1) * n // 3]
        scores.append(np.exp((p * (np.log(p) - np.log(p.mean(0)))).sum(1).mean()))
    assert held_out["digit_score"] == pytest.approx(np.mean(scores), rel=1e-6)
    assert 9 < held_out["digit_score"] <= 10


def test_one_digit_drawn_again_and_again_scores_one(train, test_digits):
    """Independent value: 1 (every p(y|x) equals the marginal p(y), so every KL is 0)."""
    _, images, _ = test_digits
    values = evaluate(Replay(images[:1].expand(50, -1, -1, -1)), train, TRAIN, 50)
    assert values["digit_score"] == pytest.approx(1.0, abs=1e-9)


def numpy_precision_recall(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    """Kynkaanniemi et al.'s definition in float64 with scipy distances: a point is covered when within the
    k-th nearest other point's distance of some point of the other set."""
    def radii(x):
        return np.sort(cdist(x, x), axis=1)[:, k]

    precision = (cdist(fake, real) <= radii(real)[None]).any(1).mean()
    recall = (cdist(real, fake) <= radii(fake)[None]).any(1).mean()
    return float(precision), float(recall)


def test_held_out_digits_have_high_precision_and_recall(train, test_digits, classifier, held_out):
    """Independent value: numpy/scipy precision and recall with k = 5 of the classifier's features of the test
    (generated) and train (reference) digits, to within two images (float32 distances on the metric's side);
    real digits of all classes score high on both (about 0.85 and 0.9)."""
    _, images, _ = test_digits
    real, _ = outputs(classifier, train.take(torch.arange(len(train)))[0])
    fake, _ = outputs(classifier, images)
    precision, recall = numpy_precision_recall(real, fake, k=5)
    assert held_out["digit_precision"] == pytest.approx(precision, abs=2 / len(fake))
    assert held_out["digit_recall"] == pytest.approx(recall, abs=2 / len(real))
    assert held_out["digit_precision"] > 0.75 and held_out["digit_recall"] > 0.75


def test_one_class_has_high_precision_and_low_recall(train, test_digits):
    """Independent value: digits of one class can cover only the reference digits of that class, about 1/10 of
    them, so recall < 0.3; being real, they lie inside the reference's balls: precision > 0.7."""
    _, images, labels = test_digits
    values = evaluate(RealDigits(images, labels, only=3), train, TRAIN, 297)
    assert values["digit_precision"] > 0.7 and values["digit_recall"] < 0.3


def test_class_match_of_conditional_generators(train, test_digits, held_out):
    """Independent value: real test digits of the requested class match as often as the classifier is right,
    its recorded held-out accuracy 0.9933 (classifiers.json), to within 0.02; digits of the next class
    (label + 1) almost never match (< 0.2); an unconditional generator gets no class_match."""
    _, images, labels = test_digits
    accuracy = json.loads((WEIGHTS_DIR / METADATA).read_text())["digits"]["held_out_accuracy"]
    right = evaluate(RealDigits(images, labels), train, TRAIN, 300, num_classes=10)["class_match"]
    assert right > 0.8 and right == pytest.approx(accuracy, abs=0.02)
    assert evaluate(RealDigits(images, labels, shift=1), train, TRAIN, 300, num_classes=10)["class_match"] < 0.2
    assert set(held_out) == {"digit_fd", "digit_precision", "digit_recall", "digit_score"}


def test_protocol_records_the_classifier_and_settings(train):
    """Independent value: the SHA-256 of each shipped weights file (hashlib) and the held-out accuracy recorded
    beside it; the settings given (k = 4, 2 splits), and the defaults k = 3 and splits = 1."""
    settings = from_dict({"digits": {"k": 4, "splits": 2}}, MetricsConfig)
    evaluator = Evaluator(["digits"], train, TRAIN, latent_dim=4, num_samples=100, num_classes=10, settings=settings)
    recorded = json.loads((WEIGHTS_DIR / METADATA).read_text())
    for kind, protocol in [("digits", evaluator.protocol()["digits"]),
                           ("mnist", digits_protocol(SimpleNamespace(reference_cfg=DataConfig(name="mnist"),
                                                                     num_classes=0), DigitsSettings(k=4, splits=2)))]:
        sha256 = hashlib.sha256((WEIGHTS_DIR / f"{kind}.safetensors").read_bytes()).hexdigest()
        assert protocol == {"classifier": kind, "classifier_sha256": sha256,
                            "classifier_held_out_accuracy": recorded[kind]["held_out_accuracy"],
                            "feature_layer": "features, 1024-d", "k": 4, "splits": 2, "class_match": kind == "digits"}
    assert DigitsSettings() == DigitsSettings(k=3, splits=1)


def test_other_resolutions_are_resized_for_the_classifier(test_digits):
    """Independent value: the classifier's held-out accuracy (> 0.8): digits at 16x16 are resized to its 32x32
    input, the reference images too, so real digits of the requested class still match."""
    cfg = DataConfig(name="digits", split="test", resolution=16)
    small = DATASETS["digits"](cfg)
    images, labels = small.take(torch.arange(len(small)))
    assert images.shape[-1] == 16
    values = evaluate(RealDigits(images, labels), small, cfg, 100, num_classes=10)
    assert values["class_match"] > 0.8


def test_other_data_sets_and_too_few_samples_are_refused(train):
    """Independent value: the supported data sets, digits and mnist, named in the refusal; k = 3 needs at least
    4 samples."""
    stacked = DATASETS["stacked_digits"](DataConfig(name="stacked_digits", split="test"))
    with pytest.raises(ConfigError, match="digits, mnist.*modes"):
        Evaluator(["digits"], stacked, DataConfig(name="stacked_digits", split="test"), latent_dim=4, num_samples=10)
    ring = DATASETS["ring8"](DataConfig(name="ring8"))
    with pytest.raises(ConfigError):  # refused by the evaluator first: a mixture has no images
        Evaluator(["digits"], ring, DataConfig(name="ring8"), latent_dim=2, num_samples=10)
    mixture = SimpleNamespace(reference_cfg=DataConfig(name="ring8"), num_samples=10, num_reference=10)
    with pytest.raises(ConfigError, match="digits, mnist"):
        digits_check(mixture, DigitsSettings())
    with pytest.raises(ConfigError, match="k=3"):
        Evaluator(["digits"], train, TRAIN, latent_dim=4, num_samples=3)
