"""The CPU experiments behind the claims: each runs in a folder of its own (a study folder, resumable like any
study: trials finished are not trained again) and returns its measurements as plain data, which the runner writes
to ``measured.json`` beside it. One experiment may serve several claims (the Landscape's study serves two).

Every experiment here fits in about 30 minutes on 2 CPU cores with 2 workers.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from pathlib import Path

import yaml

from ganscape.errors import ConfigWarning, GanscapeError

# The BigGAN runs on digits: biggan_ablation_digits' first row (SA-GAN's settings at batch 8, width 8), 800 steps.
BIGGAN_DIGITS = ["train.steps=800", "train.threads=1", "train.batch_size=8", "train.ema=0.99", "train.ema_start=200",
                 "log.every=50", "log.samples_every=0", "log.tensorboard=false", "eval.every=200",
                 "eval.samples=1500", "eval.metrics=[digits]", "eval.ref=train", "eval.ref_samples=1500",
                 "checkpoint.every=200", "checkpoint.keep=1", "g.settings.shared_dim=0",
                 "g.settings.hierarchical=false"]
THRESHOLDS = [2, 1, 0.5, 0.25]
RING8_D_STEPS = 10_000


def run_study(spec, folder: Path, device: str, workers: int) -> Path:
    """Create the study folder from ``spec`` (a built-in name or a spec mapping) unless it exists (from the same
    spec), run its trials to the end with ``workers`` workers on ``device`` (one thread each), and write its
    report."""
    from ganscape.study.engine import StudyDir, create
    from ganscape.study.queue import supervise
    from ganscape.study.report import write_report
    from ganscape.study.spec import load_spec, parse_spec

    study = StudyDir(folder)
    parsed = load_spec(spec) if isinstance(spec, str) else parse_spec(spec, "claim", spec["name"])
    if not study.spec_path.exists():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConfigWarning)
            create(parsed, folder)
    elif (held := study.read()[0]).source | {"name": held.name} != parsed.source | {"name": parsed.name}:
        raise GanscapeError(f"{folder} holds a study made from another spec (an earlier version of this claim's "
                            "experiment); move it away to run the experiment anew.")
    run = supervise([folder], [device] * workers, 1, folder / "logs")
    if not run.completed:
        raise GanscapeError(f"the study in {folder} has unfinished trials (see {folder / 'logs'}); run the claim "
                            "again to continue it.")
    write_report(study)
    return folder


def _parts(folder: Path):
    from ganscape.study.engine import StudyDir
    from ganscape.study.report import study_parts

    return study_parts(StudyDir(folder))


def dirac_table(folder: Path, device: str, workers: int) -> dict:
    """Mescheder et al.'s table on the Dirac-GAN: whether each method converges (learning rate 0.2, 500 steps)."""
    from ganscape.dynamics.table import markdown_table, reproduce_table

    rows = reproduce_table()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "table.md").write_text(markdown_table(rows, 0.2, 500) + "\n")
    return {"converges": {row.method.name: row.converges for row in rows},
            "eigenvalues": {row.method.name: row.to_json()["eigenvalues"] for row in rows}}


def mescheder_ring8(folder: Path, device: str, workers: int) -> dict:
    """The regularizer comparison on the 8-Gaussian ring: each group's settling verdict and runs."""
    from ganscape.study.settling import TITLE

    parts = _parts(run_study("mescheder_regularizers_ring8", folder, device, workers))
    return {"groups": {row["group"].split("=", 1)[1]: {"settles": row["verdict"] == "settles",
                                                       "runs_settling": row["runs_settling"]}
                       for row in parts.tables[TITLE]}}


def xiang_li_digits(folder: Path, device: str, workers: int) -> dict:
    """Weight vs batch vs no normalization on digits: each group's last reconstruction error over its seeds."""
    parts = _parts(run_study("xiang_li_normalization_digits", folder, device, workers))
    return {"groups": {row["group"].split("=", 1)[1]: {"mean": row["last_mean"], "std": row["last_std"],
                                                       "seeds": row["seeds"]}
                       for row in parts.tables["Final values"]}}


def biggan_truncation(folder: Path, device: str, workers: int) -> dict:
    """BigGAN on digits with and without orthogonal regularization, 3 seeds each, each run swept at 2, 1, 0.5 and
    0.25: the untruncated and the most truncated values of every run, and each run's amenability."""
    spec = {"name": "claims_biggan_truncation", "base": "biggan_digits", "overrides": BIGGAN_DIGITS,
            "groups": {"penalty": ["none", "ortho:1e-4"]}, "trials": 1, "seeds": 3,
            "objective": {"metric": "digit_fd", "direction": "minimize", "reduce": "best"},
            "truncation_sweep": THRESHOLDS}
    parts = _parts(run_study(spec, folder, device, workers))
    groups = {}
    for label, trials in parts.groups.items():
        runs = []
        for name in trials[0]["run_dirs"] if trials else []:
            sweep = sorted((folder / "runs" / name / "eval").glob("truncation_sweep_step_*.json"))[-1]
            rows = json.loads(sweep.read_text())["rows"]
            runs.append({"untruncated": rows[0]["values"], "strongest": rows[-1]["values"],
                         "strongest_threshold": rows[-1]["truncation"],
                         "amenable": json.loads(sweep.read_text())["amenability"]["amenable"]})
        groups[label.split("=", 1)[1]] = runs
    return {"groups": groups}


def biggan_shared_hier(folder: Path, device: str, workers: int) -> dict:
    """BigGAN on digits at batch 16 (2 x 8), width 8, 600 steps, 2 seeds: without the shared embedding, with it,
    and with the hierarchical latent too; each seed's best digit_fd."""
    rows = {"separate": {"g.settings.shared_dim": 0, "g.settings.hierarchical": False},
            "shared": {"g.settings.shared_dim": 16, "g.settings.hierarchical": False},
            "shared_hier": {"g.settings.shared_dim": 16, "g.settings.hierarchical": True}}
    overrides = [o for o in BIGGAN_DIGITS if not o.startswith(("g.settings.", "train.steps"))]
    spec = {"name": "claims_biggan_shared_hier", "base": "biggan_digits",
            "overrides": overrides + ["train.steps=600", "train.accumulate=2"], "groups": {"row": rows},
            "trials": 1, "seeds": 2, "objective": {"metric": "digit_fd", "direction": "minimize", "reduce": "best"}}
    parts = _parts(run_study(spec, folder, device, workers))
    return {"groups": {label.split("=", 1)[1]: trials[0]["seed_values"] for label, trials in parts.groups.items()
                       if trials}}


def ring8_landscape(folder: Path, device: str, workers: int) -> dict:
    """The Landscape in miniature on the ring (losses x penalties x D norms over the wide space): each group's
    trial scores (JS to the target; failed trials as NaN). The built-in study with 10,000 D updates per run
    instead of 3,000: at 3,000 (600 G updates where n_disc is 5) nearly every trial is still off the modes
    (JS near log 2), which ranks nothing."""
    from ganscape.study.spec import find_spec

    spec = yaml.safe_load(find_spec("ring8_landscape").read_text())
    spec["name"] = "claims_ring8_landscape"
    spec["overrides"] = [o for o in spec["overrides"] if not o.startswith(("train.steps=", "eval.every="))]
    spec["overrides"] += [f"train.steps={RING8_D_STEPS}", "eval.every=2500"]
    parts = _parts(run_study(spec, folder, device, workers))
    return {"groups": {label: [t["value"] if not t["failed"] and math.isfinite(t["value"]) else math.nan
                               for t in trials] for label, trials in parts.groups.items()}}


# The pictures of each experiment's study report that the page shows beside its row (the report itself, and every
# run, stay in the claims folder): label -> path in the experiment's folder.
FIGURES: dict[str, dict[str, str]] = {
    "mescheder_ring8": {"learning curves": "report/learning_curves.png"},
    "xiang_li_digits": {"learning curves": "report/learning_curves.png"},
    "biggan_truncation": {"learning curves": "report/learning_curves.png"},
    "biggan_shared_hier": {"learning curves": "report/learning_curves.png"},
    "ring8_landscape": {"budget curves": "report/budget_trials.png", "scores": "report/scores.png"},
}

EXPERIMENTS: dict[str, Callable[[Path, str, int], dict]] = {
    "dirac_table": dirac_table,
    "mescheder_ring8": mescheder_ring8,
    "xiang_li_digits": xiang_li_digits,
    "biggan_truncation": biggan_truncation,
    "biggan_shared_hier": biggan_shared_hier,
    "ring8_landscape": ring8_landscape,
}
