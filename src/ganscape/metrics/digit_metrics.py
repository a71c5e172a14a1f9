"""Fidelity and coverage of generated single digits, measured with the shipped digit classifier.

Why: the Inception metrics take minutes on a CPU and Inception's ImageNet features say little about
32x32 grey digits. The small ``DigitClassifier`` (``digit_classifier.py``: ``"digits"`` for the
``digits`` data set, ``"mnist"`` for ``mnist``) was trained on these very images; a pass over
thousands of them takes well under a second on a CPU. Its penultimate layer (``features``,
64 x 4 x 4 = 1,024 values per digit) serves as the feature space, its 10 logits as the class
posterior p(y|x). The values of metric ``digits``:

- ``digit_fd``: Frechet distance between Gaussians fitted to the features of the generated samples
  and of the reference images (``fid.fid_from_features``); lower is better, 0 for the reference itself.
- ``digit_precision``, ``digit_recall``: improved precision (share of samples inside the reference's
  k-nearest-neighbour balls: fidelity) and recall (share of reference images inside the samples' balls:
  coverage) in the same feature space (``precision_recall.precision_recall``, k = ``metrics.digits.k``).
- ``digit_score``: the classifier's "Inception Score" exp(E_x KL(p(y|x) || p(y))) over its 10 classes
  (``inception_score.inception_score``, ``metrics.digits.splits`` splits): 1 when every sample gets the
  same posterior, at most 10 for confident predictions spread evenly over the digits.
- ``class_match``: for a class-conditional generator of 10 classes, the share of samples classified as
  the class they were generated for (sample i is generated for class i % 10). An unconditional generator
  has no such value: it is left out of the result.

A perfect generator scores like held-out real digits: ``digit_fd`` near that of the test split against
the train split, precision and recall near theirs, ``digit_score`` near 10 and ``class_match`` near the
classifier's held-out accuracy (``weights/classifiers.json``: 0.993 on digits, 0.989 on MNIST).

The reference features are recomputed at each evaluation rather than cached: 1,500 digits take under
0.1 s on one CPU thread.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from ganscape.errors import ConfigError
from ganscape.metrics.digit_classifier import (METADATA, WEIGHTS_DIR, load_digit_classifier,
                                               to_classifier_input)
from ganscape.metrics.fid import fid_from_features
from ganscape.metrics.inception_score import inception_score
from ganscape.metrics.precision_recall import precision_recall
from ganscape.metrics.reference import reference_images, subset_indices

DIGIT_CLASSIFIERS = {"digits": "digits", "mnist": "mnist"}  # data set -> its digit classifier
FEATURE_LAYER = "features, 1024-d"
NUM_DIGITS = 10
BATCH_SIZE = 1024  # the classifier is tiny: large batches cost little memory, on a CPU too


@dataclass
class DigitsSettings:
    """``metrics.digits.*``."""

    k: int = field(default=3, metadata={"min": 1, "max": 1000,
                                        "help": "digits: k of the k-nearest-neighbour balls of precision and recall"})
    splits: int = field(default=1, metadata={"min": 1, "max": 1000, "help": "digits: splits of digit_score"})


@torch.no_grad()
def classifier_outputs(batches: Iterable[torch.Tensor], classifier: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Penultimate features (N, 1024) and logits (N, 10), on the CPU, of image batches (n, 1, H, W) in [-1, 1].

    Runs on the classifier's device in eval mode (its mode is restored); one pass gives both outputs.
    """
    device = next(classifier.parameters()).device
    was_training = classifier.training
    classifier.eval()
    features, logits = [], []
    try:
        for batch in batches:
            maps = classifier.features(to_classifier_input(batch.to(device, torch.float32)))
            features.append(maps.flatten(1).cpu())
            logits.append(classifier.head(maps).cpu())
    finally:
        classifier.train(was_training)
    return torch.cat(features), torch.cat(logits)


def class_match(logits: torch.Tensor, num_classes: int) -> float:
    """Share of samples whose predicted class is the one they were generated for, i % ``num_classes`` for
    sample i (the labels of ``evaluate.generated_batches``)."""
    labels = torch.arange(len(logits)) % num_classes
    return float((logits.argmax(1) == labels).to(torch.float64).mean())


def digits_check(evaluator, settings: DigitsSettings) -> None:
    """Refuse a data set without a digit classifier, and a k that leaves no k-th neighbour."""
    name = evaluator.reference_cfg.name
    if name not in DIGIT_CLASSIFIERS:
        raise ConfigError(f"metric 'digits' scores single digits of the data sets {', '.join(DIGIT_CLASSIFIERS)}, "
                          f"not {name} (stacked digits: use the metric modes).")
    fewest = min(evaluator.num_samples, evaluator.num_reference)
    if settings.k >= fewest:
        raise ConfigError(f"metrics.digits.k={settings.k} needs more than k samples and reference images; "
                          f"this evaluation has {evaluator.num_samples} and {evaluator.num_reference}.")


def digits_metric(scoring, settings: DigitsSettings) -> dict[str, float]:
    """The registered metric ``digits`` (see the module docstring); ``class_match`` only for a generator
    conditioned on 10 classes."""
    evaluator = scoring.evaluator
    classifier = load_digit_classifier(DIGIT_CLASSIFIERS[evaluator.reference_cfg.name]).to(evaluator.device)
    indices = subset_indices(len(evaluator.reference), evaluator.num_reference)
    real, _ = classifier_outputs(reference_images(evaluator.reference, indices, BATCH_SIZE), classifier)
    fake, logits = classifier_outputs(scoring.samples(evaluator.num_samples, BATCH_SIZE), classifier)
    pr = precision_recall(real, fake, k=settings.k)
    values = {"digit_fd": fid_from_features(real, fake), "digit_precision": pr["precision"],
              "digit_recall": pr["recall"], "digit_score": inception_score(logits, settings.splits)[0]}
    if evaluator.num_classes == NUM_DIGITS:
        values["class_match"] = class_match(logits, NUM_DIGITS)
    return values


def digits_protocol(evaluator, settings: DigitsSettings) -> dict:
    """The classifier (kind, SHA-256, held-out accuracy), its feature layer, k and splits."""
    kind = DIGIT_CLASSIFIERS[evaluator.reference_cfg.name]
    record = json.loads((WEIGHTS_DIR / METADATA).read_text())[kind]
    return {"classifier": kind, "classifier_sha256": record["sha256"],
            "classifier_held_out_accuracy": record["held_out_accuracy"], "feature_layer": FEATURE_LAYER,
            "k": settings.k, "splits": settings.splits, "class_match": evaluator.num_classes == NUM_DIGITS}
