"""A campaign folder: its studies made, run by one set of workers, and followed.

    CAMPAIGN_DIR/
      campaign.yaml        the cells (name, data set, architecture), the spec as written, the storage URL
      studies/<cell>/      an ordinary study folder per cell (``ganscape study status`` works on each)
      logs/                the workers' logs (one worker claims trials of every study)
      report/              written by ``ganscape campaign report``

Every study is made by ``ganscape.study.engine.create`` with the campaign's storage: ``journal`` gives
each study its own journal file, a PostgreSQL URL holds them all (the studies' names start with the
campaign's, so several campaigns can share a database). ``run`` hands every study folder to
``ganscape.study.queue.supervise``: the same worker processes as a study's, claiming across the studies.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from ganscape.campaign.spec import CampaignSpec
from ganscape.errors import ConfigError
from ganscape.study.engine import StudyDir, create as create_study, storage_for, study_name
from ganscape.study.leases import _optuna
from ganscape.study.queue import SupervisedRun, supervise, trial_counts
from ganscape.study.report import best_of, gather, groups_of
from ganscape.study.spec import StudySpec


@dataclass(frozen=True)
class CellDir:
    """One cell of a campaign folder: its name, the labels of its report section, its study folder."""

    name: str
    data: str
    arch: str
    study: StudyDir


@dataclass
class CampaignDir:
    path: Path

    @property
    def spec_path(self) -> Path:
        return self.path / "campaign.yaml"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    def study_path(self, cell: str) -> Path:
        return self.path / "studies" / cell

    def read(self) -> tuple[dict, list[CellDir]]:
        """(the campaign's name, description and storage, its cells) of an existing campaign folder."""
        if not self.spec_path.is_file():
            raise ConfigError(f"{self.path} is not a campaign folder (no campaign.yaml); make one with 'ganscape "
                              "campaign create SPEC --out DIR'.")
        try:
            data = yaml.safe_load(self.spec_path.read_text())
            cells = [CellDir(c["name"], c["data"], c["arch"], StudyDir(self.study_path(c["name"])))
                     for c in data["cells"]]
            about = {key: str(data[key]) for key in ("name", "description", "storage")}
        except (yaml.YAMLError, OSError, KeyError, TypeError, UnicodeDecodeError) as err:
            raise ConfigError(f"{self.spec_path} cannot be read ({type(err).__name__}: {err}); it is written by "
                              "'ganscape campaign create'.") from None
        return about, cells


def create(spec: CampaignSpec, out: Path, storage: str = "journal") -> CampaignDir:
    """A new campaign folder with one study folder per cell, each with its trials queued. When a study cannot be
    made (a config one of its groups makes invalid, a name the database holds), the studies made before it are
    deleted again and a folder this call made is removed: a campaign is made whole or not at all."""
    folder = CampaignDir(Path(out))
    if folder.spec_path.exists():
        raise ConfigError(f"{out} already holds a campaign; run it with 'ganscape campaign run {out}'.")
    fresh = not folder.path.exists()
    made: list[StudyDir] = []
    try:
        for cell in spec.cells:
            try:
                made.append(create_study(cell.spec, folder.study_path(cell.name), storage))
            except ConfigError as err:
                raise ConfigError(f"campaign {spec.name}, study {cell.name}: {err}") from None
    except BaseException:
        _discard(made, storage)
        if fresh:
            shutil.rmtree(folder.path, ignore_errors=True)
        raise
    cells = [{"name": c.name, "data": c.data, "arch": c.arch} for c in spec.cells]
    folder.spec_path.write_text(yaml.safe_dump({"name": spec.name, "description": spec.description,
                                                "storage": storage, "cells": cells, "spec": spec.source},
                                               sort_keys=False))
    return folder


def _discard(studies: list[StudyDir], storage: str) -> None:
    """Delete the Optuna studies of these study folders from a shared database (a journal goes with its folder)."""
    if storage == "journal":
        return
    optuna = _optuna()
    for study in studies:
        spec, url = study.read()
        backend = storage_for(url, study.path)
        for group in spec.group_names():
            optuna.delete_study(study_name=study_name(spec, group), storage=backend)


def run(folder: CampaignDir, devices: list[str], threads: int, on_progress=None) -> SupervisedRun:
    """Run every study's trials on one worker process per device (see ``ganscape.study.queue.supervise``)."""
    _, cells = folder.read()
    return supervise([cell.study.path for cell in cells], devices, threads, folder.logs, on_progress)


@dataclass(frozen=True)
class CellStatus:
    """A cell's trials by state (Optuna's state names) and its best completed trial's row (None when none)."""

    cell: CellDir
    spec: StudySpec
    counts: dict[str, int]
    best: dict | None


def status(folder: CampaignDir) -> list[CellStatus]:
    """Every cell's trial counts and best trial, in the campaign's order."""
    _, cells = folder.read()
    statuses = []
    for cell in cells:
        spec, rows, studies = gather(cell.study)
        trials = [row for group in groups_of(rows, spec).values() for row in group]
        statuses.append(CellStatus(cell, spec, trial_counts(studies), best_of(trials, spec)))
    return statuses

