"""Evaluating a generator: every metric from one stream of samples, and the protocol that produced them.

``Evaluator`` holds what stays fixed across the evaluations of a run (the metrics, the reference set
and its cached features, the Inception network and the protocol settings); calling it on a generator
draws samples from fixed latents and calls each metric's ``compute`` (``ganscape.metrics.METRICS``) with
a ``Scoring``, which passes ``num_samples`` of them through Inception once for every metric that reads
Inception features (FID, IS, KID, precision/recall); no metric has code here. ``protocol()`` is the full description
of how they were computed (sample counts, reference split, Inception input and resizer, weights
checksum, seed, library versions), written beside every result. ``evaluate`` does both in one call.

Result keys: ``fid``; ``is_mean``, ``is_std``; ``kid_mean``, ``kid_std``; ``precision``, ``recall``;
``msssim``; ``recon_mse``, ``recon_mse_std``; and for ``modes`` ``modes_covered``, ``num_modes``,
``kl_to_uniform`` (plus ``high_quality_pct`` and ``js_to_target`` on 2-D mixtures).
For ``digits``: ``digit_fd``, ``digit_precision``, ``digit_recall``, ``digit_score`` (plus ``class_match``, 10 classes).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

import ganscape
from ganscape.config import DataConfig, Experiment, MetricsConfig, flatten
from ganscape.data import DATASETS
from ganscape.data.base import FixedImages, is_image_data
from ganscape.errors import CheckpointError, ConfigError, lookup
from ganscape.jsonio import json_value, write_json
from ganscape.metrics import METRICS
from ganscape.metrics.features import INCEPTION_INPUTS, inception_features
from ganscape.metrics.inception import NO_LOGITS, build_inception, file_sha256, inception_weights_path
from ganscape.metrics.modes import has_modes
from ganscape.metrics.reference import (cache_dir, reference_data_config, reference_features, reference_images,
                                        subset_indices)
from ganscape.nets import sample_latent, truncated_normal


def seeded_latents(n: int, latent_dim: int, latent_dist: str, seed: int, device,
                   truncation: float | None = None) -> torch.Tensor:
    """The ``n`` latents of ``seed``: z ~ the latent distribution, or with ``truncation`` the normal truncated
    to [-truncation, truncation] (``truncated_normal``; only for normal latents)."""
    generator = torch.Generator(device).manual_seed(seed)
    if truncation is None:
        return sample_latent(n, latent_dim, latent_dist, generator, device)
    if latent_dist != "normal":
        raise ConfigError(f"truncation resamples normal latents beyond a threshold; this generator's latents are "
                          f"{latent_dist}, so there is nothing to truncate. Leave the truncation out.")
    return truncated_normal(n, latent_dim, truncation, generator, device)


@torch.no_grad()
def generated_batches(G: nn.Module, n: int, latent_dim: int, latent_dist: str, seed: int, device,
                      num_classes: int = 0, batch_size: int = 1024, truncation: float | None = None,
                      labels: torch.Tensor | None = None) -> Iterator[torch.Tensor]:
    """``n`` samples of ``G`` in eval mode, batch by batch, from latents of a fixed seed.

    All ``n`` latents are drawn at once, so the samples do not depend on the batch size. A
    class-conditional G gets ``labels``, by default 0, 1, 2, ... in turn, so every class is shown equally.
    """
    z = seeded_latents(n, latent_dim, latent_dist, seed, device, truncation)
    if labels is None and num_classes:
        labels = torch.arange(n, device=device) % num_classes
    labels = labels.to(device) if labels is not None else None
    was_training = G.training
    G.eval()
    try:
        for start in range(0, n, batch_size):
            yield G(z[start:start + batch_size], None if labels is None else labels[start:start + batch_size])
    finally:
        G.train(was_training)


def _with(metrics: list[str], what: str) -> list[str]:
    """The metrics of ``metrics`` whose ``Metric`` has ``what`` set (e.g. "reference", "inception")."""
    return [name for name in metrics if getattr(METRICS[name], what)]


def default_metrics(data, data_cfg: DataConfig) -> list[str]:
    """What ``eval.metrics: []`` means: mode statistics where the data has modes, else nothing."""
    return ["modes"] if has_modes(data, data_cfg) else []


class Evaluator:
    """The metrics of one protocol, ready to score any generator of the run's kind.

    ``reference`` is the real data set the metrics compare against (its ``reference_cfg`` names it
    in the protocol and the cache key); ``num_reference`` of its images form the reference set
    (0: as many as ``num_samples``, capped at its size). The Inception network is built here, so
    missing weights are reported before any work is done.
    """

    def __init__(self, metrics: list[str], reference, reference_cfg: DataConfig, *, latent_dim: int,
                 latent_dist: str = "normal", num_classes: int = 0, num_samples: int = 10000,
                 num_reference: int = 0, settings: MetricsConfig | None = None, seed: int = 0,
                 device: str | torch.device = "cpu", progress: bool = False, cache_reference: bool = True,
                 truncation: float | None = None):
        for name in metrics:
            lookup(METRICS, name, "metric")
        self.metrics = list(dict.fromkeys(metrics))
        self.reference, self.reference_cfg = reference, reference_cfg
        self.latent_dim, self.latent_dist, self.num_classes = latent_dim, latent_dist, num_classes
        self.num_samples, self.seed = num_samples, seed
        self.truncation = truncation  # BigGAN's truncation of normal latents; None: the latents as trained
        self.settings = settings or MetricsConfig()
        self.device, self.progress = torch.device(device), progress
        self.cache_reference = cache_reference  # off for references that are not files (a generator's samples)
        fixed = isinstance(reference, FixedImages)
        self.num_reference = min(num_reference or num_samples, len(reference)) if fixed else 0
        self._check_applicable()
        # Inception batches: large ones fill a GPU; on a CPU smaller ones are faster and take a quarter of the memory
        self.batch_size = self.settings.batch_size or (200 if self.device.type == "cuda" else 50)
        self.inception = self.weights = None
        if _with(self.metrics, "inception"):
            self.weights = inception_weights_path(self.settings.inception_weights or None)
            self.inception = build_inception(str(self.weights)).to(self.device)
            for name in self._with_logits():
                if self.inception.fc is None:
                    raise CheckpointError(f"metric {name!r}: {self.weights} — {NO_LOGITS}")
        self._reference_features = None

    @classmethod
    def from_config(cls, cfg: Experiment, data, seed: int, device, progress: bool = False,
                    metrics: list[str] | None = None) -> "Evaluator | None":
        """The evaluator of a run's config (``eval.*``, ``metrics.*``); None when there is nothing to evaluate.

        ``data`` is the run's training data set; the reference set is built from it only when
        the metrics need reference images (``eval.ref``, ``eval.ref_root``).
        """
        metrics = metrics if metrics is not None else (cfg.eval.metrics or default_metrics(data, cfg.data))
        if not metrics:
            return None
        reference_cfg, reference = cfg.data, data
        if _with(metrics, "reference"):
            reference_cfg = reference_data_config(cfg.data, cfg.eval.ref, cfg.eval.ref_root)
            if replace(reference_cfg, flip=cfg.data.flip) != cfg.data:
                reference = DATASETS[reference_cfg.name](reference_cfg)
        return cls(metrics, reference, reference_cfg, latent_dim=cfg.latent.dim, latent_dist=cfg.latent.dist,
                   num_classes=data.num_classes if cfg.data.conditional else 0, num_samples=cfg.eval.samples,
                   num_reference=cfg.eval.ref_samples, settings=cfg.metrics, seed=seed, device=device,
                   progress=progress)

    def _check_applicable(self) -> None:
        """Each metric's data needs and its own ``check``, before any work."""
        needs_images = [m for m in self.metrics if METRICS[m].images]
        if needs_images and not is_image_data(self.reference):
            raise ConfigError(f"metrics {', '.join(needs_images)} need image data; {self.reference_cfg.name} "
                              "has none: its metric is modes (--metrics modes, or eval.metrics=[modes]).")
        if _with(self.metrics, "reference") and not self.num_reference:
            raise ConfigError(f"data set {self.reference_cfg.name} has no fixed images to compare against.")
        for name in self.metrics:
            if METRICS[name].check is not None:
                METRICS[name].check(self, self.settings_of(name))

    def settings_of(self, name: str) -> Any:
        """Metric ``name``'s settings (``metrics.<name>``); its defaults when ``settings`` predates the metric."""
        settings = self.settings.per_metric.get(name)
        cls = METRICS[name].settings
        return settings if settings is not None or cls is None else cls()

    def _with_logits(self) -> list[str]:
        return [name for name in self.metrics if METRICS[name].inception == "logits"]

    def reference_features(self) -> torch.Tensor:
        """Inception features of the reference images, from the on-disk cache when it has them."""
        if self._reference_features is None:
            self._reference_features, _ = reference_features(
                self.reference, self.reference_cfg, self.num_reference, self.inception,
                self.settings.inception_input, file_sha256(self.weights),
                cache_dir(self.settings.cache_dir) if self.cache_reference else None, self.batch_size, self.progress)
        return self._reference_features

    def samples(self, G: nn.Module, n: int, batch_size: int) -> Iterator[torch.Tensor]:
        return generated_batches(G, n, self.latent_dim, self.latent_dist, self.seed, self.device,
                                 self.num_classes, batch_size, self.truncation)

    def __call__(self, G: nn.Module) -> dict[str, float]:
        """All metrics of ``G`` (moved to the evaluator's device for the call)."""
        return self._compute(Scoring(self, G))

    def _compute(self, scoring: "Scoring") -> dict[str, float]:
        values: dict[str, float] = {}
        for name in self.metrics:
            values |= METRICS[name].compute(scoring, self.settings_of(name))
        return values

    def features(self, batches: Iterator[torch.Tensor], desc: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Inception features of ``num_samples`` images, and their logits when a metric reads them."""
        return inception_features(batches, self.inception, self.settings.inception_input, bool(self._with_logits()),
                                  total=self.num_samples, desc=desc, progress=self.progress)

    def score_images(self, data, data_cfg: DataConfig, cache: bool = True) -> dict[str, float]:
        """The Inception metrics of ``num_samples`` fixed images of ``data`` (in place of a generator's samples):
        their features come from the reference cache (``cache``), like the reference's own."""
        if not isinstance(data, FixedImages):
            raise ConfigError(f"{data_cfg.name} has no fixed images to score.")
        other = [m for m in self.metrics if not METRICS[m].inception]
        if other:
            raise ConfigError(f"metrics {', '.join(other)} score a generator, not a set of images.")
        if self._with_logits():  # the logits are not cached
            batches = reference_images(data, subset_indices(len(data), self.num_samples), self.batch_size)
            return self._compute(Scoring(self, None, *self.features(batches, data_cfg.name)))
        features, _ = reference_features(data, data_cfg, self.num_samples, self.inception, self.settings.inception_input,
                                         file_sha256(self.weights), cache_dir(self.settings.cache_dir) if cache else None,
                                         self.batch_size, self.progress)
        return self._compute(Scoring(self, None, features))

    def protocol(self) -> dict:
        """How the values were computed: enough to reproduce them, and to know when two are comparable."""
        s = self.settings
        protocol = {
            "metrics": self.metrics,
            "num_samples": self.num_samples,
            "seed": self.seed,
            "latent": {"dim": self.latent_dim, "dist": self.latent_dist},
            "reference": self._reference_protocol(),
            "ganscape_version": ganscape.__version__,
            "torch_version": torch.__version__,
            "device": str(self.device),
        }
        if self.truncation is not None:  # absent otherwise, so untruncated results stay comparable with older ones
            protocol["truncation"] = self.truncation
        if self.inception is not None:
            protocol["inception"] = {"weights_file": self.weights.name, "weights_sha256": file_sha256(self.weights),
                                     "with_classifier": self.inception.fc is not None,
                                     "input": s.inception_input, "resizer": INCEPTION_INPUTS[s.inception_input][1],
                                     "batch_size": self.batch_size}
        protocol |= {name: METRICS[name].protocol(self, self.settings_of(name)) for name in self.metrics
                     if METRICS[name].protocol is not None}
        return protocol

    def _reference_protocol(self) -> dict:
        cfg = self.reference_cfg
        if not _with(self.metrics, "reference"):
            return {"dataset": cfg.name}
        count = len(self.reference)
        subset = ("all images" if self.num_reference == count
                  else "the first num_images in the fixed SHA-256 order of ganscape.metrics.reference")
        return {"dataset": cfg.name, "root": cfg.root, "split": cfg.split, "resolution": cfg.resolution,
                "images_in_split": count, "num_images": self.num_reference, "subset": subset}


class Scoring:
    """One evaluation in progress, as a metric's ``compute`` reads it: the evaluator, the generator ``G``
    (None when scoring a set of images), its samples, and the Inception ``features`` and ``logits`` of
    ``num_samples`` of them, computed once on first use for every metric that reads them (or given)."""

    def __init__(self, evaluator: Evaluator, G: nn.Module | None, features: torch.Tensor | None = None,
                 logits: torch.Tensor | None = None):
        self.evaluator, self.G = evaluator, G
        self._inception = None if features is None else (features, logits)

    def samples(self, n: int, batch_size: int | None = None) -> Iterator[torch.Tensor]:
        """``n`` samples of G from the evaluator's fixed latents."""
        return self.evaluator.samples(self.G, n, batch_size or self.evaluator.batch_size)

    def _pass(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self._inception is None:
            self._inception = self.evaluator.features(self.samples(self.evaluator.num_samples), "generated")
        return self._inception

    @property
    def features(self) -> torch.Tensor:
        return self._pass()[0]

    @property
    def logits(self) -> torch.Tensor | None:
        return self._pass()[1]

    def real_features(self) -> torch.Tensor:
        return self.evaluator.reference_features()


def evaluate(generator: nn.Module, dataset, metrics: list[str], num_samples: int = 10000, *,
             dataset_cfg: DataConfig, latent_dim: int, latent_dist: str = "normal", num_classes: int = 0,
             **options) -> dict:
    """Score ``generator`` against ``dataset`` in one call: ``{"values": {...}, "protocol": {...}}``.

    ``options`` are those of :class:`Evaluator` (``num_reference``, ``settings``, ``seed``, ``device``,
    ``progress``). For repeated evaluations build one Evaluator: it keeps the reference features.
    """
    evaluator = Evaluator(metrics, dataset, dataset_cfg, latent_dim=latent_dim, latent_dist=latent_dist,
                          num_classes=num_classes, num_samples=num_samples, **options)
    tic = time.perf_counter()
    values = evaluator(generator)
    return {"values": values, "protocol": evaluator.protocol() | {"seconds": time.perf_counter() - tic}}


def _comparable(protocol: dict) -> dict:
    return {key: value for key, value in protocol.items() if key != "seconds"}


def _protocol_in(path: Path) -> dict | None:
    try:
        protocol = json.loads(path.read_text())["protocol"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return protocol if isinstance(protocol, dict) else None


def write_result(path: Path, result: dict) -> tuple[Path, Path | None]:
    """Write an evaluation result as strict JSON (inf and nan as strings), atomically.

    A result is never overwritten by one computed under another protocol (other sample counts,
    reference, weights, ...): when ``path`` holds such a result, it is kept and the new one goes beside
    it, to ``step_N-<protocol digest>.json``. Returns (where the result went, the kept file or None).
    """
    result = result | {"values": {k: json_value(v) for k, v in result["values"].items()}}
    previous = _protocol_in(path) if path.exists() else None
    if previous is not None and _comparable(previous) != _comparable(result["protocol"]):
        digest = hashlib.sha256(json.dumps(_comparable(result["protocol"]), sort_keys=True).encode()).hexdigest()
        return write_json(path.with_name(f"{path.stem}-{digest[:8]}{path.suffix}"), result), path
    return write_json(path, result), None


def kept_difference(kept: Path, protocol: dict) -> str:
    """How ``protocol`` differs from that of the result in ``kept``, e.g. "samples 2000 here, 10000 in the file"."""
    previous = _protocol_in(kept)
    return "unreadable protocol" if previous is None else protocol_differences(protocol, previous)


# Protocol keys as messages name them; the others are written with spaces for dots and underscores.
PROTOCOL_WORDS = {"num_samples": "samples", "reference.split": "reference", "reference.num_images": "reference images",
                  "reference.dataset": "reference data set", "inception.weights_sha256": "Inception weights",
                  "torch_version": "PyTorch", "ganscape_version": "ganscape"}


def _in_words(value) -> str:
    if isinstance(value, list):
        return ", ".join(_in_words(item) for item in value) or "none"
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return f"SHA-256 {value[:12]}"
    return "none" if value is None else str(value)


def protocol_differences(here: dict, there: dict, where: str = "in the file") -> str:
    """Only what differs between two protocols, in words and in the protocol's order: "samples 2000 here, 10000
    in the file; reference test here, train in the file". A part recorded on one side only (the settings of a
    metric computed on one side) is named once rather than key by key."""
    ours, theirs = flatten(_comparable(here)), flatten(_comparable(there))
    parts, one_sided = [], []
    for key in dict.fromkeys([*ours, *theirs]):
        if ours.get(key) == theirs.get(key):
            continue
        section = key.split(".")[0]
        if "." in key and (section in here) != (section in there):
            if section not in one_sided:
                one_sided.append(section)
                parts.append(f"{section} settings " + ("here only" if section in here else f"{where} only"))
            continue
        name = PROTOCOL_WORDS.get(key, key.replace(".", " ").replace("_", " "))
        parts.append(f"{name} {_in_words(ours.get(key))} here, {_in_words(theirs.get(key))} {where}")
    return "; ".join(parts)


def evaluation_protocol(evaluator: Evaluator, generator: str, started: float) -> dict:
    """The protocol a result is stamped with: the evaluator's, which generator ("ema" or "raw"), and the seconds
    since ``started`` (a ``time.perf_counter()`` reading)."""
    return evaluator.protocol() | {"generator": generator, "seconds": time.perf_counter() - started}


def evaluate_and_write(evaluator: Evaluator, G: nn.Module, step: int, generator: str, path: Path,
                       before_write=None) -> tuple[dict, dict, Path, Path | None]:
    """Score ``G`` and write the result, stamped with its protocol, to ``path`` (a result there under another
    protocol is kept: see ``write_result``). ``before_write(values, protocol)`` is called first, e.g. to show
    the values, so a failed write loses nothing. Returns (values, protocol, where it went, the kept file or None)."""
    started = time.perf_counter()
    values = evaluator(G)
    protocol = evaluation_protocol(evaluator, generator, started)
    if before_write is not None:
        before_write(values, protocol)
    written, kept = write_result(path, {"step": step, "values": values, "protocol": protocol})
    return values, protocol, written, kept
