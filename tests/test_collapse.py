"""Collapse detection (training.collapse): the rule on synthetic records (hand-computed ratios), the checkpoint
kept from before a collapse, the checks of the signal, and short runs: an injected logged signal that jumps, a
scripted evaluation that worsens, and a branch whose learning rate is far too high."""

import pytest

from ganscape.cli.common import finish
from ganscape.config import load_config
from ganscape.errors import ConfigError, GanscapeWarning
from ganscape.runs import RunDir, branch
from ganscape.store.checkpoint import checkpoint_name, list_checkpoints
from ganscape.store.rundir import read_metrics
from ganscape.training import loop
from ganscape.training.collapse import Collapse, CollapseDetector, direction
from ganscape.training.loop import train

SIGMA = "spectra/D/max_s0"
pytestmark = pytest.mark.filterwarnings("ignore::ganscape.errors.GanscapeWarning")  # the collapse lines


class RowLog:
    """Stand-in for a MetricsLog: the rows written, in order."""

    def __init__(self):
        self.rows = []

    def write(self, step, values):
        self.rows.append({"step": step, **values})


def feed(detector, values, folder, every=10, signal=SIGMA):
    """Each value as the row of steps every, 2 * every, ...; returns the rows the detector wrote."""
    log = RowLog()
    for i, value in enumerate(values):
        detector.observe((i + 1) * every, {signal: value, "d_loss": 0.5}, folder, log)
    return log.rows


def checkpoints_at(folder, steps):
    """Empty files named as a run's checkpoints: the detector looks at names only."""
    folder.mkdir(exist_ok=True)
    for step in steps:
        (folder / checkpoint_name(step)).touch()
    return folder


@pytest.mark.parametrize("last, fires", [(2.9999, False), (3.0, False), (3.0001, True)])
def test_a_jump_just_above_the_factor_is_a_collapse_and_one_at_or_below_it_is_not(tmp_path, last, fires):
    """Records 1.0, 1.2, 1.1 then ``last``, window 3, factor 3: the reference is their lowest, 1.0 (step 10), so
    2.9999 and 3.0 (exactly 3 times it) are no collapse ("more than"), 3.0001 is one, at step 40."""
    detector = CollapseDetector(SIGMA, factor=3.0, window=3)
    rows = feed(detector, [1.0, 1.2, 1.1, last], tmp_path)
    assert (detector.found is not None) == fires
    if fires:
        assert rows == [{"step": 40, "collapse/step": 40, "collapse/before": 1.0, "collapse/before_step": 10,
                         "collapse/after": 3.0001}]  # no checkpoint in the folder: none kept
    else:
        assert rows == []


def test_a_signal_that_falls_does_not_collapse():
    """Spectra are watched for growth: 3.0 then 0.5 (a sixth) is no collapse at factor 3, 0.5 then 3.0 is; a
    reference of 0 has no ratio, so 0.0 then 5.0 is none either."""
    assert direction(SIGMA) == direction("spectra/G/first_s0") == "min"
    falling, rising, from_zero = (CollapseDetector(SIGMA, factor=3.0) for _ in range(3))
    feed(falling, [3.0, 0.5], "missing-folder")
    feed(rising, [0.5, 3.0], "missing-folder")
    feed(from_zero, [0.0, 5.0], "missing-folder")
    assert falling.found is None and rising.found.step == 20 and from_zero.found is None


@pytest.mark.parametrize("window, step", [(2, None), (3, 40), (0, 40)])
def test_the_window_holds_the_previous_records_it_compares_with(window, step):
    """1.0, 2.0, 2.5 then 3.5 at factor 3: against the last 2 records (lowest 2.0) 3.5 is below 6, no collapse;
    against the last 3 or all of them (window 0) the lowest is 1.0 and 3.5 > 3 is a collapse at step 40."""
    detector = CollapseDetector(SIGMA, factor=3.0, window=window)
    feed(detector, [1.0, 2.0, 2.5, 3.5], "missing-folder")
    assert (detector.found.step if detector.found else None) == step


@pytest.mark.parametrize("signal, values, before", [
    ("eval/fid", [30.0, 20.0, 25.0, 39.9, 40.1], 20.0),  # lower is better: 40.1 > 2 x 20, 39.9 is not
    ("eval/is_mean", [4.0, 8.0, 6.0, 4.1, 3.9], 8.0),  # higher is better: 3.9 < 8 / 2, 4.1 is not
])
def test_a_metric_collapses_when_it_worsens_past_the_factor_after_its_best(signal, values, before):
    """The direction of a ranked value is metrics.BETTER's; its best so far (window 0) is 20 at step 20 for
    FID, 8 at step 20 for IS; only the fifth value (step 50) is past factor 2 from it."""
    detector = CollapseDetector(signal, factor=2.0, window=0)
    feed(detector, values, "missing-folder", signal=signal)
    found = detector.found
    assert (found.step, found.before, found.before_step, found.after) == (50, before, 20, values[-1])
    assert ("rose" if signal == "eval/fid" else "fell") in detector.summary()["message"]


def test_the_kept_checkpoint_is_the_newest_before_the_jump_and_only_the_first_collapse_counts(tmp_path):
    """Checkpoints 10..40, records at 15, 25 (healthy) and 35 (5 times 1.0): the kept checkpoint is the newest at
    or before 25, step 20 (not 30, taken after the last healthy record); a later jump writes nothing more."""
    folder = checkpoints_at(tmp_path / "checkpoints", [10, 20, 30, 40])
    detector = CollapseDetector(SIGMA, factor=3.0, window=5)
    log = RowLog()
    detector.observe(15, {SIGMA: 1.0}, folder, log)
    detector.observe(25, {SIGMA: 1.2}, folder, log)
    assert detector.kept(folder) == {20}  # spared before any collapse: a collapse at the next record keeps it
    said = (r"collapse at step 35: spectra/D/max_s0 rose from 1 \(step 15\) to 5, more than collapse.factor=3 "
            r"times the lowest of its previous 5 records; the checkpoint of step 20, the last before it, is kept")
    with pytest.warns(GanscapeWarning, match=said):
        detector.observe(35, {SIGMA: 5.0}, folder, log)
    detector.observe(45, {SIGMA: 50.0}, folder, log)
    assert [row["collapse/kept_step"] for row in log.rows] == [20]
    assert detector.kept(folder) == {20} and detector.summary()["kept_step"] == 20


def test_no_checkpoint_left_from_before_is_said(tmp_path):
    """Only checkpoint 40 is left when records 10 (healthy) and 20 (a jump) are seen: nothing is kept."""
    folder = checkpoints_at(tmp_path / "checkpoints", [40])
    detector = CollapseDetector(SIGMA, factor=2.0)
    with pytest.warns(GanscapeWarning, match="no checkpoint had been written before it"):
        rows = feed(detector, [1.0, 2.5], folder)
    assert "collapse/kept_step" not in rows[0] and detector.kept(folder) == frozenset()


def test_a_resumed_detector_reads_its_history_and_an_earlier_collapse_from_the_log(tiny):
    """Rows 1.0 (step 10), 1.1 (step 20) replayed: 3.5 at step 30 is a collapse against 1.0 (factor 3). A log
    that holds a collapse gives it back (its kept checkpoint spared) without asking the run to stop again."""
    cfg = load_config(None, tiny + [f"collapse.signal={SIGMA}", "collapse.stop=true", "log.spectra_every=10"])
    history = [{"step": 10, SIGMA: 1.0, "d_loss": 0.3}, {"step": 20, SIGMA: 1.1}, {"step": 20, "eval/fid": 3.0}]
    detector = CollapseDetector.for_run(cfg, [], history)
    feed(detector, [3.5], "missing-folder", every=30)
    assert (detector.found.step, detector.found.before, detector.found.before_step) == (30, 1.0, 10)
    assert detector.stopping
    earlier = Collapse(SIGMA, 30, 1.0, 10, 3.5, kept_step=20)
    resumed = CollapseDetector.for_run(cfg, [], history + [{"step": 30, SIGMA: 3.5}, {"step": 30, **earlier.entries()}])
    assert resumed.found == earlier and resumed.kept("missing-folder") == {20} and not resumed.stopping


def test_signals_the_run_never_logs_are_refused(tiny):
    """An evaluated value no metric of the run computes, spectra without log.spectra_every, a factor of 1."""
    with pytest.raises(ConfigError, match=r"collapse.signal=eval/fid watches fid, .*add fid to eval.metrics"):
        CollapseDetector.for_run(load_config(None, tiny + ["collapse.signal=eval/fid"]), ["modes"], [])
    with pytest.raises(ConfigError, match="set log.spectra_every=N"):
        CollapseDetector.for_run(load_config(None, tiny + [f"collapse.signal={SIGMA}"]), [], [])
    with pytest.raises(ConfigError, match=r"collapse.factor must be > 1.0"):
        load_config(None, ["collapse.factor=1"])
    off = CollapseDetector.for_run(load_config(None, tiny), [], [{"step": 10, SIGMA: 1.0}])
    feed(off, [1.0, 100.0], "missing-folder")
    assert off.found is None and off.summary() is None


def test_a_run_whose_logged_signal_jumps_keeps_the_checkpoint_before_it_and_stops(tiny, monkeypatch, capsys):
    """A signal logged every 10 steps, 1.0 until step 70 and 10.0 from step 80 (factor 3), checkpoints every 25
    steps, 2 kept: the collapse is at 80, the newest checkpoint at or before 70 is 50, and it survives the
    rotation of the stop after step 81 (checkpoints 75 and 81) and of the resumed run to 100 (81 and 100)."""
    logged = loop.WorkCounter.logged
    monkeypatch.setattr(loop.WorkCounter, "logged",
                        lambda self, step: logged(self, step) | {"probe/s0": 1.0 if step < 80 else 10.0})
    cfg = load_config(None, tiny + ["train.steps=100", "checkpoint.every=25", "checkpoint.keep=2", "eval.every=1000",
                                    "log.samples_every=0", "collapse.signal=probe/s0", "collapse.stop=true"])
    run = RunDir.create(cfg)
    summary = train(cfg, run, progress=False)
    assert (summary["step"], summary["stopped"]) == (81, False)
    assert (summary["collapse"]["step"], summary["collapse"]["kept_step"]) == (80, 50)
    assert [s for s, _ in list_checkpoints(run.checkpoints)] == [50, 75, 81]
    assert [(r["step"], r["collapse/kept_step"]) for r in read_metrics(run) if "collapse/step" in r] == [(80, 50)]
    assert finish(summary, run) == 0  # the command's closing lines: why it stopped, how to go back
    out = capsys.readouterr().out
    assert "stopped at step 81: a collapse was detected" in out and f"ganscape resume {run} --from-step 50" in out
    assert "continue with:" not in out  # past the collapse: the way back is the kept checkpoint
    summary = train(cfg, run, resume=True, progress=False)
    assert summary["step"] == 100 and summary["collapse"]["stopped"] is False
    assert [s for s, _ in list_checkpoints(run.checkpoints)] == [50, 81, 100]


def test_a_run_whose_evaluation_worsens_keeps_the_checkpoint_of_its_last_good_evaluation(tiny, monkeypatch):
    """Scripted KL values 0.5, 0.2, 0.3, 0.45 at steps 10..40 (factor 2 after the best, 0.2): the collapse is at
    step 40, found after that step's checkpoint rotated the others (keep=1), yet the checkpoint of step 30, the
    last evaluation before it, was spared; the run stops after step 41."""
    scripted = iter([0.5, 0.2, 0.3, 0.45])
    monkeypatch.setattr(loop, "evaluate", lambda *args: {"eval/kl_to_uniform": next(scripted)})
    cfg = load_config(None, tiny + ["train.steps=60", "checkpoint.keep=1", "eval.every=10", "log.samples_every=0",
                                    "collapse.signal=eval/kl_to_uniform", "collapse.factor=2", "collapse.window=0",
                                    "collapse.stop=true"])
    run = RunDir.create(cfg)
    summary = train(cfg, run, progress=False)
    collapse = summary["collapse"]
    assert (collapse["step"], collapse["before"], collapse["before_step"], collapse["kept_step"]) == (40, 0.2, 20, 30)
    assert summary["step"] == 41 and [s for s, _ in list_checkpoints(run.checkpoints)] == [30, 41]


def test_a_branch_with_a_learning_rate_far_too_high_collapses_and_keeps_the_checkpoint_it_started_from(tiny,
                                                                                                         tmp_path):
    """A healthy run to step 60, D's top singular values measured every 10 steps, branched at 60 with Adam's
    lr at 1.0 (over 300 times the default): D's sigma_0 jumps more than 3 times its lowest of the parent's last
    5 measurements at the branch's first (step 70), and the kept checkpoint is the branch's first, step 60,
    the last before the jump; the branch stops after step 71."""
    parent = load_config(None, tiny + ["train.steps=60", "log.spectra_every=10", "checkpoint.every=20",
                                       "eval.every=1000", "log.samples_every=0"])
    parent_run = RunDir.create(parent)
    train(parent, parent_run, progress=False)
    result = branch(parent_run.path, tmp_path / "boom", ["train.steps=200", "g_opt.lr=1", "d_opt.lr=1",
                                                         f"collapse.signal={SIGMA}", "collapse.stop=true"])
    collapse, parent_rows = result.summary["collapse"], read_metrics(parent_run)
    lowest = min((r[SIGMA], r["step"]) for r in parent_rows if SIGMA in r and r["step"] > 10)
    assert (collapse["step"], collapse["kept_step"], (collapse["before"], collapse["before_step"])) == (70, 60, lowest)
    assert collapse["after"] > 3 * collapse["before"]
    assert result.summary["step"] == 71 and [s for s, _ in list_checkpoints(result.run.checkpoints)] == [60, 71]
