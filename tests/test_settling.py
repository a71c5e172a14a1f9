"""The settling section of a study's report (study/settling.py) and the Mescheder regularizer studies' specs."""

import json
import math

import numpy as np
import pytest

from ganscape.study.settling import group_row, quarter_means, settles, settling_section
from ganscape.study.spec import load_spec

MOVE, GRAD = "convergence/g_move", "convergence/d_grad_real"


def quarters(move, grad):
    return {MOVE: np.array(move, dtype=float), GRAD: np.array(grad, dtype=float)}


def log_rows(move, grad, every=10):
    """A run's metrics.jsonl rows: eval rows between them (no measures) are skipped by the section."""
    rows = [{"step": every * (i + 1), MOVE: m, GRAD: g, "d_loss": 1.0} for i, (m, g) in enumerate(zip(move, grad))]
    return rows + [{"step": every, "eval/js_to_target": 0.3}]


def test_quarter_means_by_hand():
    """1..8 in four parts: 1.5, 3.5, 5.5, 7.5; a missing value (NaN) is left out of its part's mean; 10 values
    split 3, 3, 2, 2 (numpy.array_split)."""
    assert quarter_means(list(range(1, 9))).tolist() == [1.5, 3.5, 5.5, 7.5]
    assert quarter_means([math.nan, 2, 3, 4, 5, 6, 7, 8]).tolist() == [2.0, 3.5, 5.5, 7.5]
    assert quarter_means(list(range(10))).tolist() == [1.0, 4.0, 6.5, 8.5]


def test_a_settling_run_and_each_rule_that_fails_one():
    """Settles: d_grad_real 4, 2, 1.5, 1 (1 <= 0.5 x 4 and 1 <= 1.5), g_move flat. Each rule broken alone:
    1.2 > 0.5 x 2 (not come down), 1.8 > 1.5 (rising again, though under half of 4), g_move 1.2 > 1.1 x 1."""
    assert settles(quarters([1, 1, 1, 1], [4, 2, 1.5, 1]))
    assert not settles(quarters([1, 1, 1, 1], [2, 2, 2, 1.2]))
    assert not settles(quarters([1, 1, 1, 1], [4, 1, 1.5, 1.8]))
    assert not settles(quarters([1, 1, 1, 1.2], [4, 2, 1.5, 1]))
    assert settles(quarters([1, 1, 1, 1.05], [4, 2, 1.5, 1]))  # g_move may grow by less than 10%


def test_group_row_numbers_by_hand():
    """Two runs: d_grad_real quarters (4, 2, 1.5, 1) and (2, 2, 2, 3), mean (3, 2, 1.75, 2): last 2, trend
    2 / 1.75, vs peak 2 / 3; the group does not settle (2 > 1.75), one run of two does. g_move quarters
    (1, 1, 1, 1) and (3, 3, 2, 3): mean last 2, trend 2 / 1.5. Quality 0.1 and 0.3: mean 0.2, sample std
    sqrt(0.02)."""
    runs = [quarters([1, 1, 1, 1], [4, 2, 1.5, 1]), quarters([3, 3, 2, 3], [2, 2, 2, 3])]
    row = group_row("none", runs, [0.1, 0.3], "js_to_target")
    assert row["runs"] == 2 and row["runs_settling"] == "1/2" and row["verdict"] == "does not settle"
    assert math.isclose(row["d_grad_real_last"], 2.0) and math.isclose(row["d_grad_real_trend"], 2 / 1.75)
    assert math.isclose(row["d_grad_real_vs_peak"], 2 / 3)
    assert math.isclose(row["g_move_last"], 2.0) and math.isclose(row["g_move_trend"], 2 / 1.5)
    assert math.isclose(row["js_to_target_mean"], 0.2) and math.isclose(row["js_to_target_std"], math.sqrt(0.02))


def write_run(folder, name, rows):
    (folder / name).mkdir(parents=True)
    (folder / name / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def trial(*run_dirs, values, state="COMPLETE"):
    return {"state": state, "run_dirs": list(run_dirs), "seed_values": values}


def test_settling_section_reads_the_runs_of_each_group(tmp_path):
    """Two groups of one run each, eight logged rows: r1's d_grad_real falls 8 -> 1 (quarters 7.5, 5.5, 3.5,
    1.5: settles), none's rises 1 -> 8 (does not); a pruned trial's run is left out; the figure has a line per
    group in each of its two panels."""
    write_run(tmp_path, "r1-0", log_rows([1] * 8, list(range(8, 0, -1))))
    write_run(tmp_path, "none-0", log_rows([1] * 8, list(range(1, 9))))
    write_run(tmp_path, "none-pruned", log_rows([1] * 8, [1] * 8))
    groups = {"regularizer=r1": [trial("r1-0", values=[0.1])],
              "regularizer=none": [trial("none-0", values=[0.5]), trial("none-pruned", values=[], state="PRUNED")]}
    section = settling_section(tmp_path, groups, "js_to_target")
    rows = {r["group"]: r for r in section.rows}
    assert rows["regularizer=r1"]["verdict"] == "settles" and rows["regularizer=none"]["verdict"] == "does not settle"
    assert math.isclose(rows["regularizer=r1"]["d_grad_real_last"], 1.5) and rows["regularizer=none"]["runs"] == 1
    assert all(len(ax.get_lines()) == 2 for ax in section.figure.axes)


def test_no_section_without_convergence_columns(tmp_path):
    """Runs that did not log log.convergence give no section."""
    write_run(tmp_path, "a", [{"step": 10, "d_loss": 1.0}] * 8)
    assert settling_section(tmp_path, {"g": [trial("a", values=[0.1])]}, "js_to_target") is None


EXPECTED = {  # regularizer -> (loss, penalties as name: weight, instance noise std)
    "none": ("ns", {}, 0.0),
    "wgan_gp": ("wgan", {"wgan_gp": 10.0}, 0.0),
    "instance_noise": ("ns", {}, 0.1),
    "r1": ("ns", {"r1": None}, 0.0),
    "r2": ("ns", {"r2": None}, 0.0),
}


@pytest.mark.parametrize("name, gamma, seeds, metric", [
    ("mescheder_regularizers_ring8", 1.0, 3, "eval/js_to_target"),
    ("mescheder_regularizers_digits", 20.0, 2, "eval/modes_covered"),
    ("mescheder_regularizers_cifar10", 20.0, 3, "eval/fid")])
def test_mescheder_specs_set_each_regularizer(name, gamma, seeds, metric):
    """Each group's config is the intended regularizer: the loss, the penalty and its weight (R1/R2's gamma: 1 on
    the ring, GAN_stability's reg_param 10 = weight 20 on digits and CIFAR-10), the instance noise; one D update per G update
    (WGAN-GP with few D steps), the convergence measures logged, an EMA evaluated (GAN_stability's
    protocol), no search, the seeds."""
    spec = load_spec(name)
    assert spec.trials == 1 and spec.seeds == seeds and not spec.params and spec.objective.metric == metric
    assert [g["regularizer"] for g in spec.group_names()] == list(EXPECTED)
    for group in spec.group_names():
        loss, penalties, noise = EXPECTED[group["regularizer"]]
        cfg = spec.trial_config(group, {}, seed=0)
        used = {term.name: term.weight for term in cfg.penalty.use}
        assert cfg.loss == loss and cfg.augment.noise == noise
        assert used == {k: gamma if w is None else w for k, w in penalties.items()}
        assert cfg.train.n_disc == 1 and cfg.log.convergence and cfg.train.ema > 0


def test_a_study_report_gets_the_section_when_its_runs_logged_convergence(tmp_path, monkeypatch):
    """A finished two-group study whose runs' logs hold the measures: study_parts has the settling table (r1
    settles, none does not), its figure (settling.png) and the rule; summary.md shows the table."""
    from ganscape.study import report
    from ganscape.study.engine import create, load_studies, suggest
    from ganscape.study.leases import claim, finish
    from ganscape.study.spec import parse_spec

    monkeypatch.setattr(report, "best_samples", lambda *args: {})  # the made-up runs have no checkpoints
    spec = parse_spec({"name": "mini", "base": "ring8_grid", "groups": {"penalty": ["none", "r1:1"]},
                       "objective": "js_to_target"}, "spec")
    folder = create(spec, tmp_path / "study")
    for (group, study), grad in zip(load_studies(folder)[1], (range(1, 9), range(8, 0, -1))):
        name = f"{group['penalty']}-0"
        write_run(folder.runs, name, log_rows([1] * 8, list(grad)))
        trial = claim(study)
        suggest(trial, spec)
        trial.set_user_attr("run_dirs", [name])
        trial.set_user_attr("seed_values", [0.2])
        finish(study, trial, 0.2)
    parts = report.study_parts(folder)
    verdicts = {r["group"]: r["verdict"] for r in parts.tables["Does the generator settle?"]}
    assert verdicts == {"penalty=none": "does not settle", "penalty=r1:1": "settles"}
    assert parts.files["Does the generator settle?"] == "settling.png"
    assert any(note.startswith("Settling: measured over the last 25%") for note in parts.notes)
    assert "## Does the generator settle?" in report.markdown(parts.spec, parts.table, parts.notes, parts.tables)
