"""The run directory and what is logged into it.

    RUN_DIR/
      config.yaml      the fully resolved config; with the seed it determines the run
      metrics.jsonl    one JSON object per logged step, appended
      events/          TensorBoard event files (scalars and sample pictures)
      samples/         sample pictures, step_XXXXXXXX.png
      checkpoints/     step_XXXXXXXX.safetensors (see training/checkpoint.py), each with the config
      eval/            evaluation results
      .lock            held by the one process that trains the run (its PID inside)

Integrity: ``config.yaml`` is checked against the config stored in the newest checkpoint before a run
is resumed or evaluated, so a lost, truncated or edited file never turns a run into another
experiment; one process at a time may train a run (an exclusive lock that the kernel releases when
its holder dies); the metrics log is only appended to, and rewritten atomically when a resumed run
forgets what was logged after its checkpoint.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import time
import warnings
from pathlib import Path

import numpy as np

from ganscape.config import RESUMABLE_KEYS, Experiment, config_differences, dump_yaml, from_dict, load_config
from ganscape.errors import CheckpointError, ConfigError, GanscapeWarning
from ganscape.jsonio import json_value
from ganscape.training.checkpoint import list_checkpoints, read_checkpoint_config

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows: runs are not locked there
    fcntl = None

RESTORE_HINT = "'ganscape resume {run} --restore-config' writes the checkpoint's config back (the file is kept beside)"


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.config_path = self.path / "config.yaml"
        self.metrics_path = self.path / "metrics.jsonl"
        self.events = self.path / "events"
        self.samples = self.path / "samples"
        self.checkpoints = self.path / "checkpoints"
        self.eval = self.path / "eval"
        self.lock_path = self.path / ".lock"
        self._lock_fd: int | None = None

    def __str__(self) -> str:
        return str(self.path)

    @classmethod
    def create(cls, cfg: Experiment) -> "RunDir":
        """Make a fresh run directory for ``cfg``, take its lock and write the resolved config into it.

        The lock is held until ``release`` (``train`` releases it when it ends), so no other process
        can start, resume or overwrite this run meanwhile.
        """
        root = Path(cfg.run.root)
        root.mkdir(parents=True, exist_ok=True)
        if cfg.run.name:
            run = cls(root / cfg.run.name)
            run.path.mkdir(parents=True, exist_ok=True)
            run.acquire()
            if list_checkpoints(run.checkpoints):
                run.release()
                raise CheckpointError(
                    f"run directory {run} already holds checkpoints; continue it with "
                    f"'ganscape resume {run}' or choose another run.name.")
        else:
            stem = f"{cfg.data.name}-{cfg.loss}-{time.strftime('%Y%m%d-%H%M%S')}"
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
        run.write_config(cfg)
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
        for name in ("config.yaml", ".lock", "metrics.jsonl"):
            (self.path / name).unlink(missing_ok=True)
        for folder in (self.samples, self.checkpoints, self.eval, self.events, self.path):
            try:
                folder.rmdir()  # only when empty
            except OSError:
                pass

    # ---------------------------------------------------------------- the config

    def write_config(self, cfg: Experiment) -> None:
        tmp = self.config_path.with_name(f".config.yaml.{os.getpid()}.tmp")
        tmp.write_text(dump_yaml(cfg))
        os.replace(tmp, self.config_path)

    def checkpoint_config(self) -> tuple[int, dict] | None:
        """(step, config) stored in the newest checkpoint that has one; None without checkpoints."""
        for step, path in reversed(list_checkpoints(self.checkpoints)):
            stored = read_checkpoint_config(path)
            if stored is not None:
                return step, stored
        return None

    def read_config(self, overrides: list[str] = ()) -> Experiment:
        """The run's config with ``overrides``, after checking ``config.yaml`` against the newest checkpoint.

        A missing, empty or unreadable ``config.yaml``, or one that differs from the checkpoint's config
        in a key that changes the run, is refused with the difference and how to recover.
        """
        stored = self.checkpoint_config()
        where = f"{self.config_path}"
        if not self.config_path.is_file():
            problem = "is missing"
        elif not self.config_path.read_bytes().strip():
            problem = "is empty"
        else:
            problem = None
        if problem is None:
            try:
                cfg = load_config(self.config_path, overrides, written=True)
            except ConfigError as err:
                if stored is None or (overrides and self._readable()):
                    raise  # the overrides are at fault, or there is nothing to restore from
                problem = f"cannot be read ({err})"
        if problem is not None:
            if stored is None:
                raise CheckpointError(f"{where} {problem}, and the run has no checkpoint that holds its config.")
            raise CheckpointError(f"{where} {problem}. The run's config is stored in its checkpoint of step "
                                  f"{stored[0]}: " + RESTORE_HINT.format(run=self.path) + ".")
        if stored is not None:
            differences = config_differences(from_dict(stored[1]), cfg, ignore=RESUMABLE_KEYS)
            if differences:
                shown = "; ".join(f"{key}: {ours!r} in config.yaml, {theirs!r} in the checkpoint"
                                  for key, theirs, ours in differences[:5])
                more = f" (and {len(differences) - 5} more)" if len(differences) > 5 else ""
                raise CheckpointError(f"{where} differs from the config the run was trained with (checkpoint of "
                                      f"step {stored[0]}): {shown}{more}. A run's config is fixed once it has "
                                      "started; " + RESTORE_HINT.format(run=self.path) + ".")
        return cfg

    def _readable(self) -> bool:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                load_config(self.config_path, written=True)
        except ConfigError:
            return False
        return True

    def restore_config(self) -> Path | None:
        """Write the newest checkpoint's config to ``config.yaml``, keeping the old file beside it.

        Returns where the old file was kept (None when there was none).
        """
        stored = self.checkpoint_config()
        if stored is None:
            raise CheckpointError(f"{self.path} has no checkpoint that holds a config to restore.")
        kept = None
        if self.config_path.exists():
            kept = self.config_path.with_name(f"config.yaml.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
            os.replace(self.config_path, kept)
        self.write_config(from_dict(stored[1]))
        return kept

    # ---------------------------------------------------------------- checkpoints and results

    def eval_result(self, step: int, raw: bool = False) -> Path:
        """Where the evaluation of the checkpoint at ``step`` is written (``raw``: of the raw generator)."""
        return self.eval / f"step_{step:08d}{'_raw' if raw else ''}.json"

    def latest_checkpoint(self) -> tuple[int, Path]:
        found = list_checkpoints(self.checkpoints)
        if not found:
            raise CheckpointError(
                f"run directory {self.path} has no checkpoint in {self.checkpoints}: it stopped before its first. "
                f"Start it again, with its config, name and place: ganscape train {shlex.quote(str(self.path))} "
                f"run.root={shlex.quote(str(self.path.parent))} run.name={shlex.quote(self.path.name)}")
        return found[-1]


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
        """On resume, forget what was logged after the checkpoint we continue from: the kept records go to
        a new file that replaces the log in one rename, so a crash leaves the old log or the new one."""
        if not self.path.exists():
            return
        kept = [record for record in read_log(self.path) if record["step"] <= step]
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text("".join(json.dumps(record) + "\n" for record in kept))
        os.replace(tmp, self.path)

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
