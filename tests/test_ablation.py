"""BigGAN's ablation as a study: the rows switch exactly what Table 1 switches, the spec's ``report_values`` and
``truncation_sweep``, the outcomes table, and the truncation sweep each finished run gets."""

from __future__ import annotations

import json
import math

import pytest
import yaml

import ganscape
from ganscape.config import flatten, load_config, to_dict
from ganscape.errors import ConfigError
from ganscape.study import engine
from ganscape.study.outcomes import amenability_count, best_and_last, outcome_rows
from ganscape.study.spec import load_spec, parse_spec

# Each row of Table 1 as the switches it adds to the row before, written out by hand from the paper (rows 1-8:
# batch 256 -> 512 -> 1024 -> 2048, width 64 -> 96, shared embedding, hierarchical z, orthogonal regularization).
PAPER_ROWS = [
    ("sagan_bs256", {}),
    ("bs512", {"train.accumulate": 2}),
    ("bs1024", {"train.accumulate": 4}),
    ("bs2048", {"train.accumulate": 8}),
    ("ch96", {"g.width": 96, "d.width": 96}),
    ("shared", {"g.settings.shared_dim": 128}),
    ("hier_z", {"g.settings.hierarchical": True}),
    ("ortho", {"penalty.use": [{"name": "ortho", "weight": 1e-4}]}),
]
# The CPU version: batch 8 -> 32, width 8 -> 12, a shared embedding of 16, then the same two switches.
DIGITS_ROWS = [
    ("sagan_bs8", {}),
    ("bs32", {"train.accumulate": 4}),
    ("ch12", {"g.width": 12, "d.width": 12}),
    ("shared", {"g.settings.shared_dim": 16}),
    ("hier_z", {"g.settings.hierarchical": True}),
    ("ortho", {"penalty.use": [{"name": "ortho", "weight": 1e-4}]}),
]
# What the first row (SA-GAN's settings) changes in the base preset, besides the study's overrides.
FIRST_ROW = {
    "biggan_ablation": {"train.accumulate": 1, "g.width": 64, "d.width": 64, "g.settings.shared_dim": 0,
                        "g.settings.hierarchical": False},
    "biggan_ablation_digits": {"g.settings.shared_dim": 0, "g.settings.hierarchical": False},
}


def _flat(spec, label: str) -> dict:
    return flatten(to_dict(spec.trial_config({"row": label}, {}, 0)))


def _changes(before: dict, after: dict) -> dict:
    return {key: after[key] for key in after if before.get(key) != after[key]}


@pytest.mark.parametrize("name, rows", [("biggan_ablation", PAPER_ROWS), ("biggan_ablation_digits", DIGITS_ROWS)])
def test_each_row_adds_exactly_its_switch_to_the_row_before(name, rows):
    """The configs the study builds, compared key by key with the row before: the only differences are the
    hand-written switches of Table 1 (any other key that changed, or a switch that did not, fails)."""
    spec = load_spec(name)
    assert [label for label, _ in rows] == list(spec.groups["row"])
    configs = [_flat(spec, label) for label, _ in rows]
    for (label, switch), before, after in zip(rows[1:], configs, configs[1:]):
        assert _changes(before, after) == switch, label


@pytest.mark.parametrize("name", ["biggan_ablation", "biggan_ablation_digits"])
def test_the_first_row_is_the_base_preset_with_sagans_settings(name):
    """Row 1 against the base preset with the study's overrides: only SA-GAN's settings differ (and the seed
    and run place the study sets), so every later row is the preset's BigGAN switched step by step."""
    spec = load_spec(name)
    base = flatten(to_dict(load_config(spec.base, list(spec.overrides), settings={"train.seed": 0})))
    assert _changes(base, _flat(spec, spec.group_names()[0]["row"])) == FIRST_ROW[name]


def test_the_ablations_watch_for_a_collapse_and_sweep_truncation():
    """Both specs stop at a collapse of G's first layer's top singular value, which the spectra they log feed,
    and sweep each finished run down to 0.25 (below amenability's strong threshold 0.5)."""
    for name in ("biggan_ablation", "biggan_ablation_digits"):
        spec = load_spec(name)
        cfg = spec.trial_config(spec.group_names()[0], {}, 0)
        assert cfg.collapse.signal == "spectra/G/first_s0" and cfg.collapse.stop and cfg.log.spectra_every > 0
        assert spec.truncation_sweep == (2.0, 1.0, 0.5, 0.25)
    assert load_spec("biggan_ablation").report_values == ("eval/fid", "eval/is_mean")


# ---------------------------------------------------------------- the spec's keys

BASE = {"base": "ring8_grid", "objective": "js_to_target"}


def test_report_values_are_log_keys_of_ranked_values():
    """Bare names get eval/, eval_raw/ stays, duplicates go; thresholds are sorted from the least truncated."""
    spec = parse_spec(BASE | {"report_values": ["fid", "eval_raw/kid_mean", "eval/fid"],
                              "truncation_sweep": [0.5, 2, 1]}, "spec")
    assert spec.report_values == ("eval/fid", "eval_raw/kid_mean")
    assert spec.truncation_sweep == (2.0, 1.0, 0.5)


@pytest.mark.parametrize("change, message", [
    ({"report_values": ["fdi"]}, "Did you mean 'fid'"),
    ({"report_values": ["spectra/fid"]}, "eval/NAME or eval_raw/NAME"),
    ({"report_values": {"fid": 1}}, "report_values is a list"),
    ({"truncation_sweep": [1, 0]}, "thresholds > 0"),
    ({"truncation_sweep": 0.5}, "thresholds > 0"),
    ({"truncation_sweep": [True]}, "thresholds > 0"),
])
def test_bad_report_values_and_thresholds_are_refused(change, message):
    with pytest.raises(ConfigError, match=message):
        parse_spec(BASE | change, "spec")


# ---------------------------------------------------------------- the outcomes table


def test_best_and_last_follow_the_values_direction():
    """FID is ranked lower-better, IS higher-better; a value the metrics do not rank has no best."""
    assert best_and_last([30.0, 12.0, 20.0], "eval/fid") == (12.0, 20.0)
    assert best_and_last([3.0, 9.0, 5.0], "eval/is_mean") == (9.0, 5.0)
    best, last = best_and_last([1.0, 2.0], "spectra/G/max_s0")
    assert math.isnan(best) and last == 2.0
    assert amenability_count([True, False, None]) == "1/3 (1 undetermined)" and amenability_count([]) == "0/0"


def _run(folder, name: str, rows: list[dict], signal: str) -> None:
    path = folder / name
    path.mkdir(parents=True)
    (path / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (path / "config.yaml").write_text(yaml.safe_dump({"collapse": {"signal": signal}}))


def test_outcome_rows_average_each_seeds_best_and_last_and_list_collapses(tmp_path):
    """Two seeds with hand-chosen logs: FID best 10 and 14 (mean 12), last 16 and 14 (mean 15); IS best 8 and 6
    (mean 7), last 4 and 6 (mean 5); the first seed collapsed at step 300, the second never did."""
    _run(tmp_path, "a-seed-0", [{"step": 100, "eval/fid": 20.0, "eval/is_mean": 8.0},
                                {"step": 200, "eval/fid": 10.0, "eval/is_mean": 5.0},
                                {"step": 300, "collapse/step": 300, "collapse/after": 9.0},
                                {"step": 300, "eval/fid": 16.0, "eval/is_mean": 4.0}], "spectra/G/first_s0")
    _run(tmp_path, "a-seed-1", [{"step": 100, "eval/fid": 14.0, "eval/is_mean": 6.0},
                                {"step": 200, "eval/fid": "nan"}], "spectra/G/first_s0")
    spec = parse_spec(BASE | {"report_values": ["fid", "is_mean"], "truncation_sweep": [1, 0.25]}, "spec")
    trial = {"trial": 3, "run_dirs": ["a-seed-0", "a-seed-1"], "amenable": [True, False]}
    [row] = outcome_rows(tmp_path, spec, {"loss=ns": trial})
    assert row == {"group": "loss=ns", "trial": 3, "seeds": 2, "fid best": 12.0, "fid last": 15.0,
                   "is_mean best": 7.0, "is_mean last": 5.0, "collapse at step": "300, none", "amenable": "1/2"}


def test_outcome_rows_leave_out_collapse_and_amenability_when_not_watched(tmp_path):
    """Runs without collapse.signal get no collapse column; a spec without truncation_sweep no amenable one; the
    objective is reported when the spec names no values."""
    _run(tmp_path, "b-seed-0", [{"step": 10, "eval/js_to_target": 0.5}, {"step": 20, "eval/js_to_target": 0.2}], "")
    [row] = outcome_rows(tmp_path, parse_spec(BASE, "spec"), {"g": {"trial": 0, "run_dirs": ["b-seed-0"]}})
    assert row == {"group": "g", "trial": 0, "seeds": 1, "js_to_target best": 0.2, "js_to_target last": 0.2}


# ---------------------------------------------------------------- each finished run's truncation sweep

TINY = ["train.steps=20", "eval.every=20", "eval.samples=300", "log.every=10", "log.samples_every=0",
        "checkpoint.every=20", "train.ema=0", "log.tensorboard=false"]


def test_a_finished_runs_sweep_is_written_once_and_read_back(tmp_path, monkeypatch):
    """The verdict returned is the one written to the run's eval/ (the sweep's own JSON); a second call at the
    same thresholds reads it back instead of sweeping again, other thresholds sweep anew."""
    from ganscape import runs
    from ganscape.store.rundir import truncation_sweep_path

    result = ganscape.train("ring8_grid", TINY + [f"run.root={tmp_path}", "run.name=r"], progress=False)
    spec = parse_spec(BASE | {"truncation_sweep": [1, 0.25]}, "spec")
    verdict = engine.swept_amenability(result.run, spec, "cpu")
    written = json.loads(truncation_sweep_path(result.run.path, 20).read_text())
    assert written["amenability"]["amenable"] is verdict and written["amenability"]["protocol"]["thresholds"] == [1, 0.25]
    assert [row["truncation"] for row in written["rows"]] == [None, 1.0, 0.25]

    def no_sweep(*args, **kwargs):
        raise AssertionError("swept again")

    monkeypatch.setattr(runs, "truncation_sweep", no_sweep)
    assert engine.swept_amenability(result.run, spec, "cpu") is verdict
    with pytest.raises(AssertionError, match="swept again"):
        engine.swept_amenability(result.run, parse_spec(BASE | {"truncation_sweep": [0.5]}, "spec"), "cpu")
