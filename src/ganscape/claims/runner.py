"""Running the claims' experiments and writing the page.

``run_claims(out, names, device)`` runs the experiment of each chosen CPU claim in ``out/<experiment>/`` and writes
its measurements to ``out/<experiment>/measured.json`` (atomically, with its wall time and when it finished). An
experiment whose ``measured.json`` exists is not run again, so an interrupted run continues with the first
unfinished one, and within it the study resumes its unfinished trials. ``write_page`` judges every claim from what
``out`` holds and writes the page (``claims.page``), with a copy of each ``measured.json`` beside it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path

from ganscape.claims.experiments import EXPERIMENTS
from ganscape.claims.registry import CLAIMS, Claim
from ganscape.errors import ConfigError, close_matches
from ganscape.jsonio import json_value, write_json

MEASURED = "measured.json"


def chosen(names: Iterable[str] | None) -> list[Claim]:
    """The claims named (all when none is), in the registry's order; an unknown name lists the valid ones."""
    names = list(names or [])
    known = {claim.name: claim for claim in CLAIMS}
    for name in names:
        if name not in known:
            hint = close_matches(name, list(known))
            raise ConfigError(f"unknown claim {name!r}." + (f" Did you mean {hint[0]!r}?" if hint else "")
                              + f" Claims: {', '.join(known)}.")
    return [claim for claim in CLAIMS if not names or claim.name in names]


def measured_path(out: Path, experiment: str) -> Path:
    return Path(out) / experiment / MEASURED


def read_measured(out: Path, experiment: str) -> dict | None:
    """An experiment's measurements, or None when it has not finished."""
    path = measured_path(out, experiment)
    return json.loads(path.read_text()) if path.is_file() else None


def strict(data):
    """``data`` with every number as strict JSON holds it (NaN and infinities as the strings "nan", "inf", which
    ``float`` reads back)."""
    if isinstance(data, dict):
        return {key: strict(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [strict(value) for value in data]
    return json_value(data)


def run_claims(out: Path, names: Iterable[str] | None = None, device: str = "cpu", workers: int = 2,
               on_event: Callable[[str], None] = lambda text: None,
               experiments: dict[str, Callable] = EXPERIMENTS) -> list[str]:
    """Run each chosen claim's experiment that has not finished (claims that need a GPU are skipped); returns the
    experiments run now. ``on_event`` gets a line before and after each."""
    ran = []
    for experiment in dict.fromkeys(c.experiment for c in chosen(names) if c.experiment is not None):
        if read_measured(out, experiment) is not None:
            on_event(f"{experiment}: measured already ({measured_path(out, experiment)})")
            continue
        on_event(f"{experiment}: running in {Path(out) / experiment}")
        tic = time.perf_counter()
        measured = experiments[experiment](Path(out) / experiment, device, workers)
        seconds = time.perf_counter() - tic
        write_json(measured_path(out, experiment), {
            "experiment": experiment, "device": device, "workers": workers, "seconds": seconds,
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"), "measured": strict(measured)})
        on_event(f"{experiment}: done in {seconds / 60:.1f} min")
        ran.append(experiment)
    return ran
