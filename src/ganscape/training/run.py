"""The run directory and what is logged into it.

    RUN_DIR/
      config.yaml      the fully resolved config; with the seed it determines the run
      metrics.jsonl    one JSON object per logged step
      events/          TensorBoard event files (scalars and sample pictures)
      samples/         sample pictures, step_XXXXXXXX.png
      checkpoints/     step_XXXXXXXX.safetensors (see training/checkpoint.py)
      eval/            evaluation results
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from ganscape.config import Experiment, dump_yaml, load_config
from ganscape.errors import CheckpointError
from ganscape.jsonio import json_value
from ganscape.training.checkpoint import list_checkpoints


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.config_path = self.path / "config.yaml"
        self.metrics_path = self.path / "metrics.jsonl"
        self.events = self.path / "events"
        self.samples = self.path / "samples"
        self.checkpoints = self.path / "checkpoints"
        self.eval = self.path / "eval"

    def __str__(self) -> str:
        return str(self.path)

    @classmethod
    def create(cls, cfg: Experiment) -> "RunDir":
        """Make a fresh run directory for ``cfg`` and write its resolved config into it."""
        root = Path(cfg.run.root)
        if cfg.run.name:
            run = cls(root / cfg.run.name)
            if list_checkpoints(run.checkpoints):
                raise CheckpointError(
                    f"run directory {run} already holds checkpoints; continue it with "
                    f"'ganscape resume {run}' or choose another run.name.")
        else:
            stem = f"{cfg.data.name}-{cfg.loss}-{time.strftime('%Y%m%d-%H%M%S')}"
            run, n = cls(root / stem), 1
            while run.path.exists():
                n += 1
                run = cls(root / f"{stem}-{n}")
        for folder in (run.path, run.samples, run.checkpoints, run.eval):
            folder.mkdir(parents=True, exist_ok=True)
        run.write_config(cfg)
        return run

    @classmethod
    def open(cls, path: str | Path) -> "RunDir":
        run = cls(path)
        if not run.config_path.is_file():
            raise CheckpointError(f"{run.path} is not a ganscape run directory (no config.yaml in it).")
        return run

    def write_config(self, cfg: Experiment) -> None:
        tmp = self.config_path.with_name(".config.yaml.tmp")
        tmp.write_text(dump_yaml(cfg))
        os.replace(tmp, self.config_path)

    def read_config(self, overrides: list[str] = ()) -> Experiment:
        return load_config(self.config_path, overrides)

    def eval_result(self, step: int, raw: bool = False) -> Path:
        """Where the evaluation of the checkpoint at ``step`` is written (``raw``: of the raw generator)."""
        return self.eval / f"step_{step:08d}{'_raw' if raw else ''}.json"

    def latest_checkpoint(self) -> tuple[int, Path]:
        found = list_checkpoints(self.checkpoints)
        if not found:
            raise CheckpointError(f"run directory {self.path} has no checkpoint in {self.checkpoints}.")
        return found[-1]


class MetricsLog:
    """Appends scalars to metrics.jsonl and, optionally, TensorBoard."""

    def __init__(self, run: RunDir, tensorboard: bool, start_step: int = 0):
        self.path = run.metrics_path
        self._drop_entries_after(start_step)
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step hides events a crashed run logged after its last checkpoint.
            self.writer = SummaryWriter(str(run.events), purge_step=start_step or None)

    def _drop_entries_after(self, step: int) -> None:
        """On resume, forget what was logged after the checkpoint we continue from."""
        if not self.path.exists():
            return
        kept = [line for line in self.path.read_text().splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= step]
        self.path.write_text("".join(line + "\n" for line in kept))

    def write(self, step: int, values: dict) -> None:
        record = {"step": step, **{k: json_value(v) for k, v in values.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.writer.add_scalar(key, value, step)

    def image(self, tag: str, rgb: np.ndarray, step: int) -> None:
        if self.writer is not None:
            self.writer.add_image(tag, rgb, step, dataformats="HWC")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_metrics(run: RunDir) -> list[dict]:
    if not run.metrics_path.exists():
        return []
    return [json.loads(line) for line in run.metrics_path.read_text().splitlines() if line.strip()]
