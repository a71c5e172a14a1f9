"""A worker's hold on a trial, on Optuna's public API only: claiming a queued trial, beating its heartbeat,
telling its end once, and giving it back (failed, and queued again) when its worker stops.

How each guarantee maps onto Optuna:

- Claim once: ``study.ask()`` pops a WAITING (enqueued) trial atomically on the journal and the RDB
  storages, so a queued trial goes to one worker only. When no trial waits, though, ``ask()`` makes a new
  one; so a worker looks for a waiting trial and asks under a study-wide lock (a file lock beside the
  journal file, a PostgreSQL advisory lock for a database) and a study never gets trials nobody queued.
- Heartbeat: Optuna's own (RDBStorage's ``heartbeat_interval``/``grace_period`` with
  ``optuna.storages.fail_stale_trials``) beats only inside ``study.optimize`` and not on the journal
  storage, and it cannot tell a dead process from a slow one. Here a thread writes the time into the
  trial's user attribute ``heartbeat`` (``trial.set_user_attr``), and the claim records the worker's host
  and pid, so a worker sees at once that a process on its own machine is gone.
- Retry from the last checkpoint: a worker fails a lost trial with ``study.tell(number, state=FAIL)``,
  which only one worker gets through (to the others the trial is finished), and queues it again with
  ``study.enqueue_trial``: the same parameters, the same ``run_prefix`` (so the retry resumes the same run
  directories from their last checkpoints) and ``retry_of``. The public API lets only a trial's own worker
  write its attributes, so the claim writes beforehand why the trial fails if its worker vanishes; a
  worker that ends its trial itself overwrites that reason (Ctrl-C, an invalid config) or clears it.
- Exactly-once completion: ``study.tell`` refuses a finished trial, so a worker whose trial was given up for
  a late heartbeat learns so there and tells nothing (the retry carries on).
- Ctrl-C: the worker gives its trial back (failed with the reason, queued again), as for a lost worker.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import zlib
from pathlib import Path

from ganscape.errors import ConfigError

try:
    import fcntl
except ImportError:  # Windows: claims are not serialised between processes there
    fcntl = None

HEARTBEAT_S = 15.0
GRACE_S = 120.0
LOST = "its worker stopped (killed or lost)"
INTERRUPTED = "its worker was interrupted (Ctrl-C)"
KEPT_ATTRS = ("group", "group_label", "run_prefix")  # what a retry inherits besides the parameters


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ConfigError("studies run on Optuna: pip install 'optuna>=4.3,<6'.") from None
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # ganscape reports what matters itself
    return optuna


# ---------------------------------------------------------------- claiming


def claim_lock(url: str, folder: Path, name: str):
    """The study-wide lock a worker holds while it claims (reusable, one holder at a time): a PostgreSQL
    advisory lock keyed by the study's ``name`` for a database, else a file lock in the study ``folder``
    (the journal file serves one machine)."""
    if url.startswith(("postgresql://", "postgresql+psycopg2://")):
        return _AdvisoryLock(url, name)
    return _FileLock(folder / "claim.lock")


class _FileLock:
    def __init__(self, path: Path):
        self.path, self.fd = path, None

    def __enter__(self):
        if fcntl is not None:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the lock, as does the process's death
            self.fd = None


class _AdvisoryLock:
    """A session-level PostgreSQL advisory lock; the server releases it when its connection drops (a killed
    worker)."""

    def __init__(self, url: str, name: str):
        import sqlalchemy

        self.engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1),
                                               pool_pre_ping=True)
        self.key = zlib.crc32(f"ganscape study {name}".encode())
        self.lock, self.unlock = (sqlalchemy.text(f"SELECT {f}(:key)") for f in ("pg_advisory_lock",
                                                                              "pg_advisory_unlock"))
        self.connection = None

    def __enter__(self):
        self.connection = self.engine.connect()
        self.connection.execute(self.lock, {"key": self.key})

    def __exit__(self, *exc):
        try:
            self.connection.execute(self.unlock, {"key": self.key})
        finally:
            self.connection.close()
            self.connection = None


def claim(study, holder: dict | None = None):
    """A waiting trial of the study, claimed by this worker (None when none waits). Call it under the study's
    ``claim_lock`` when other workers may claim too. The claim counts as a heartbeat, records the worker
    (``holder``: its host and pid) at once, so that its death is seen from its machine however early it
    comes, and writes the reason the trial fails should its worker vanish (see the module's docstring)."""
    optuna = _optuna()
    if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)):
        return None
    trial = study.ask()  # pops the first waiting trial
    trial.set_user_attr("heartbeat", time.time())
    if holder is not None:
        trial.set_user_attr("worker", holder)
    trial.set_user_attr("failure", LOST)
    return trial


class Heartbeat:
    """Writes the time into the trial's user attributes every ``every`` seconds, from a thread."""

    def __init__(self, trial, every: float = HEARTBEAT_S):
        self.trial, self.every = trial, every
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while not self.stop.wait(self.every):
            try:
                self.trial.set_user_attr("heartbeat", time.time())
            except Exception:  # noqa: BLE001 - a missed beat is not fatal; the next one may get through
                pass

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


# ---------------------------------------------------------------- ending a trial


def tell_once(study, trial, value: float | None = None, state=None) -> bool:
    """Tell the end of a running trial (this worker's Trial, or any trial's number): its value, or ``state``.
    False, telling nothing, when the trial had finished already (another worker failed it first)."""
    optuna = _optuna()
    try:
        study.tell(trial, value, state=state)
    except optuna.exceptions.UpdateFinishedTrialError:  # finished between tell's look and its write
        return False
    except ValueError:  # "Cannot tell a FAIL trial": finished before tell looked
        number = trial if isinstance(trial, int) else trial.number
        if _frozen(study, number).state.is_finished():
            return False
        raise
    return True


def finish(study, trial, value: float | None = None, state=None) -> bool:
    """End this worker's trial with its value, or PRUNED: clears the reason written at the claim, then tells
    it once. False when another worker had given the trial up meanwhile."""
    optuna = _optuna()
    try:
        trial.set_user_attr("failure", None)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    return tell_once(study, trial, value, state=state)


def fail(study, trial, reason: str) -> bool:
    """Fail this worker's trial for good with ``reason`` (not retried); False when it had finished already."""
    return _say_why(trial, reason) and tell_once(study, trial, state=_optuna().trial.TrialState.FAIL)


def requeue(study, trial, reason: str) -> bool:
    """Give back this worker's own running trial: fail it with ``reason`` and queue it again with its
    parameters and run directories. False when it had finished meanwhile (another worker failed it first,
    and queued it again)."""
    return _say_why(trial, reason) and fail_and_queue_again(study, trial.number)


def _say_why(trial, reason: str) -> bool:
    """Write why this worker's trial fails, before failing it (a finished trial takes no more attributes);
    False when it has finished already."""
    optuna = _optuna()
    try:
        trial.set_user_attr("failure", reason)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    return True


def fail_and_queue_again(study, number: int) -> bool:
    """Fail the running trial ``number`` and queue a retry of it; False when it had finished already."""
    optuna = _optuna()
    if not tell_once(study, number, state=optuna.trial.TrialState.FAIL):
        return False
    failed = _frozen(study, number)
    params = failed.params or failed.system_attrs.get("fixed_params", {})  # lost before it drew its parameters
    kept = {k: v for k, v in failed.user_attrs.items() if k in KEPT_ATTRS}
    study.enqueue_trial(params, user_attrs=kept | {"retry_of": number})
    return True


def _frozen(study, number: int):
    [trial] = [t for t in study.get_trials(deepcopy=False) if t.number == number]
    return trial


# ---------------------------------------------------------------- lost workers


def _alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine still runs: a zombie (dead, not yet reaped by its parent) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has exited and waits for its parent to reap it (state Z in Linux's /proc; False where
    there is no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]  # the state follows the command name in parentheses


def last_beat(trial) -> float:
    """When the trial's worker last said it was alive (claiming the trial counts as a beat)."""
    return trial.user_attrs.get("heartbeat", trial.datetime_start.timestamp() if trial.datetime_start else 0.0)


def lost_worker(trial, grace_s: float = GRACE_S) -> str | None:
    """Why the running ``trial``'s worker counts as dead: its process is gone (seen from the same machine) or
    it has been silent for longer than ``grace_s``; None while it lives."""
    worker = trial.user_attrs.get("worker") or {}
    if worker.get("host") == socket.gethostname() and worker.get("pid") and not _alive(int(worker["pid"])):
        return f"process {worker['pid']} is gone"
    silent = time.time() - last_beat(trial)
    return f"no heartbeat for {silent:.0f} s" if silent > grace_s else None


def fail_stale_trials(study, grace_s: float = GRACE_S) -> list[int]:
    """Fail the running trials whose worker died (on this machine) or went silent, and queue each again
    with its parameters and run directories. Returns the numbers of the trials failed here."""
    optuna = _optuna()
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    return [trial.number for trial in running
            if lost_worker(trial, grace_s) is not None and fail_and_queue_again(study, trial.number)]
