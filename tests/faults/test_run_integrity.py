"""Run-directory integrity: every way a run's files can be lost, torn, corrupted or shared, and what ganscape
does about it (issue: nothing lost, nothing confusing). Each test names the fault it injects."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ganscape.cli import main
from ganscape.config import load_config
from ganscape.errors import CheckpointError, DivergenceError
from ganscape.training import step as step_module
from ganscape.store.checkpoint import list_checkpoints, load_checkpoint
from ganscape.training.loop import train
from ganscape.runs import RunDir
from ganscape.store.rundir import read_metrics

FAST = ["eval.every=20", "checkpoint.every=10", "log.every=10"]


def trained(tiny, name="tiny", steps=30, extra=()):
    cfg = load_config(None, tiny + FAST + [f"run.name={name}", f"train.steps={steps}", *extra])
    run = RunDir.create(cfg)
    train(cfg, run, progress=False)
    return cfg, run


# ---------------------------------------------------------------- 1. the config of a run


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_text(""), "config.yaml is empty"),
    (lambda p: p.write_text(p.read_text().partition("pixel_scale")[0] + "pixel"), "config.yaml cannot be read"),  # torn mid-key
    (lambda p: p.unlink(), "config.yaml is missing"),
    (lambda p: p.write_bytes(b"\x00\xff\xfe binary"), "config.yaml cannot be read"),
])
def test_a_lost_or_torn_config_is_refused_and_restored_from_the_checkpoint(tiny, capsys, damage, message):
    """resume and eval refuse a run whose config.yaml is missing, empty or torn (before: the defaults were
    used, the run continued as another experiment and checkpoint.keep deleted its checkpoints)."""
    cfg, run = trained(tiny, extra=["loss=hinge", "train.ema=0.95", "checkpoint.keep=2"])
    before = sorted(p.name for p in run.checkpoints.iterdir())
    damage(run.config_path)
    capsys.readouterr()
    assert main(["resume", str(run), "train.steps=50"]) == 2
    err = capsys.readouterr().err
    assert message in err and "--restore-config" in err and "step 30" in err
    assert main(["eval", str(run)]) == 2
    assert sorted(p.name for p in run.checkpoints.iterdir()) == before  # nothing deleted
    assert main(["resume", str(run), "train.steps=50", "--restore-config"]) == 0
    restored = run.read_config()
    assert (restored.loss, restored.train.ema, restored.train.steps) == ("hinge", 0.95, 50)
    assert [s for s, _ in list_checkpoints(run.checkpoints)] == [40, 50]


def test_a_config_that_differs_from_the_checkpoints_is_refused_with_the_difference(tiny, capsys):
    _, run = trained(tiny, extra=["loss=hinge"])
    run.config_path.write_text(run.config_path.read_text().replace("loss: hinge", "loss: ns"))
    assert main(["resume", str(run), "train.steps=40"]) == 2
    err = capsys.readouterr().err
    assert "differs from the config the run was trained with" in err and "loss: 'ns' in config.yaml, 'hinge' in " \
                                                                          "the checkpoint" in err
    # Keys that do not change the trajectory may differ: a longer run, other logging.
    run.config_path.write_text(run.config_path.read_text().replace("loss: ns", "loss: hinge")
                               .replace("every: 10", "every: 5"))
    assert main(["resume", str(run), "train.steps=40"]) == 0


# ---------------------------------------------------------------- 2. two processes on one run

def spawn(args, cwd):
    return subprocess.Popen([sys.executable, "-m", "ganscape", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_two_trainings_on_one_run_directory_cannot_mix(tiny, tmp_path):
    """Two 'train run.name=same' started together: one trains, the other stops at once naming the holder;
    config.yaml and the checkpoints are the winner's (before: crashes, or one seed's config with the other's
    checkpoints)."""
    base = tiny + ["train.steps=300", "checkpoint.every=50", "eval.every=1000"]
    procs = [spawn(["train", *base, f"train.seed={seed}"], tmp_path) for seed in (1, 2)]
    results = [p.communicate(timeout=300) for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0, 2], results
    loser = results[codes.index(2)][1]
    assert "is in use by process" in loser and "Traceback" not in loser
    winner_seed = (1, 2)[codes.index(0)]
    run = RunDir(tmp_path / "runs" / "tiny")
    assert run.read_config().train.seed == winner_seed
    assert load_checkpoint(run.latest_checkpoint()[1])["config"]["train"]["seed"] == winner_seed


def test_a_second_resume_waits_its_turn(tiny, tmp_path, capsys):
    _, run = trained(tiny)
    holder = spawn(["resume", str(run), "train.steps=100000", "checkpoint.every=100000"], tmp_path)
    deadline = time.time() + 60
    while f"process {holder.pid} " not in run.lock_path.read_text() and time.time() < deadline:
        time.sleep(0.05)
    try:
        assert main(["resume", str(run), "train.steps=60"]) == 2
        assert f"is in use by process {holder.pid}" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    assert main(["resume", str(run), "train.steps=60"]) == 0  # the dead holder's lock is gone with it


# ---------------------------------------------------------------- 3. the metrics log


def test_a_torn_or_broken_metrics_log_does_not_block_resume(tiny, capsys):
    """A log cut mid-line (a kill during a write) or with a bad line: the line is dropped with a warning and the
    run resumes (before: JSONDecodeError on every later resume)."""
    _, run = trained(tiny)
    lines = run.metrics_path.read_text().splitlines()
    run.metrics_path.write_text("\n".join(lines[:2] + ["{not json", *lines[2:]]) + '\n{"step": 30, "d_lo')
    assert main(["resume", str(run), "train.steps=40"]) == 0
    err = capsys.readouterr().err
    assert "metrics.jsonl line 3 is not a complete log record" in err
    steps = [r["step"] for r in read_metrics(run) if "d_loss" in r]
    assert steps == [10, 20, 30, 40]


def test_resume_rewrites_the_log_atomically(tiny, monkeypatch):
    """Truncating the log goes through a new file and a rename: a crash in between leaves the old log whole
    (before: the log was rewritten in place, and a kill left it empty)."""
    _, run = trained(tiny)
    before = run.metrics_path.read_text()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # the process dies right before the rename

    from ganscape.store import rundir as run_module

    monkeypatch.setattr(run_module.os, "replace", crash)
    cfg = run.read_config(["train.steps=40"])
    with pytest.raises(KeyboardInterrupt):
        train(cfg, run, resume=True, progress=False)
    assert run.metrics_path.read_text() == before


# ---------------------------------------------------------------- 4. the order of work at a step


def test_a_failing_picture_or_evaluation_costs_neither_the_checkpoint_nor_the_run(tiny, monkeypatch, capsys):
    from ganscape.training import loop

    def broken(*args, **kwargs):
        raise RuntimeError("plotting exploded")

    monkeypatch.setattr(loop, "save_samples", broken)
    monkeypatch.setattr(loop, "evaluate", broken)
    cfg = load_config(None, tiny + FAST + ["train.steps=20", "log.samples_every=10"])
    run = RunDir.create(cfg)
    with pytest.warns(Warning, match="the sample picture at step 10 failed and was skipped: RuntimeError"):
        summary = train(cfg, run, progress=False)
    assert summary["step"] == 20 and [s for s, _ in list_checkpoints(run.checkpoints)] == [10, 20]


def test_a_run_killed_between_its_last_checkpoint_and_its_evaluation_gets_it_on_resume(tiny, capsys):
    """The kill -9 trial that found it: the process died after writing the final checkpoint but before the final
    evaluation; ``resume`` said "already at step N" and stopped, so the log lacked that evaluation for good. The
    expected log is the one of the same run never killed."""
    _, run = trained(tiny, steps=20)
    complete = read_metrics(run)
    assert "eval/modes_covered" in complete[-1]
    run.metrics_path.write_text("".join(json.dumps(r) + "\n" for r in complete[:-1]))  # as the kill left it
    for path in run.eval.glob("step_00000020*"):
        path.unlink()
    assert main(["resume", str(run)]) == 0
    assert "already at step 20 of 20" in capsys.readouterr().out
    assert read_metrics(run) == complete
    assert run.eval_result(20).exists()


def test_a_non_finite_ema_stops_the_run_and_keeps_the_last_good_checkpoint(tiny, monkeypatch):
    """NaN in the EMA (the losses stay finite): caught at the next log step, never checkpointed (before: the
    picture of the NaN EMA raised before the checkpoint on every resume, and eval scored it with exit 0)."""
    real_step = step_module.train_step

    def poisoning(state, *args):
        stats = real_step(state, *args)
        if state.step == 15:
            with torch.no_grad():
                next(state.ema.model.parameters()).fill_(float("nan"))
        return stats

    monkeypatch.setattr("ganscape.training.loop.train_step", poisoning)
    cfg = load_config(None, tiny + FAST + ["train.steps=40"])
    run = RunDir.create(cfg)
    with pytest.raises(DivergenceError, match=r"diverged at step 20: non-finite state \(after step 10\): G_ema\.") as e:
        train(cfg, run, progress=False)
    assert "last good checkpoint is" in str(e.value) and "step_00000010" in str(e.value)
    assert [s for s, _ in list_checkpoints(run.checkpoints)] == [10]


def test_optimizer_state_overflowing_to_inf_is_caught(tiny, monkeypatch):
    real_step = step_module.train_step

    def overflowing(state, *args):
        stats = real_step(state, *args)
        if state.step == 12:
            slots = next(iter(state.opt_d.state.values()))
            slots["exp_avg_sq"].fill_(float("inf"))
        return stats

    monkeypatch.setattr("ganscape.training.loop.train_step", overflowing)
    cfg = load_config(None, tiny + FAST + ["train.steps=40"])
    run = RunDir.create(cfg)
    with pytest.raises(DivergenceError, match=r"non-finite state .*opt_d\.0\.exp_avg_sq"):
        train(cfg, run, progress=False)
    assert [s for s, _ in list_checkpoints(run.checkpoints)] == [10]


def test_eval_refuses_a_generator_with_non_finite_weights(tiny, capsys):
    from ganscape.store.checkpoint import save_checkpoint

    _, run = trained(tiny, steps=20)
    step, path = run.latest_checkpoint()
    state = load_checkpoint(path)
    next(iter(state["G_ema"].values())).fill_(float("nan"))
    save_checkpoint(path, state)
    assert main(["eval", str(run)]) == 2
    assert "has non-finite weights" in capsys.readouterr().err


# ---------------------------------------------------------------- 5. checksums


def flip_a_byte(path: Path, from_end: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[-from_end] ^= 0x5A
    path.write_bytes(bytes(data))


def test_flipped_bytes_in_tensor_data_are_found(tiny, capsys):
    """A flipped byte in a checkpoint's tensors (before: loaded silently) is refused; resume names the newest
    intact checkpoint and --from-step continues from it, moving the corrupt one aside."""
    _, run = trained(tiny, extra=["checkpoint.keep=3"])
    newest = run.checkpoints / "step_00000030.safetensors"
    flip_a_byte(newest)
    corrupt = newest.read_bytes()
    with pytest.raises(CheckpointError, match="do not match their checksums"):
        load_checkpoint(newest)
    capsys.readouterr()
    assert main(["resume", str(run), "train.steps=40"]) == 2
    err = capsys.readouterr().err
    assert "step_00000030.safetensors is corrupt" in err and "--from-step 20" in err
    assert main(["resume", str(run), "train.steps=40", "--from-step", "20"]) == 0
    assert [s for s, _ in list_checkpoints(run.checkpoints)] == [20, 30, 40]
    load_checkpoint(newest)  # written again by the resumed run
    (aside,) = run.checkpoints.glob("superseded-*/step_00000030.safetensors")
    assert aside.read_bytes() == corrupt  # the corrupt file is kept, not deleted


def test_divergence_never_names_a_corrupt_checkpoint_as_the_last_good_one(tiny, monkeypatch):
    from ganscape.objectives import losses

    real = losses.LOSSES["ns"]
    calls = {"n": 0}

    def blows_up(real_logits, fake_logits):
        calls["n"] += 1
        return real.d_loss(real_logits, fake_logits) * (float("nan") if calls["n"] > 25 else 1.0)

    monkeypatch.setitem(losses.LOSSES, "ns", losses.Loss("ns", blows_up, real.g_loss, ""))
    cfg = load_config(None, tiny + FAST + ["train.steps=40"])
    run = RunDir.create(cfg)
    real_save = __import__("ganscape.training.snapshots", fromlist=["x"]).save_checkpoint

    def corrupting_save(path, state):  # the checkpoint of step 20 rots on disk right after it is written
        written = real_save(path, state)
        if path.name == "step_00000020.safetensors":
            flip_a_byte(written)
        return written

    monkeypatch.setattr("ganscape.training.snapshots.save_checkpoint", corrupting_save)
    with pytest.raises(DivergenceError, match=r"last good checkpoint is .*step_00000010.safetensors"):
        train(cfg, run, progress=False)


@pytest.mark.parametrize("craft, message", [
    (lambda s: s.pop("G_ema"), "no 'G_ema'"),
    (lambda s: s.update(step="12"), "step is '12'"),
    (lambda s: s.update(step=-1), "step is -1"),
    (lambda s: s.update(G=[1, 2]), "G is not a state dict"),
    (lambda s: s.update(opt_d={"state": {}}), "opt_d is not an optimizer state"),
    (lambda s: s.update(rng={"data": 1}), "rng does not hold"),
    (lambda s: s.clear(), "no 'step'"),
])
def test_crafted_checkpoint_metadata_is_refused_with_the_path(tiny, capsys, craft, message):
    """Seven crafted variants (before: KeyError: 'G_ema', TypeError, ... as tracebacks)."""
    from ganscape.store.checkpoint import save_checkpoint

    _, run = trained(tiny, steps=10)
    step, path = run.latest_checkpoint()
    state = load_checkpoint(path)
    craft(state)
    save_checkpoint(path, state)
    for command in (["resume", str(run), "train.steps=20"], ["eval", str(run)]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert f"checkpoint {path} is not a complete run checkpoint" in err and message in err, err


def test_checkpoints_of_format_1_still_load(tmp_path):
    """A checkpoint written by ganscape before checksums (tests/data, format 1) loads, and its EMA generator
    gives the samples recorded when it was written."""
    from ganscape.runs import load_run_generator

    data = Path(__file__).resolve().parents[1] / "data"
    run = RunDir(tmp_path / "old")
    (run.checkpoints).mkdir(parents=True)
    (run.checkpoints / "step_00000004.safetensors").write_bytes(
        (data / "checkpoint_format1_ring8_w8_step4.safetensors").read_bytes())
    run.config_path.write_text((data / "checkpoint_format1_ring8_w8_config.yaml").read_text())
    G, cfg, step, _ = load_run_generator(run)
    expected = json.loads((data / "checkpoint_format1_ring8_w8_samples.json").read_text())
    z = torch.randn(4, cfg.latent.dim, generator=torch.Generator().manual_seed(expected["latent_seed"]))
    torch.testing.assert_close(G(z), torch.tensor(expected["ema_generator_output"]))


def test_a_run_config_written_by_an_older_ganscape_is_read_in_todays_keys(tiny):
    from ganscape.errors import ConfigWarning

    _, run = trained(tiny, steps=10, extra=["penalty=r1:0.5,l2:0.1"])
    text = run.config_path.read_text()
    old = text.replace("  use:\n  - name: r1\n    weight: 0.5\n  - name: l2\n    weight: 0.1\n",
                       "  name: [r1, l2]\n  weight: [0.5, 0.1]\n")
    assert old != text
    run.config_path.write_text(old)
    with pytest.warns(ConfigWarning, match="written by an older ganscape: .* read as penalty=r1:0.5,l2:0.1"):
        cfg = run.read_config()
    assert [(t.name, t.weight) for t in cfg.penalty.use] == [("r1", 0.5), ("l2", 0.1)]


def test_checkpoints_are_as_readable_as_the_rest_of_the_run(tiny):
    _, run = trained(tiny, steps=10)
    modes = {p.stat().st_mode & 0o777 for p in (run.config_path, run.metrics_path, run.latest_checkpoint()[1])}
    assert len(modes) == 1  # before: checkpoints 0600, everything else 0644


# ---------------------------------------------------------------- 8. KID's subset size


def test_kid_subset_size_is_clipped_recorded_and_warned(tmp_path):
    from ganscape.config import DataConfig, MetricsConfig
    from ganscape.data.images import InMemoryImages
    from ganscape.errors import GanscapeWarning
    from ganscape.metrics.evaluate import Evaluator
    from random_inception import random_fid_inception_state, smooth_images

    weights = tmp_path / "w.pth"
    torch.save(random_fid_inception_state(), weights)
    reference = InMemoryImages(smooth_images(12, 8, 8, 0), name="tiny")
    with pytest.warns(GanscapeWarning, match="kid.subset_size=1000 is more than the 12 samples.*kid_std is 0"):
        evaluator = Evaluator(["kid"], reference, DataConfig(name="tiny"), latent_dim=4, num_samples=12,
                              settings=MetricsConfig(inception_weights=str(weights), cache_dir=str(tmp_path)))
    assert evaluator.protocol()["kid"]["subset_size"] == 12
    assert evaluator.protocol()["kid"]["subset_size_asked"] == 1000
