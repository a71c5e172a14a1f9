"""Evaluating a trained generator: a run's checkpoint or an exported model folder (``ganscape eval``,
``ganscape.evaluate``). Each result is written stamped with its full protocol; nothing here prints."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ganscape.config import resolve
from ganscape.data import build_dataset
from ganscape.errors import ConfigError, GanscapeError
from ganscape.hub import CONFIG as MODEL_CONFIG, load_folder
from ganscape.jsonio import json_value, write_json
from ganscape.metrics import VALUES
from ganscape.metrics.amenability import AmenabilityRule, amenability
from ganscape.metrics.evaluate import Evaluator, evaluate_and_write, evaluation_protocol, kept_difference
from ganscape.metrics.truncation import parse_thresholds, plot_truncation_sweep, truncation_sweep as sweep_values
from ganscape.runs.generator import load_run_generator
from ganscape.runs.lifecycle import check_override_keys
from ganscape.runs.rundir import RunDir
from ganscape.store import rundir as store
from ganscape.store.rundir import eval_result_path, truncation_sweep_path
from ganscape.training.state import derived_seed, resolve_device

EVAL_PREFIXES = ("eval.", "metrics.")


@dataclass(frozen=True)
class Evaluation:
    source: Path  # the run directory or model folder
    step: int
    generator: str  # "ema" or "raw"
    num_samples: int
    values: dict
    protocol: dict
    path: Path  # where the result was written
    kept: Path | None = None  # a result under another protocol that was kept at the default place
    kept_reason: str | None = None  # how its protocol differs


@dataclass(frozen=True)
class TruncationSweep:
    source: Path
    step: int
    generator: str
    num_samples: int
    rows: list  # {"truncation": T or None, "values": {...}, "saturation": share} per threshold, untruncated first
    protocol: dict
    path: Path  # the JSON written
    picture: Path  # the fidelity/variety picture beside it
    amenability: dict  # metrics.amenability.amenability of the rows: verdict, reason, checks, protocol


@dataclass(frozen=True)
class _Scoring:
    """What an evaluation scores, how, and where its result goes by default."""

    evaluator: Evaluator
    G: nn.Module
    step: int
    generator: str
    folder: Path
    raw_result: bool  # the result is that of a raw generator beside an EMA one: step_N_raw.json


def eval_settings(metrics=None, samples=None, ref=None, ref_root=None, ref_samples=None) -> dict:
    """The ``eval.*`` values an evaluation replaces, by dotted key (``metrics``: a list, or "fid,kid")."""
    if isinstance(metrics, str):
        metrics = [name.strip() for name in metrics.split(",")]
    given = {"metrics": metrics or None, "samples": samples, "ref": ref, "ref_root": ref_root,
             "ref_samples": ref_samples}
    return {f"eval.{key}": value for key, value in given.items() if value is not None}


def _scoring(target: str | Path | store.RunDir, overrides, settings: dict, step: int | None, raw: bool,
             seed: int | None, device: str, progress: bool | None) -> _Scoring:
    """Load the generator of ``target`` (a run directory, or an exported model folder) and its evaluator, under
    its config with ``overrides`` and ``settings`` (see ``eval_settings``)."""
    overrides = list(overrides)
    check_override_keys(overrides, EVAL_PREFIXES, "in ganscape eval: it describes the run, not its evaluation")
    device = resolve_device(device)
    folder = Path(target.path if isinstance(target, store.RunDir) else target)
    if (folder / MODEL_CONFIG).is_file():  # an exported model: its config.json records its run
        if step is not None or raw:
            raise ConfigError("an exported model holds one generator: --step and --raw apply to run directories.")
        model = load_folder(folder, device)
        cfg = resolve(model.config["provenance"]["config"], overrides, settings)
        G, step, which, raw_result = model.net, model.config["provenance"]["step"], model.config["weights"], False
    else:
        run = RunDir.open(folder)
        cfg = run.read_config(overrides, settings)
        G, _, step, _ = load_run_generator(run, step, ema=not raw, device=device)
        which = "ema" if cfg.train.ema > 0 and not raw else "raw"
        raw_result = cfg.train.ema > 0 and raw
    seed = seed if seed is not None else derived_seed(cfg.train.seed, "eval")
    evaluator = Evaluator.from_config(cfg, build_dataset(cfg), seed, device,
                                      progress=sys.stderr.isatty() if progress is None else progress)
    if evaluator is None:
        raise ConfigError(f"{cfg.data.name} has no default metrics; choose some with --metrics "
                          f"(e.g. --metrics fid,kid).")
    return _Scoring(evaluator, G, step, which, folder, raw_result)


def evaluate(target: str | Path | store.RunDir, overrides=(), *, metrics=None, samples: int | None = None,
             ref: str | None = None, ref_root: str | None = None, ref_samples: int | None = None,
             step: int | None = None, raw: bool = False, seed: int | None = None, device: str = "auto",
             out: str | Path | None = None, truncation: float | None = None, progress: bool | None = None,
             on_values=None) -> Evaluation:
    """Score the EMA generator (or the raw one) of a run's checkpoint (the newest, or at ``step``), or an exported
    model's, and write the values with their protocol to ``eval/step_N[_raw][_truncation_T].json`` (or ``out``).

    ``metrics`` (a list or "fid,kid"), ``samples``, ``ref``, ``ref_root`` and ``ref_samples`` replace the run's
    ``eval.*`` settings; ``overrides`` are further ``eval.*``/``metrics.*`` key=value items. ``truncation``
    scores latents truncated to [-T, T]. ``on_values(step, generator, num_samples, values)`` is called before
    the result is written.
    """
    scoring = _scoring(target, overrides, eval_settings(metrics, samples, ref, ref_root, ref_samples), step, raw,
                       seed, device, progress)
    evaluator = scoring.evaluator
    if truncation is not None:
        evaluator.truncation = truncation
    path = Path(out) if out else eval_result_path(scoring.folder, scoring.step, scoring.raw_result, truncation)
    shown = {}

    def before_write(values: dict, protocol: dict) -> None:
        shown.update(values)
        if on_values is not None:
            on_values(scoring.step, scoring.generator, evaluator.num_samples, values)

    try:
        values, protocol, written, kept = evaluate_and_write(evaluator, scoring.G, scoring.step, scoring.generator,
                                                             path, before_write)
    except OSError as err:
        if not shown:
            raise  # the evaluation failed, not the write
        listed = ", ".join(f"{key} {value:.6g}" if isinstance(value, float) else f"{key} {value}"
                           for key, value in shown.items())
        raise GanscapeError(f"cannot write the result to {err.filename or path}: {err.strerror or err}; its values: "
                            f"{listed}. Write it elsewhere with --out FILE.") from None
    return Evaluation(scoring.folder, scoring.step, scoring.generator, evaluator.num_samples, values, protocol,
                      written, kept, None if kept is None else kept_difference(kept, protocol))


def truncation_sweep(target: str | Path | store.RunDir, thresholds, overrides=(), *, metrics=None,
                     samples: int | None = None, ref: str | None = None, ref_root: str | None = None,
                     ref_samples: int | None = None, step: int | None = None, raw: bool = False,
                     seed: int | None = None, device: str = "auto", out: str | Path | None = None,
                     progress: bool | None = None, amenability_rule: AmenabilityRule | None = None) -> TruncationSweep:
    """The metrics of the untruncated latents and of each threshold (``thresholds``: "0.25,0.5,1" or numbers):
    the fidelity/variety trade-off, written to ``eval/truncation_sweep_step_N.json`` (or ``out``) with a picture,
    and whether G is amenable to truncation, judged by ``amenability_rule`` (default: ``AmenabilityRule()``)."""
    if not isinstance(thresholds, str):
        thresholds = ",".join(f"{t:g}" for t in thresholds)
    thresholds = parse_thresholds(thresholds)
    scoring = _scoring(target, overrides, eval_settings(metrics, samples, ref, ref_root, ref_samples), step, raw,
                       seed, device, progress)
    evaluator = scoring.evaluator
    if evaluator.latent_dist != "normal":
        raise ConfigError(f"truncation resamples normal latents beyond a threshold; this generator's latents are "
                          f"{evaluator.latent_dist}, so there is nothing to sweep.")
    amenability_rule = amenability_rule or AmenabilityRule()
    amenability_rule.check_computed(value for name in evaluator.metrics for value in VALUES[name])
    started = time.perf_counter()
    rows = sweep_values(evaluator, scoring.G, thresholds)
    path = Path(out) if out else truncation_sweep_path(scoring.folder, scoring.step)
    protocol = evaluation_protocol(evaluator, scoring.generator, started)
    judged = amenability(rows, amenability_rule)
    write_json(path, {"step": scoring.step, "protocol": protocol,
                      "rows": [row | {"values": {k: json_value(v) for k, v in row["values"].items()}}
                               for row in rows], "amenability": judged})
    picture = plot_truncation_sweep(rows, path.with_suffix(".png"),
                                    f"{target}, step {scoring.step} ({scoring.generator} generator), "
                                    f"{evaluator.num_samples} samples")
    return TruncationSweep(scoring.folder, scoring.step, scoring.generator, evaluator.num_samples, rows, protocol,
                           path, picture, judged)
