"""The run directory: every file name in it, its lock and its metrics log.

    RUN_DIR/
      config.yaml           the fully resolved config; with the seed it determines the run
      metrics.jsonl         one JSON object per logged step, appended
      events/               TensorBoard event files (scalars and sample pictures)
      samples/              sample pictures, step_XXXXXXXX.png
      checkpoints/          step_XXXXXXXX.safetensors (see store/checkpoint.py), each with the config;
                            superseded-<time>/ holds those a resume from an earlier step moved aside
      eval/                 evaluation results: step_XXXXXXXX[_raw][_truncation_T].json,
                            truncation_sweep_step_XXXXXXXX.json and .png
      dynamics/             spectrum_step_XXXXXXXX.png
      augmented_reals.png   real images as the discriminator sees them (written at the start of a run)
      augment_p.png         the adaptive augmentation probability over the steps
      spectra.png           sigma_0 of each weight of G and D over the steps (``ganscape plot spectra``)
      .lock                 held by the one process that trains the run (its PID inside)

This floor knows no config: the config is read and written as text or a dict (``ganscape.runs`` turns it
into an ``Experiment``). One process at a time may train a run (an exclusive lock that the kernel
releases when its holder dies); the metrics log is only appended to, and rewritten atomically when a
resumed run forgets what was logged after its checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import time
import warnings
from pathlib import Path

import numpy as np

from ganscape.errors import CheckpointError, GanscapeWarning
from ganscape.jsonio import json_value
from ganscape.store.checkpoint import checkpoint_name, list_checkpoints, read_checkpoint_config, step_stem

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows: runs are not locked there
    fcntl = None

CONFIG_NAME = "config.yaml"
_STEP = re.compile(r"step_(\d+)")


def step_in_name(name: str) -> int | None:
    """The step a per-step file name holds (``step_00000040_raw.json`` -> 40), or None."""
    found = _STEP.search(name)
    return int(found.group(1)) if found else None


def is_run_dir(path: str | Path) -> bool:
    """Whether ``path`` looks like a run directory (a config.yaml or a checkpoints folder in it)."""
    path = Path(path)
    return (path / CONFIG_NAME).is_file() or (path / "checkpoints").is_dir()


def eval_result_path(folder: str | Path, step: int, raw: bool = False, truncation: float | None = None) -> Path:
    """Where an evaluation of the generator at ``step`` is written in ``folder``'s ``eval/`` (a run directory or
    an exported model folder); ``raw``: of the raw generator; ``truncation``: of latents truncated to it."""
    suffix = ("_raw" if raw else "") + (f"_truncation_{truncation:g}" if truncation is not None else "")
    return Path(folder) / "eval" / f"{step_stem(step)}{suffix}.json"


def truncation_sweep_path(folder: str | Path, step: int) -> Path:
    """The truncation sweep of the generator at ``step`` in ``folder``'s ``eval/`` (JSON; its picture: same stem)."""
    return Path(folder) / "eval" / f"truncation_sweep_{step_stem(step)}.json"


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.config_path = self.path / CONFIG_NAME
        self.metrics_path = self.path / "metrics.jsonl"
        self.events = self.path / "events"
        self.samples = self.path / "samples"
        self.checkpoints = self.path / "checkpoints"
        self.eval = self.path / "eval"
        self.dynamics = self.path / "dynamics"
        self.lock_path = self.path / ".lock"
        self.augmented_reals_picture = self.path / "augmented_reals.png"
        self.augment_picture = self.path / "augment_p.png"
        self.spectra_picture = self.path / "spectra.png"
        self._lock_fd: int | None = None

    def __str__(self) -> str:
        return str(self.path)

    # ---------------------------------------------------------------- per-step file names

    def checkpoint_file(self, step: int) -> Path:
        return self.checkpoints / checkpoint_name(step)

    def sample_picture(self, step: int) -> Path:
        return self.samples / f"{step_stem(step)}.png"

    def eval_result(self, step: int, raw: bool = False, truncation: float | None = None) -> Path:
        """Where the evaluation of the checkpoint at ``step`` is written (``raw``: of the raw generator)."""
        return eval_result_path(self.path, step, raw, truncation)

    def truncation_sweep_result(self, step: int) -> Path:
        return truncation_sweep_path(self.path, step)

    def spectrum_picture(self, step: int) -> Path:
        return self.dynamics / f"spectrum_{step_stem(step)}.png"

    def superseded_folder(self) -> Path:
        """A new folder name for checkpoints moved aside by a resume from an earlier step."""
        return self.checkpoints / f"superseded-{time.strftime('%Y%m%d-%H%M%S')}"

    # ---------------------------------------------------------------- making and opening

    @classmethod
    def make(cls, root: str | Path, name: str | None, stem: str) -> "RunDir":
        """Make the run directory ``root/name`` (or, without a name, a new ``root/stem[-N]``), take its lock and
        make its folders. A named directory that already holds checkpoints is refused."""
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        if name:
            run = cls(root / name)
            run.path.mkdir(parents=True, exist_ok=True)
            run.acquire()
            if list_checkpoints(run.checkpoints):
                run.release()
                raise CheckpointError(
                    f"run directory {run} already holds checkpoints; continue it with "
                    f"'ganscape resume {run}' or choose another run.name.")
        else:
            for n in range(1, 10_000):
                run = cls(root / (stem if n == 1 else f"{stem}-{n}"))
                try:
                    run.path.mkdir()  # atomic: two processes never get the same new folder
                    break
                except FileExistsError:
                    continue
            run.acquire()
        for folder in (run.samples, run.checkpoints, run.eval):
            folder.mkdir(parents=True, exist_ok=True)
        return run

    @classmethod
    def open(cls, path: str | Path) -> "RunDir":
        run = cls(path)
        if not run.path.is_dir():
            raise CheckpointError(f"run directory {run.path} does not exist.")
        if not run.config_path.exists() and not list_checkpoints(run.checkpoints):
            raise CheckpointError(f"{run.path} is not a ganscape run directory (no config.yaml and no checkpoints "
                                  "in it).")
        return run

    # ---------------------------------------------------------------- the lock

    def acquire(self) -> None:
        """Take the run's exclusive lock, or say which process holds it. Re-entrant for this object."""
        if self._lock_fd is not None or fcntl is None:
            return
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise CheckpointError(f"run directory {self.path} is in use by {holder}; wait for it to finish, "
                                  "or stop it first (two processes on one run would mix their checkpoints "
                                  "and logs).") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"process {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
                 .encode())
        self._lock_fd = fd

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def discard_if_unused(self) -> None:
        """Remove what creating this run wrote, when the run never got to a checkpoint or a log record
        (e.g. its data set was missing). Files that this code did not write are never removed."""
        if list_checkpoints(self.checkpoints) or read_log(self.metrics_path):
            return
        self.release()
        for path in (self.config_path, self.lock_path, self.metrics_path, self.augmented_reals_picture):
            path.unlink(missing_ok=True)
        for folder in (self.samples, self.checkpoints, self.eval, self.events, self.path):
            try:
                folder.rmdir()  # only when empty
            except OSError:
                pass

    # ---------------------------------------------------------------- the config, as text and as stored

    def write_config_text(self, text: str) -> None:
        """Replace config.yaml with ``text`` atomically."""
        tmp = self.config_path.with_name(f".{CONFIG_NAME}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, self.config_path)

    def keep_config_aside(self) -> Path | None:
        """Move config.yaml to config.yaml.replaced-<time> (before it is rewritten); returns where, or None."""
        if not self.config_path.exists():
            return None
        kept = self.config_path.with_name(f"{CONFIG_NAME}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(self.config_path, kept)
        return kept

    def checkpoint_config(self) -> tuple[int, dict] | None:
        """(step, config) stored in the newest checkpoint that has one; None without checkpoints."""
        for step, path in reversed(list_checkpoints(self.checkpoints)):
            stored = read_checkpoint_config(path)
            if stored is not None:
                return step, stored
        return None

    # ---------------------------------------------------------------- checkpoints

    def list_checkpoints(self) -> list[tuple[int, Path]]:
        return list_checkpoints(self.checkpoints)

    def latest_checkpoint(self) -> tuple[int, Path]:
        found = self.list_checkpoints()
        if not found:
            raise CheckpointError(
                f"run directory {self.path} has no checkpoint in {self.checkpoints}: it stopped before its first. "
                f"Start it again, with its config, name and place: ganscape train {shlex.quote(str(self.path))} "
                f"run.root={shlex.quote(str(self.path.parent))} run.name={shlex.quote(self.path.name)}")
        return found[-1]

    def checkpoint_at(self, step: int | None) -> tuple[int, Path]:
        """(step, path) of the checkpoint at ``step``, or of the newest one (None)."""
        if step is None:
            return self.latest_checkpoint()
        path = self.checkpoint_file(step)
        if not path.is_file():
            steps = ", ".join(str(s) for s, _ in self.list_checkpoints()) or "none"
            raise CheckpointError(f"{self} has no checkpoint at step {step} (checkpoints: {steps}).")
        return step, path


def read_log(path: Path) -> list[dict]:
    """The records of a JSON-lines log; lines that are not JSON objects (a write cut short by a crash)
    are dropped with a warning naming them."""
    if not path.exists():
        return []
    records = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict) or not isinstance(record.get("step"), int):
            warnings.warn(f"{path} line {number} is not a complete log record (a write cut short?); dropped.",
                          GanscapeWarning, stacklevel=2)
            continue
        records.append(record)
    return records


def write_log(path: Path, records: list[dict]) -> None:
    """Replace a JSON-lines log with ``records`` in one rename, so a crash leaves the old log or the new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("".join(json.dumps(record) + "\n" for record in records))
    os.replace(tmp, path)


class MetricsLog:
    """Appends scalars to metrics.jsonl and, optionally, TensorBoard."""

    def __init__(self, run: RunDir, tensorboard: bool, start_step: int = 0):
        self.path = run.metrics_path
        self._drop_entries_after(start_step)
        self.tensorboard, self.events, self.start_step = tensorboard, run.events, start_step
        self._writer = None

    @property
    def writer(self):
        """TensorBoard's writer (None without TensorBoard), made at the first value logged: a run that fails
        before then leaves no events file behind."""
        if self._writer is None and self.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step hides events a crashed run logged after its last checkpoint.
            self._writer = SummaryWriter(str(self.events), purge_step=self.start_step or None)
        return self._writer

    def _drop_entries_after(self, step: int) -> None:
        """On resume, forget what was logged after the checkpoint we continue from."""
        if self.path.exists():
            write_log(self.path, [record for record in read_log(self.path) if record["step"] <= step])

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
        if self._writer is not None:
            self._writer.close()


def read_metrics(run: RunDir) -> list[dict]:
    return read_log(run.metrics_path)
