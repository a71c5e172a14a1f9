"""Campaigns: their specs, the study folders they make, their status and their one-page report.

A tiny campaign (two studies on the embedded 2-D data, a few dozen steps per run) is created and its
trials run in this process by one ``study.engine.worker`` over both study folders, as a campaign's
workers do; status and report are then checked against the trial values read back from Optuna.
"""

from __future__ import annotations

import math
import re

import pytest
import yaml

from ganscape.campaign.engine import CampaignDir, create, status
from ganscape.campaign.report import write_report
from ganscape.campaign.spec import CAMPAIGNS, load_campaign, parse_campaign
from ganscape.cli import main
from ganscape.errors import ConfigError
from ganscape.study.engine import StudyDir, load_studies, worker

STUDY = {  # a study on ring8: 2 groups, a learning rate searched
    "base": "ring8_grid",
    "overrides": ["train.steps=40", "eval.every=40", "eval.samples=200", "log.every=20", "log.samples_every=0",
                  "checkpoint.every=40", "checkpoint.keep=1"],
    "groups": {"loss": ["ns", "hinge"]},
    "space": {"lr": {"log_uniform": [1e-4, 1e-2], "keys": ["g_opt.lr", "d_opt.lr"]}},
    "trials": 7,
    "sampler": {"name": "sobol", "seed": 0},
    "objective": {"metric": "js_to_target", "direction": "minimize"},
}
TINY = {
    "name": "tiny",
    "description": "two studies on 2-D data",
    "trials": 2,
    "studies": [
        {"data": "ring8", "arch": "mlp", "study": STUDY},
        {"data": "grid25", "arch": "mlp", "study": STUDY, "groups": {"loss": ["ns"]},
         "overrides": ["data.name=grid25"]},
    ],
}


def error_of(data: dict) -> str:
    with pytest.raises(ConfigError) as err:
        parse_campaign(data, "campaign.yaml", "c")
    return str(err.value)


def test_spec_errors_name_the_valid_choices():
    assert "unknown campaign key 'studys'. Did you mean 'studies'? Valid: name, description, trials, seeds, " \
           "studies." in error_of({"studys": []})
    assert "studies: give a list of cells" in error_of({"studies": []})
    cell = {"data": "ring8", "arch": "mlp", "study": STUDY}
    assert "studies[0]: unknown cell key 'spaces'. Did you mean 'space'?" in error_of(
        {"studies": [cell | {"spaces": "wide"}]})
    assert "studies[0]: arch: give a label for the report" in error_of({"studies": [{"data": "x", "study": STUDY}]})
    assert "studies[1]: study is a built-in study name, a spec file or a study mapping" in error_of(
        {"studies": [cell, cell | {"study": 3}]})
    assert "study spec 'ring8_landscap' not found" in error_of({"studies": [cell | {"study": "ring8_landscap"}]})
    assert "Did you mean 'ring8_landscape'?" in error_of({"studies": [cell | {"study": "ring8_landscap"}]})
    assert "two cells are named 'ring8-mlp'; give each its own name" in error_of({"studies": [cell, cell]})
    # a cell's study is checked as a study: its error says which cell
    assert "studies[0]" in error_of({"studies": [cell | {"groups": {"loss": ["ns"]}, "space": "widest"}]})
    assert "unknown built-in space 'widest'" in error_of({"studies": [cell | {"space": "widest"}]})


def test_a_cell_adjusts_its_study_and_the_campaign_sets_the_budget():
    spec = parse_campaign(TINY | {"seeds": 3}, "campaign.yaml", "tiny")
    ring8, grid25 = spec.cells
    assert (ring8.name, grid25.name) == ("ring8-mlp", "grid25-mlp")
    assert (ring8.spec.name, grid25.spec.name) == ("tiny.ring8-mlp", "tiny.grid25-mlp")  # unique in a database
    assert ring8.spec.trials == grid25.spec.trials == 2 and ring8.spec.seeds == 3  # the study said 7 and 1
    assert grid25.spec.overrides == (*STUDY["overrides"], "data.name=grid25")  # appended to the study's
    assert grid25.spec.groups == {"loss": ("ns",)} and ring8.spec.groups == {"loss": ("ns", "hinge")}
    assert list(spec.sections()) == [("ring8", "mlp"), ("grid25", "mlp")]
    own = parse_campaign(TINY | {"studies": [TINY["studies"][0] | {"trials": 5}]}, "campaign.yaml", "tiny")
    assert own.cells[0].spec.trials == 5  # a cell's own budget wins over the campaign's


def test_every_built_in_campaign_loads():
    names = sorted(p.stem for p in CAMPAIGNS.glob("*.yaml"))
    assert names == ["landscape", "landscape_cpu", "xiang_li"]
    landscape = load_campaign("landscape")
    assert [(c.data, c.arch) for c in landscape.cells] == [
        ("cifar10", "sndcgan"), ("cifar10", "resnet_cifar"), ("celebahq128", "sndcgan"), ("celebahq128", "resnet19"),
        ("lsun_bedroom128", "sndcgan"), ("lsun_bedroom128", "resnet19")]
    for cell in landscape.cells:  # the paper's grid: 3 losses x 3 penalties x the D norms the architecture allows
        norms = ("none", "spectral") if cell.arch == "sndcgan" else ("none", "batch", "layer", "spectral")
        assert cell.spec.groups == {"loss": ("ns", "wgan", "ls"), "penalty": ("none", "wgan_gp", "dragan"),
                                    "d.norm": norms}
        assert {"lr", "beta1", "beta2", "train.n_disc"} <= {p.name for p in cell.spec.params}
    cpu = load_campaign("landscape_cpu")
    assert [(c.data, c.arch, c.spec.seeds) for c in cpu.cells] == [("ring8", "mlp", 1),
                                                                    ("stacked_digits", "sndcgan", 1)]
    for cell in cpu.cells:  # budgets in D updates, the paper's unit
        group = cell.spec.group_names()[0]
        cfg = cell.spec.trial_config(group, {p.name: next(iter(p.args)) for p in cell.spec.params_for(group)}, 0)
        assert cfg.train.unit == "d" and cfg.train.steps == {"ring8": 3000, "stacked_digits": 300}[cell.data]
    with pytest.raises(ConfigError, match="Did you mean 'landscape_cpu'"):
        load_campaign("landscape_cpus")


def test_create_makes_a_study_folder_per_cell_with_the_campaigns_budget(tmp_path):
    folder = create(parse_campaign(TINY, "campaign.yaml", "tiny"), tmp_path / "c")
    about, cells = folder.read()
    assert (about["name"], about["storage"]) == ("tiny", "journal")
    assert [(c.name, c.data, c.arch) for c in cells] == [("ring8-mlp", "ring8", "mlp"), ("grid25-mlp", "grid25", "mlp")]
    waiting = {}
    for cell in cells:
        spec, studies = load_studies(cell.study)
        assert cell.study.path == tmp_path / "c" / "studies" / cell.name and spec.trials == 2
        waiting[cell.name] = {study.study_name: len(study.get_trials()) for _, study in studies}
    assert waiting == {"ring8-mlp": {"tiny.ring8-mlp:loss=ns": 2, "tiny.ring8-mlp:loss=hinge": 2},
                       "grid25-mlp": {"tiny.grid25-mlp:loss=ns": 2}}
    with pytest.raises(ConfigError, match="already holds a campaign; run it with 'ganscape campaign run"):
        create(parse_campaign(TINY, "campaign.yaml", "tiny"), tmp_path / "c")


def test_a_campaign_is_made_whole_or_not_at_all(tmp_path):
    broken = TINY | {"studies": [TINY["studies"][0], TINY["studies"][1] | {"overrides": ["train.batch_size=0"]}]}
    with pytest.raises(ConfigError, match="campaign tiny, study grid25-mlp: group loss=ns: "):
        create(parse_campaign(broken, "campaign.yaml", "tiny"), tmp_path / "c")
    assert not (tmp_path / "c").exists()  # the first study, made before, went with the folder
    assert main(["campaign", "status", str(tmp_path / "c")]) == 2


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The tiny campaign with every trial run by one worker over both study folders."""
    folder = create(parse_campaign(TINY, "campaign.yaml", "tiny"), tmp_path_factory.mktemp("campaign") / "c")
    _, cells = folder.read()
    assert worker([cell.study for cell in cells], log=lambda message: None) == 6
    return folder


def best_values(folder: CampaignDir) -> dict[str, float]:
    """Each cell's lowest objective over its completed trials, read from Optuna directly."""
    best = {}
    for cell in folder.read()[1]:
        _, studies = load_studies(StudyDir(cell.study.path))
        best[cell.name] = min(t.value for _, s in studies for t in s.get_trials() if t.state.name == "COMPLETE")
    return best


def test_status_gives_each_cell_its_counts_and_best(finished, capsys):
    best = best_values(finished)
    assert all(math.isfinite(v) for v in best.values())
    statuses = {s.cell.name: s for s in status(finished)}
    assert statuses["ring8-mlp"].counts["COMPLETE"] == 4 and statuses["grid25-mlp"].counts["COMPLETE"] == 2
    assert {name: s.best["value"] for name, s in statuses.items()} == best
    assert main(["campaign", "status", str(finished.path)]) == 0
    out = capsys.readouterr().out
    assert f"ring8-mlp (ring8 x mlp): 4 complete; best eval/js_to_target {best['ring8-mlp']:.4g}" in out


def test_the_report_has_a_section_per_cell_and_the_best_of_each(finished):
    best = best_values(finished)
    page = write_report(finished).read_text()
    assert re.findall(r"<h2>(.*?)</h2>", page) == ["Best trial per study", "ring8 x mlp", "grid25 x mlp"]
    assert re.findall(r"<h3>(.*?)</h3>", page) == ["ring8-mlp", "grid25-mlp"]
    assert "data-images-loaded" in page and page.count("<img ") >= 2 * 4  # each study's plots, embedded
    summary = (finished.path / "report" / "summary.md").read_text()
    rows = [line for line in summary.splitlines() if line.startswith("| ring8 |") or line.startswith("| grid25 |")]
    assert len(rows) == 2
    for row, name in zip(rows, ("ring8-mlp", "grid25-mlp")):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[2] == name and cells[3] == "eval/js_to_target" and cells[4] == f"{best[name]:.4g}"
        assert cells[5].startswith("loss=") and cells[7].startswith("lr=")
    for name in ("ring8-mlp", "grid25-mlp"):
        pngs = sorted(p.name for p in (finished.path / "report" / name).glob("*.png"))
        assert "budget_trials.png" in pngs and len(pngs) >= 4, pngs
    assert yaml.safe_load((finished.path / "campaign.yaml").read_text())["spec"]["name"] == "tiny"
