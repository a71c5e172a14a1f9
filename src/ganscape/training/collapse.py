"""Catching a collapse while training, as Brock et al. (2019, Section 4) do by watching spectra.

The watched signal (``collapse.signal``) is any value of the run's log: D's largest top singular value
(``spectra/D/max_s0``, logged every ``log.spectra_every`` steps), G's first layer's (``spectra/G/first_s0``,
which the paper sees explode at collapse), or an evaluated value such as ``eval/fid``. A value that the
metrics rank (``metrics.BETTER``) is watched for getting worse, any other for growing. At each record of the
signal the detector compares it with the best of its previous ``collapse.window`` records (0: all of them,
the best so far): a collapse is a value more than ``collapse.factor`` times that reference (for a value to
maximize, less than the reference divided by the factor). References that are not positive have no ratio
and are skipped, as are non-finite values (the divergence check stops those runs).

The first collapse is reported in one line naming the step, the signal and its values before and after,
logged (``collapse/*`` entries of metrics.jsonl), and the newest checkpoint no later than the signal's
previous record, the last one taken before the jump, is kept from rotation as ``checkpoint.keep_best``
keeps the best one (until a collapse, that candidate is spared too, so that rotation cannot remove it
before the collapse is seen). With ``collapse.stop`` the run then stops after its next step, with a checkpoint.
A resumed run reads an earlier collapse back from its log: it keeps that checkpoint and does not stop again.
"""

from __future__ import annotations

import math
import warnings
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path

from ganscape.config import Experiment
from ganscape.errors import ConfigError, GanscapeWarning
from ganscape.metrics import BETTER, VALUES
from ganscape.store.checkpoint import list_checkpoints

EVALUATED = ("eval", "eval_raw")  # the prefixes of evaluated values in the log


def direction(signal: str) -> str:
    """"min" when lower values of ``signal`` are better (a ranked value such as eval/fid, or any unranked
    one, whose growth is the warning: spectra), "max" for ranked values to maximize (eval/is_mean)."""
    prefix, _, name = signal.partition("/")
    return BETTER[name] if prefix in EVALUATED and name in BETTER else "min"


def collapsed(value: float, reference: float, factor: float, better: str) -> bool:
    """Whether ``value`` is worse than ``reference`` by more than ``factor`` (a ratio; ``better`` is "min"
    or "max")."""
    return value > reference * factor if better == "min" else value < reference / factor


@dataclass(frozen=True)
class Collapse:
    """A detected collapse: the signal's ``after`` at ``step``, against the reference ``before`` recorded
    at ``before_step``; ``kept_step`` is the checkpoint kept from before it (None: none was left)."""

    signal: str
    step: int
    before: float
    before_step: int
    after: float
    kept_step: int | None

    def entries(self) -> dict[str, float]:
        """Its metrics.jsonl entries (``collapse/kept_step`` only where a checkpoint was kept)."""
        entries = {"collapse/step": self.step, "collapse/before": self.before,
                   "collapse/before_step": self.before_step, "collapse/after": self.after}
        return entries | ({} if self.kept_step is None else {"collapse/kept_step": self.kept_step})

    @classmethod
    def from_row(cls, signal: str, row: dict) -> "Collapse":
        return cls(signal, int(row["collapse/step"]), row["collapse/before"], int(row["collapse/before_step"]),
                   row["collapse/after"], None if "collapse/kept_step" not in row else int(row["collapse/kept_step"]))

    def message(self, factor: float, window: int) -> str:
        records = f"its previous {window} records" if window else "its records so far"
        if self.after > self.before:  # a value watched for growth, or ranked with lower better
            moved, rule = "rose", f"more than collapse.factor={factor:g} times the lowest of {records}"
        else:
            moved, rule = "fell", f"less than the highest of {records} divided by collapse.factor={factor:g}"
        kept = (f"the checkpoint of step {self.kept_step}, the last before it, is kept" if self.kept_step is not None
                else "no checkpoint had been written before it (lower checkpoint.every to have one)")
        return (f"collapse at step {self.step}: {self.signal} {moved} from {self.before:.6g} (step {self.before_step}) "
                f"to {self.after:.6g}, {rule}; {kept}.")


def check_signal(cfg: Experiment, metrics: list[str]) -> None:
    """Refuse a signal that this run never logs: an evaluated value that no metric of ``metrics`` computes,
    spectra without ``log.spectra_every``."""
    signal = cfg.collapse.signal
    prefix, _, name = signal.partition("/")
    if prefix in EVALUATED and not any(name in VALUES[m] for m in metrics):
        needed = [m for m, values in VALUES.items() if name in values]
        fix = f"add {needed[0]} to eval.metrics" if needed else f"valid values: {', '.join(sorted(BETTER))}"
        raise ConfigError(f"collapse.signal={signal} watches {name}, which no evaluation of this run computes "
                          f"(metrics: {', '.join(metrics) or 'none'}); {fix}.")
    if prefix == "spectra" and not cfg.log.spectra_every:
        raise ConfigError(f"collapse.signal={signal} watches singular values, which this run does not log; "
                          "set log.spectra_every=N (steps between measurements).")


class CollapseDetector:
    """Watches one signal of the log rows for the first collapse (see the module's docstring).

    ``observe`` takes each row as it is written; ``kept`` is the checkpoint step to protect from rotation;
    ``stopping`` says that a collapse found by this run, with ``collapse.stop``, asks it to end.
    A detector made without a signal never fires nor keeps anything (it stands for "off").
    """

    def __init__(self, signal: str = "", factor: float = 3.0, window: int = 5, stop: bool = False):
        self.signal, self.factor, self.window, self.stop = signal, factor, window, stop
        self.better = direction(signal)
        self.recent: deque[tuple[int, float]] = deque(maxlen=window or None)  # (step, value) records
        self.found: Collapse | None = None
        self.stopping = False

    @classmethod
    def for_run(cls, cfg: Experiment, metrics: list[str], rows: list[dict]) -> "CollapseDetector":
        """The run's detector (one that never fires when ``collapse.signal`` is empty), its signal checked
        against what the run logs (``metrics``: those evaluated) and its history read from ``rows``."""
        settings = cfg.collapse
        if not settings.signal:
            return cls()
        check_signal(cfg, metrics)
        detector = cls(settings.signal, settings.factor, settings.window, settings.stop)
        for row in rows:
            if "collapse/step" in row:
                detector.found = Collapse.from_row(settings.signal, row)
            elif (value := detector._value(row)) is not None:
                detector.recent.append((row["step"], value))
        return detector

    def _value(self, row: dict) -> float | None:
        value = row.get(self.signal) if self.signal else None
        finite = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return float(value) if finite else None

    def _reference(self) -> tuple[int, float] | None:
        """The best (step, value) of the records in the window."""
        if not self.recent:
            return None
        pick = min if self.better == "min" else max
        return pick(self.recent, key=lambda record: record[1])

    def observe(self, step: int, row: dict, checkpoints: Path, log) -> None:
        """Take the row logged at ``step``; on the first collapse, pick the checkpoint to keep from
        ``checkpoints`` (a run's folder), write the ``collapse/*`` entries to ``log`` (a ``MetricsLog``) and
        report it in one line (a ``GanscapeWarning``)."""
        value = self._value(row)
        if value is None or self.found is not None:
            return
        reference = self._reference()
        if reference is not None and reference[1] > 0 and collapsed(value, reference[1], self.factor, self.better):
            kept = self._last_healthy_checkpoint(checkpoints)
            self.found = Collapse(self.signal, step, reference[1], reference[0], value, kept)
            self.stopping = self.stop
            log.write(step, self.found.entries())
            warnings.warn(self.found.message(self.factor, self.window), GanscapeWarning, stacklevel=2)
        self.recent.append((step, value))

    def _last_healthy_checkpoint(self, checkpoints: Path) -> int | None:
        """The newest checkpoint no later than the signal's latest record (None: none, or no record yet)."""
        if not self.recent:
            return None
        latest = self.recent[-1][0]
        return max((step for step, _ in list_checkpoints(checkpoints) if step <= latest), default=None)

    def kept(self, checkpoints: Path) -> frozenset[int]:
        """The checkpoint steps that rotation must spare: the one kept before a collapse, and while none has
        been found, the one a collapse at the signal's next record would keep (so that it is still there
        when an evaluation finds the collapse after that step's checkpoint rotated the others)."""
        kept = self.found.kept_step if self.found is not None else self._last_healthy_checkpoint(checkpoints)
        return frozenset() if kept is None else frozenset({kept})

    def summary(self) -> dict | None:
        """The collapse for a run's summary (None when there was none), with its one-line ``message`` and
        whether it ``stopped`` the run."""
        if self.found is None:
            return None
        return asdict(self.found) | {"message": self.found.message(self.factor, self.window), "stopped": self.stopping}
