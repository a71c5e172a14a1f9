"""The best evaluation of a run so far, for each value that ranks generators (``metrics.BETTER``)."""

from __future__ import annotations

import math

from ganscape.metrics import BETTER


def _better(name: str, value: float, than: float) -> bool:
    return value < than if BETTER[name] == "min" else value > than


class BestScores:
    """For each logged key such as ``eval/fid``, the best value and the step it was reached at.

    ``update`` takes one evaluation (``{"eval/fid": 31.2, "eval_raw/fid": 33.0, ...}``) and returns
    the log entries ``eval_best/fid`` and ``eval_best/fid_step`` of every ranked value. Ties keep the
    earlier step; non-finite values never count as best.
    """

    def __init__(self):
        self.best: dict[str, tuple[float, int]] = {}

    @classmethod
    def from_log(cls, rows: list[dict]) -> "BestScores":
        """Rebuilt from a run's metrics log, e.g. when it resumes."""
        best = cls()
        for row in rows:
            best.update({k: v for k, v in row.items() if k != "step"}, row["step"])
        return best

    def update(self, values: dict, step: int) -> dict[str, float]:
        for key, value in values.items():
            prefix, _, name = key.partition("/")
            ranked = name in BETTER and not prefix.endswith("_best")
            if not ranked or not isinstance(value, (int, float)) or not math.isfinite(value):
                continue
            if key not in self.best or _better(name, value, self.best[key][0]):
                self.best[key] = (float(value), step)
        return self.entries()

    def entries(self) -> dict[str, float]:
        out = {}
        for key, (value, step) in self.best.items():
            prefix, _, name = key.partition("/")
            out[f"{prefix}_best/{name}"] = value
            out[f"{prefix}_best/{name}_step"] = step
        return out

    def step_of(self, key: str) -> int | None:
        """The step where ``key`` (e.g. ``eval/fid``) was best, or None before any evaluation of it."""
        return self.best[key][1] if key in self.best else None
