"""The best model of a study: every trial keeps the checkpoint of its best evaluation, records it and its work,
and the report's samples and ``ganscape study export`` load that checkpoint."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from ganscape.cli import main
from ganscape.hub import WEIGHTS
from ganscape.objectives import losses
from ganscape.runs import RunDir
from ganscape.store.checkpoint import load_checkpoint
from ganscape.store.rundir import read_metrics
from ganscape.study import engine
from ganscape.study.engine import best_step, create, keep_best_value, load_studies, work_done
from ganscape.study.report import best_samples, gather, groups_of
from ganscape.study.spec import parse_spec

STEPS = 60
KEEPING = {
    "name": "keeping", "base": "ring8_grid", "groups": {"loss": ["ns", "hinge"]},
    "space": {"lr": {"log_uniform": [1e-3, 1e-2], "keys": ["g_opt.lr", "d_opt.lr"]}},
    "trials": 1, "seeds": 1, "sampler": {"name": "sobol", "seed": 0}, "objective": "js_to_target",
    # checkpoint.every past the end: only the evaluations' checkpoints and the last one are written
    "overrides": [f"train.steps={STEPS}", "eval.every=10", "eval.samples=300", "log.every=10", "log.samples_every=0",
                  "checkpoint.every=1000", "checkpoint.keep=1", "g.width=32", "d.width=32"],
}


def _log_rows(run) -> list[dict]:
    """The run's metrics.jsonl, parsed line by line here (not through ganscape's reader)."""
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]


def _lowest_evaluation(run) -> int:
    """The step of the lowest eval/js_to_target in the run's log, the earliest of equal ones."""
    evaluations = [(row["eval/js_to_target"], row["step"]) for row in _log_rows(run) if "eval/js_to_target" in row]
    return min(evaluations)[1]


def _kept_steps(run) -> list[int]:
    return [step for step, _ in RunDir(run).list_checkpoints()]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A study of two groups, one trial each, trained in this process: (folder, {loss: its trial})."""
    folder = create(parse_spec(KEEPING, "spec"), tmp_path_factory.mktemp("study") / "study")
    assert engine.worker(folder, log=lambda message: None) == 2
    return folder, {group["loss"]: study.get_trials()[0] for group, study in load_studies(folder)[1]}


def test_every_trial_keeps_the_checkpoint_of_its_best_evaluation(trained):
    """The independent value: the step of the lowest eval/js_to_target in each run's metrics.jsonl. Besides the
    newest checkpoint (checkpoint.keep=1) the run keeps exactly that one, and the trial records it."""
    folder, trials = trained
    best_not_last = 0
    for trial in trials.values():
        run = folder.runs / trial.user_attrs["run_dirs"][0]
        lowest = _lowest_evaluation(run)
        assert _kept_steps(run) == sorted({lowest, STEPS})
        assert trial.user_attrs["best_steps"] == [lowest]
        best_not_last += lowest != STEPS
    assert best_not_last, "every run's best evaluation was its last: the test would not tell the best from the newest"


def test_only_an_objective_keep_best_ranks_sets_it():
    """keep_best ranks eval/<value> in metrics.BETTER's direction, by the best value: nothing else sets it."""
    def value(objective) -> str:
        return keep_best_value(parse_spec(KEEPING | {"objective": objective}, "spec"))

    assert value("js_to_target") == "js_to_target"
    assert value({"metric": "js_to_target", "reduce": "last"}) == ""
    assert value({"metric": "js_to_target", "direction": "maximize"}) == ""
    assert value({"metric": "eval_raw/js_to_target", "direction": "minimize"}) == ""


def test_the_report_samples_and_the_export_load_the_best_checkpoint(trained, tmp_path, capsys):
    """The exported weights are the G_ema tensors of the checkpoint at the lowest eval/js_to_target of the group's
    run (read from its log), and differ from those of the newest checkpoint where that is another step; the
    report's samples name that step."""
    folder, trials = trained
    spec, rows, _ = gather(folder)
    captions = best_samples(folder, spec, groups_of(rows, spec))
    runs = {loss: folder.runs / trial.user_attrs["run_dirs"][0] for loss, trial in trials.items()}
    assert set(captions) == {f"loss={loss}: trial {trial.number}, step {_lowest_evaluation(runs[loss])}"
                             for loss, trial in trials.items()}
    for loss, run in runs.items():
        lowest = _lowest_evaluation(run)
        out = tmp_path / loss
        assert main(["study", "export", str(folder.path), "--group", f"loss={loss}", "--out", str(out)]) == 0
        assert f"at step {lowest}, its best evaluation, to {out}" in capsys.readouterr().out
        exported = load_file(out / WEIGHTS)
        kept = load_checkpoint(RunDir(run).checkpoint_file(lowest))["G_ema"]
        assert exported.keys() == kept.keys()
        assert all(torch.equal(exported[name], kept[name]) for name in kept)
        if lowest != STEPS:
            newest = load_checkpoint(RunDir(run).checkpoint_file(STEPS))["G_ema"]
            assert not all(torch.equal(exported[name], newest[name]) for name in newest)


def _write_log(path, rows: list[dict]) -> RunDir:
    path.mkdir()
    (path / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return RunDir(path)


def test_work_and_the_best_step_are_read_from_a_hand_written_log(tmp_path):
    """Work: the counts of the last row that has work/g_updates (an evaluation row after it counts nothing;
    GFLOPs absent there: None). Best step: the lowest finite eval/js_to_target, the earlier of two equal ones."""
    run = _write_log(tmp_path / "run", [
        {"step": 10, "d_loss": 0.7, "work/g_updates": 10, "work/d_updates": 50, "work/gflops": 1.5},
        {"step": 10, "eval/js_to_target": 0.5},
        {"step": 20, "d_loss": 0.6, "work/g_updates": 20, "work/d_updates": 100},
        {"step": 20, "eval/js_to_target": 0.2},
        {"step": 30, "eval/js_to_target": 0.2},
        {"step": 40, "eval/js_to_target": math.nan},
    ])
    rows = read_metrics(run)
    assert work_done(rows) == {"g_updates": 20, "d_updates": 100, "gflops": None}
    assert work_done(rows[:2]) == {"g_updates": 10, "d_updates": 50, "gflops": 1.5}
    assert work_done([row for row in rows if "d_loss" not in row]) is None
    spec = parse_spec(KEEPING, "spec")
    assert best_step(rows, spec) == 20
    assert best_step(rows, parse_spec(KEEPING | {"objective": {"metric": "js_to_target", "direction": "maximize"}},
                                      "spec")) == 10
    assert best_step(rows, parse_spec(KEEPING | {"objective": {"metric": "js_to_target", "reduce": "last"}},
                                      "spec")) is None
    assert best_step(rows[-1:], spec) is None


def test_a_diverged_trial_records_the_work_and_best_step_its_log_holds(tmp_path, monkeypatch):
    """D's loss turns NaN from step 26 on (one D step per G step): the run stops at the next log step, 30, and
    logs the work done until then (the run's last record): 30 G and 30 D updates, though its last regular
    record is at step 20; its best evaluation is the lower of the evaluations at steps 10 and 20, read from
    the log here."""
    real = losses.LOSSES["ns"]
    calls = {"n": 0}

    def d_loss_that_blows_up(real_logits, fake_logits):
        calls["n"] += 1
        value = real.d_loss(real_logits, fake_logits)
        return value * float("nan") if calls["n"] > 25 else value

    monkeypatch.setitem(losses.LOSSES, "ns", losses.Loss("ns", d_loss_that_blows_up, real.g_loss, ""))
    folder = create(parse_spec(KEEPING | {"groups": {"loss": ["ns"]}}, "spec"), tmp_path / "study")
    engine.worker(folder, log=lambda message: None)
    [(_, study)] = load_studies(folder)[1]
    [trial] = study.get_trials()
    run = folder.runs / trial.user_attrs["run_dirs"][0]
    rows = _log_rows(run)
    assert trial.user_attrs["diverged"] and max(row["step"] for row in rows if "d_loss" in row) == 20
    assert set(rows[-1]) == {"step", "work/g_updates", "work/d_updates", "work/gflops"} and rows[-1]["step"] == 30
    assert trial.user_attrs["work"] == [{"g_updates": 30, "d_updates": 30, "gflops": rows[-1]["work/gflops"]}]
    last_regular = [row for row in rows if "d_loss" in row][-1]  # step 20: 20 steps of the same FLOPs each
    assert rows[-1]["work/gflops"] == pytest.approx(last_regular["work/gflops"] * 30 / 20)
    assert trial.user_attrs["best_steps"] == [_lowest_evaluation(run)]
