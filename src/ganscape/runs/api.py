"""The Python API of runs: ``ganscape.train``, ``ganscape.resume`` and ``ganscape.evaluate``.

    import ganscape
    result = ganscape.train("ring8", ["train.steps=200"])      # or a config: ganscape.train(cfg)
    print(result.run, result.summary["results"])
    ganscape.resume(result.run, ["train.steps=400"])
    print(ganscape.evaluate(result.run, metrics=["modes"]).values)
"""

from __future__ import annotations

from pathlib import Path

from ganscape.config import Experiment, load_config, resolve, to_dict
from ganscape.runs.evaluation import evaluate
from ganscape.runs.lifecycle import TrainResult, resume, start

__all__ = ["evaluate", "resume", "train"]


def train(cfg_or_preset: Experiment | str | Path | None = None, overrides=(), **options) -> TrainResult:
    """Train a new run of a config, or of a preset (a name in configs/, a YAML file, or a run directory's settings;
    None: the default 2-D job), with key=value ``overrides``. ``options`` are those of ``ganscape.runs.start``
    (``until``, ``progress``, ``on_start``, ``on_evaluation``)."""
    if isinstance(cfg_or_preset, Experiment):
        cfg = resolve(to_dict(cfg_or_preset), list(overrides)) if overrides else cfg_or_preset
    else:
        cfg = load_config(cfg_or_preset, list(overrides))
    return start(cfg, **options)
