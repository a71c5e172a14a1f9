"""Quality metrics, each in its own module; ``METRICS`` registers them and ``evaluate`` runs them.

``METRICS`` maps a name (what ``eval.metrics`` may ask for) to a ``Metric``: its description, the values
it reports and which way each is better, its settings dataclass (``metrics.<name>.*`` in a config; owned
by its module) and the function that computes it. ``BETTER`` (reported value -> "min"/"max", for the
values that rank generators: the loop reports the best of these, ``checkpoint.keep_best`` keeps the
checkpoint where one was best) and ``VALUES`` (metric -> its reported values) are read from ``METRICS``.

Adding a metric takes its module (a compute function, and a settings dataclass if it has settings) and
one line in ``METRICS`` below; the config (``metrics.<name>.*``, ``eval.metrics``), the ``Evaluator``,
the evaluation protocol and ``BETTER``/``VALUES`` pick it up from there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from ganscape.metrics import (digit_metrics, fid, inception_score, kid, modes, msssim, precision_recall,
                              reconstruction)


@dataclass(frozen=True)
class Metric:
    """One metric.

    ``values``: each value it reports, with "min" or "max" when lower or higher is better and None when
    the value does not rank generators (standard deviations, counts, MS-SSIM's diversity).
    ``compute(scoring, settings) -> {value: number}``, where ``scoring`` is the evaluation in progress
    (``metrics.evaluate.Scoring``: the generator, its samples, Inception features, the evaluator) and
    ``settings`` an instance of ``settings`` (None when the metric has none).
    ``inception``: what it reads from the one Inception pass shared by all metrics: "features", "logits",
    or "" (none). ``reference``: it compares against reference images. ``images``: it needs image data.
    ``check(evaluator, settings)`` runs when an evaluator is built (errors and warnings before any work);
    ``protocol(evaluator, settings)`` is its part of the evaluation protocol (none when absent).
    """

    description: str
    values: dict[str, str | None]
    compute: Callable[[Any, Any], dict[str, float]]
    settings: type | None = None
    inception: str = ""
    reference: bool = False
    images: bool = True
    check: Callable[[Any, Any], None] | None = None
    protocol: Callable[[Any, Any], dict] | None = None


METRICS: dict[str, Metric] = {
    "fid": Metric("Frechet Inception distance to the reference set (lower is better)", {"fid": "min"},
                  fid.fid_metric, inception="features", reference=True),
    "is": Metric("Inception Score, mean and std over splits (needs weights with the classifier)",
                 {"is_mean": "max", "is_std": None}, inception_score.is_metric, inception_score.ISSettings,
                 inception="logits", protocol=inception_score.is_protocol),
    "kid": Metric("kernel Inception distance, unbiased MMD^2 averaged over subsets",
                  {"kid_mean": "min", "kid_std": None}, kid.kid_metric, kid.KIDSettings, inception="features",
                  reference=True, check=kid.kid_check, protocol=kid.kid_protocol),
    "pr": Metric("improved precision and recall (k-nearest-neighbour manifolds)",
                 {"precision": "max", "recall": "max"}, precision_recall.pr_metric, precision_recall.PRSettings,
                 inception="features", reference=True, protocol=precision_recall.pr_protocol),
    "msssim": Metric("mean MS-SSIM of random pairs of samples (lower is more diverse)", {"msssim": None},
                     msssim.msssim_metric, msssim.MSSSIMSettings, protocol=msssim.msssim_protocol),
    "recon": Metric("reconstruction error of held-out reference images (Xiang & Li)",
                    {"recon_mse": "min", "recon_mse_std": None}, reconstruction.recon_metric,
                    reconstruction.ReconSettings, reference=True, protocol=reconstruction.recon_protocol),
    # high_quality_pct and js_to_target are reported on 2-D mixtures only
    "modes": Metric("modes covered and KL to uniform (2-D mixtures, stacked digits)",
                    {"modes_covered": "max", "num_modes": None, "kl_to_uniform": "min", "high_quality_pct": "max",
                     "js_to_target": "min"}, modes.modes_metric, images=False, check=modes.modes_check,
                    protocol=modes.modes_protocol),
    # class_match is reported for generators conditioned on 10 classes only
    "digits": Metric("digit-classifier fidelity and coverage of single digits (digits, mnist)",
                     {"digit_fd": "min", "digit_precision": "max", "digit_recall": "max", "digit_score": "max",
                      "class_match": "max"}, digit_metrics.digits_metric, digit_metrics.DigitsSettings,
                     reference=True, check=digit_metrics.digits_check, protocol=digit_metrics.digits_protocol),
}


class _FromMetrics(Mapping):
    """A mapping read from ``METRICS`` at each use, so that a metric registered later is in it too."""

    def __init__(self, build: Callable[[], dict]):
        self._build = build

    def __getitem__(self, key: str) -> Any:
        return self._build()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._build())

    def __len__(self) -> int:
        return len(self._build())

    def __repr__(self) -> str:
        return repr(self._build())


BETTER: Mapping[str, str] = _FromMetrics(lambda: {value: better for metric in METRICS.values()
                                                  for value, better in metric.values.items() if better})
VALUES: Mapping[str, tuple[str, ...]] = _FromMetrics(lambda: {name: tuple(metric.values)
                                                              for name, metric in METRICS.items()})
