"""A campaign: several studies (data set x architecture x search space) run by the same workers, one report.

A campaign spec is YAML, checked like a study spec (unknown keys are refused with the valid ones)::

    name: landscape_cpu
    description: the GAN Landscape in miniature on the embedded data
    trials: 12                      # optional: trials per group of every study (a cell may set its own)
    seeds: 1                        # optional: seeds per trial of every study (likewise)
    studies:                        # the cells: one study each
      - data: ring8                 # labels for the report: one section per data set x architecture
        arch: mlp
        study: ring8_landscape      # a built-in study, a spec file (relative to this file), or a mapping
        overrides: [train.steps=2000]   # appended to the study's own overrides
        space: narrow               # any other study key replaces the study's
      - {data: cifar10, arch: sndcgan, study: landscape_cifar10_sndcgan_wide, name: cifar-wide}

A cell's study nests like a study file inside the campaign's; one whose space names config keys
(``{lr: {log_uniform: [...], keys: [...]}}``) nests too deeply for a config file: give it a file of its
own. Every cell's study is read by ``ganscape.study.spec.parse_spec``; its Optuna studies are named
``<campaign>.<cell>`` so that the cells of several campaigns can share one database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ganscape.config import read_yaml
from ganscape.errors import ConfigError, close_matches
from ganscape.study.spec import SPEC_KEYS, StudySpec, find_spec, find_yaml, parse_spec

CAMPAIGN_KEYS = ("name", "description", "trials", "seeds", "studies")
CELL_KEYS = ("data", "arch", "study", "name")
# A cell may set any study key but the name: the campaign names its studies.
CELL_STUDY_KEYS = tuple(key for key in SPEC_KEYS if key != "name")


@dataclass(frozen=True)
class Cell:
    """One study of a campaign: its folder name, the labels of its report section, its spec."""

    name: str
    data: str
    arch: str
    spec: StudySpec


@dataclass(frozen=True)
class CampaignSpec:
    name: str
    description: str
    cells: tuple[Cell, ...]
    source: dict = field(default_factory=dict)  # the spec as written, to store in the campaign folder

    def sections(self) -> dict[tuple[str, str], list[Cell]]:
        """The cells per (data set, architecture), in the spec's order: one report section each."""
        sections: dict[tuple[str, str], list[Cell]] = {}
        for cell in self.cells:
            sections.setdefault((cell.data, cell.arch), []).append(cell)
        return sections


def _error(where: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}")


def _unknown(keys, valid: tuple[str, ...], what: str, where: str) -> None:
    unknown = [str(k) for k in keys if k not in valid]
    if unknown:
        hint = close_matches(unknown[0], valid)
        raise _error(where, f"unknown {what} key {unknown[0]!r}." + (f" Did you mean {hint[0]!r}?" if hint else "")
                            + f" Valid: {', '.join(valid)}.")


def folder_name(text: str) -> str:
    """A cell's folder name: unsafe characters replaced."""
    return "".join(c if c.isalnum() or c in ".-_" else "_" for c in text)


def _base_study(study: Any, here: Path | None, where: str) -> tuple[dict, str]:
    """(the study mapping, its file or "") of a cell's ``study``: a mapping, or a built-in name or spec file
    (a relative path is looked for beside the campaign spec first)."""
    if isinstance(study, Mapping):
        return dict(study), ""
    if not isinstance(study, str) or not study:
        raise _error(where, f"study is a built-in study name, a spec file or a study mapping, not {study!r}.")
    beside = here / study if here is not None else None
    path = beside if beside is not None and beside.is_file() else find_spec(study)
    return dict(read_yaml(path)), str(path)


def _cell(entry: Any, index: int, campaign: Mapping, here: Path | None, where: str) -> Cell:
    where = f"{where}, studies[{index}]"
    if not isinstance(entry, Mapping) or "study" not in entry:
        raise _error(where, "a cell is a mapping {data: LABEL, arch: LABEL, study: SPEC} (plus study keys such as "
                            "space, sampler or overrides).")
    _unknown(entry, CELL_KEYS + CELL_STUDY_KEYS, "cell", where)
    for label in ("data", "arch"):
        if not isinstance(entry.get(label), str) or not entry[label]:
            raise _error(where, f"{label}: give a label for the report (e.g. data: cifar10, arch: sndcgan).")
    study, source = _base_study(entry["study"], here, where)
    for key in CELL_STUDY_KEYS:
        if key in entry:  # a cell's overrides come after the study's; its other keys replace the study's
            study[key] = _listed(study.get(key)) + _listed(entry[key]) if key == "overrides" else entry[key]
    for key in ("trials", "seeds"):  # the campaign's budget replaces the study's, unless the cell sets its own
        if key in campaign and key not in entry:
            study[key] = campaign[key]
    name = folder_name(str(entry.get("name") or f"{entry['data']}-{entry['arch']}"))
    study["name"] = f"{campaign['name']}.{name}"
    spec = parse_spec(study, f"{where} ({source})" if source else where, study["name"])
    return Cell(name, str(entry["data"]), str(entry["arch"]), spec)


def _listed(value: Any) -> list:
    return [value] if isinstance(value, str) else list(value or [])


def parse_campaign(data: Any, where: str, name: str = "campaign", here: Path | None = None) -> CampaignSpec:
    """A CampaignSpec from plain data (a YAML file's; ``here`` is its folder, for relative study files)."""
    if not isinstance(data, Mapping):
        raise _error(where, "a campaign spec is a mapping of " + ", ".join(CAMPAIGN_KEYS) + ".")
    _unknown(data, CAMPAIGN_KEYS, "campaign", where)
    data = {"name": name} | dict(data)
    if not isinstance(data["name"], str) or folder_name(data["name"]) != data["name"]:
        raise _error(where, f"name {data['name']!r}: use letters, digits, '.', '-' and '_' only.")
    cells = data.get("studies")
    if not isinstance(cells, list) or not cells:
        raise _error(where, "studies: give a list of cells, each {data: LABEL, arch: LABEL, study: SPEC}.")
    parsed = tuple(_cell(entry, i, data, here, where) for i, entry in enumerate(cells))
    names = [cell.name for cell in parsed]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise _error(where, f"two cells are named {twice[0]!r}; give each its own name: (e.g. name: "
                            f"{twice[0]}-wide).")
    return CampaignSpec(data["name"], str(data.get("description", "")), parsed, dict(data))


CAMPAIGNS = Path(__file__).resolve().parents[1] / "campaigns"  # the built-in campaigns, installed with ganscape


def find_campaign(name: str | Path) -> Path:
    return find_yaml(name, CAMPAIGNS, "campaign spec")


def load_campaign(name: str | Path) -> CampaignSpec:
    path = find_campaign(name)
    return parse_campaign(read_yaml(path), str(path), path.stem, path.parent)
