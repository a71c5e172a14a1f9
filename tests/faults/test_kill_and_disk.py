"""kill -9 at random points of training and checkpointing, a full disk and a read-only file system; a picture
or evaluation cut short by a full disk, output closed by its reader ('| head'), Ctrl-C during an evaluation.

The kill test prints its counts (kills, resumes, runs bit-identical to an uninterrupted run) in the test log.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ganscape.cli import main
from ganscape.store.checkpoint import list_checkpoints, load_checkpoint
from ganscape.runs import RunDir
from ganscape.store.rundir import read_metrics
from run_states import assert_same_state, final_state

KILL_TRIALS = 8
STEPS = 300
SETTINGS = ["train.batch_size=64", "g.width=32", "d.width=32", f"train.steps={STEPS}", "checkpoint.every=1",
            "checkpoint.keep=3", "log.every=5", "eval.every=100", "eval.samples=300", "log.samples_every=100",
            "log.tensorboard=false"]


def command(*args, cwd):
    return subprocess.Popen([sys.executable, "-m", "ganscape", *args], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def log_without_timing(run: RunDir) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "steps_per_s"} for row in read_metrics(run)]


def test_kill_9_anywhere_then_resume_continues_bit_for_bit(tmp_path, capsys):
    """Each trial kills the training process (and sometimes its resume) with SIGKILL after a random time, while it
    trains and writes a checkpoint every step, then resumes until the run is done; the final state (networks,
    EMA, optimizer states, random streams) and the log equal those of a run never interrupted."""
    tic = time.perf_counter()
    straight = command("train", *SETTINGS, f"run.root={tmp_path}", "run.name=straight", cwd=tmp_path)
    assert straight.wait(timeout=600) == 0, straight.stderr.read()
    duration = time.perf_counter() - tic  # start-up included: kills land anywhere from imports to the last write
    reference = RunDir(tmp_path / "straight")
    rng = random.Random(20261201)
    counts = {"trials": KILL_TRIALS, "kills": 0, "resumes": 0, "restarts": 0, "bit_identical": 0}
    for trial in range(KILL_TRIALS):
        run = RunDir(tmp_path / f"killed{trial}")
        proc = command("train", *SETTINGS, f"run.root={tmp_path}", f"run.name={run.path.name}", cwd=tmp_path)
        for _ in range(rng.choice([1, 2, 2])):
            # A fraction of the uninterrupted run's time (a fixed time missed runs on a faster machine), at most 0.8
            # of it: that run paid the cold start, so a later one can be faster and finish before a later kill.
            time.sleep(rng.uniform(0.2, 0.8) * duration)
            if proc.poll() is not None:
                break
            proc.kill()
            proc.wait()
            counts["kills"] += 1
            if list_checkpoints(run.checkpoints):
                proc = command("resume", str(run.path), cwd=tmp_path)
                counts["resumes"] += 1
            else:  # killed before its first checkpoint: start again
                proc = command("train", *SETTINGS, f"run.root={tmp_path}", f"run.name={run.path.name}", cwd=tmp_path)
                counts["restarts"] += 1
        assert proc.wait(timeout=600) == 0, proc.stderr.read()
        assert not list(run.checkpoints.glob(".*.tmp"))  # a killed write leaves at most a temporary file, removed
        assert_same_state(final_state(run), final_state(reference))
        assert log_without_timing(run) == log_without_timing(reference)
        counts["bit_identical"] += 1
    with capsys.disabled():
        print(f"\nkill -9 fault suite: {json.dumps(counts)}")
    assert counts["kills"] >= KILL_TRIALS // 2  # most trials were really interrupted


@pytest.fixture
def small_disk(tmp_path):
    """A 400 KiB tmpfs where this machine lets us mount one (root), else None."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mount)], capture_output=True)
    if result.returncode != 0:
        yield None
        return
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_stops_with_one_line_and_the_last_checkpoint_intact(tiny, tmp_path, small_disk, capsys,
                                                                        monkeypatch):
    """A real full file system (a small tmpfs) where the machine allows, else ENOSPC simulated at the fourth
    checkpoint write: one line that says what to do (before: 'SafetensorError: No space left' traceback), and
    every checkpoint on disk loads."""
    root = small_disk or tmp_path / "runs-simulated"
    if small_disk is None:
        from ganscape.store import checkpoint

        real, writes = checkpoint.save_file, []

        def filling(tensors, filename, metadata=None):
            writes.append(filename)
            if len(writes) >= 4:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)
            return real(tensors, filename, metadata)

        monkeypatch.setattr(checkpoint, "save_file", filling)
    code = main(["train", *tiny, f"run.root={root}", "run.name=full", "train.steps=100000", "checkpoint.every=5",
                 "checkpoint.keep=100000", "g.width=64", "d.width=64", "eval.every=100000"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert "No space left on device" in err and "free some space, then continue the run" in err
    run = RunDir(root / "full")
    found = list_checkpoints(run.checkpoints)
    assert found and not list(run.checkpoints.glob(".*.tmp"))
    for _, path in found:
        load_checkpoint(path)


def test_a_read_only_file_system_is_one_line(tiny, tmp_path, small_disk, capsys, monkeypatch):
    """The run directory's file system turns read-only (a tmpfs remounted read-only where the machine allows,
    else EROFS simulated when the lock is opened): resume says so in one line."""
    root = small_disk or tmp_path / "runs"
    assert main(["train", *tiny, f"run.root={root}", "run.name=ro", "train.steps=10", "g.width=8", "d.width=8"]) == 0
    capsys.readouterr()
    if small_disk is not None:
        assert subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True).returncode == 0
    else:
        real_open = os.open

        def read_only(path, flags, *args):
            if str(path).endswith(".lock"):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
            return real_open(path, flags, *args)

        monkeypatch.setattr(os, "open", read_only)
    code = main(["resume", str(root / "ro"), "train.steps=20"])
    err = capsys.readouterr().err
    assert code == 2 and "Read-only file system" in err and "choose a writable place" in err and str(root) in err, err
    assert "Traceback" not in err


# ---------------------------------------------------------------- nothing lost: full disk, closed output, Ctrl-C

# A run small enough for the 400 KiB disk: pictures and evaluations at steps 10 and 20, a checkpoint every 5.
SMALL = ["train.steps=20", "train.batch_size=64", "g.width=8", "d.width=8", "g.depth=2", "d.depth=2",
         "eval.samples=500", "eval.every=10", "log.every=5", "log.samples_every=10", "checkpoint.every=5",
         "log.tensorboard=false"]


class FullDisk:
    """The disk of ``root`` made full and freed again: a real small tmpfs filled with a file where the machine
    lets us mount one, else picture and text writes that fail with ENOSPC after creating their file empty
    (what a full disk leaves: PIL and Python create the file, and its bytes never reach the disk)."""

    def __init__(self, root, real: bool):
        self.root, self.real, self.full = root, real, False

    def fill(self) -> None:
        self.full = True
        if self.real:
            fd = os.open(self.root / "filler", os.O_WRONLY | os.O_CREAT)
            try:
                while True:
                    os.write(fd, bytes(1 << 16))
            except OSError as err:
                assert err.errno == errno.ENOSPC
            finally:
                os.close(fd)

    def free(self) -> None:
        self.full = False
        (self.root / "filler").unlink(missing_ok=True)

    @staticmethod
    def cut_short(path) -> None:
        Path(path).touch()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture
def full_disk(small_disk, tmp_path, monkeypatch):
    if small_disk is not None:
        return FullDisk(small_disk, real=True)
    disk = FullDisk(tmp_path / "runs-simulated", real=False)
    from PIL import Image

    real_save, real_write_text = Image.Image.save, Path.write_text

    def save(image, fp, *args, **kwargs):
        if disk.full and isinstance(fp, (str, os.PathLike)):
            disk.cut_short(fp)
        return real_save(image, fp, *args, **kwargs)

    def write_text(path, *args, **kwargs):
        if disk.full:
            disk.cut_short(path)
        return real_write_text(path, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save)
    monkeypatch.setattr(Path, "write_text", write_text)
    return disk


@pytest.fixture(scope="module")
def never_stopped(tmp_path_factory) -> RunDir:
    root = tmp_path_factory.mktemp("never-stopped")
    assert main(["train", *SMALL, f"run.root={root}", "run.name=straight"]) == 0
    return RunDir(root / "straight")


def picture(path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path))


@pytest.mark.parametrize("cut_short", ["save_samples", "evaluate"])
def test_a_picture_or_evaluation_cut_short_by_a_full_disk_is_written_again_on_resume(
        cut_short, full_disk, never_stopped, capsys, monkeypatch):
    """The disk fills up right before the picture (or the evaluation) of step 10: the run stops with one line
    naming the file, and leaves no partial file (before: a 0-byte PNG that resume took for the picture; or
    training went on without the evaluation, for good). Once space is freed, resume writes them: the same
    picture, evaluation and log as the run never stopped."""
    from ganscape.training import loop

    real, filled = getattr(loop, cut_short), []

    def filling_first(state, *args):
        if state.step == 10 and not filled:  # once: resume's catch-up writes on a disk with space again
            full_disk.fill()
            filled.append(state.step)
        return real(state, *args)

    monkeypatch.setattr(loop, cut_short, filling_first)
    run = RunDir(full_disk.root / "full")
    code = main(["train", *SMALL, f"run.root={full_disk.root}", "run.name=full"])
    err = capsys.readouterr().err
    final_name = run.samples / "step_00000010.png" if cut_short == "save_samples" else run.eval_result(10)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert f"No space left on device ({final_name})" in err and "free some space" in err
    assert not final_name.exists()
    assert not [p.name for folder in (run.samples, run.eval) for p in folder.glob(".*")]  # no temporary left
    full_disk.free()
    assert main(["resume", str(run.path)]) == 0
    for step in (10, 20):
        name = f"step_{step:08d}.png"
        assert np.array_equal(picture(run.samples / name), picture(never_stopped.samples / name))
        ours, theirs = (json.loads(r.eval_result(step).read_text()) for r in (run, never_stopped))
        assert ours["values"] == theirs["values"]
    assert log_without_timing(run) == log_without_timing(never_stopped)


def test_a_closed_output_stops_the_run_with_a_checkpoint_and_resume_continues(tiny, tmp_path):
    """'ganscape train | head -n 1' through a real pipe: head exits after the first line, the next progress line
    finds the pipe closed, and the run stops as on Ctrl-C: a checkpoint where it stopped, exit 141 and how to
    continue on stderr (before: a BrokenPipeError ended it with no checkpoint, checkpoints being rare here)."""
    settings = [*tiny, "train.steps=100000", "checkpoint.every=100000", "eval.every=100000", "log.samples_every=0"]
    train = subprocess.Popen([sys.executable, "-m", "ganscape", "train", *settings], cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    head = subprocess.Popen(["head", "-n", "1"], stdin=train.stdout, stdout=subprocess.PIPE, text=True)
    train.stdout.close()  # head alone reads it, so train's writes fail once head has exited
    first_line = head.communicate(timeout=120)[0]
    err = train.stderr.read()
    assert train.wait(timeout=120) == 141, err
    run = RunDir(tmp_path / "runs" / "tiny")
    assert first_line == f"run directory: {run}\n"
    steps = [s for s, _ in list_checkpoints(run.checkpoints)]
    assert len(steps) == 1 and 10 <= steps[0] < 100000, err
    assert f"stopped at step {steps[0]} with a checkpoint; continue with: ganscape resume {run}" in err
    assert "Traceback" not in err
    assert main(["resume", str(run.path), f"train.steps={steps[0] + 10}"]) == 0
    assert list_checkpoints(run.checkpoints)[-1][0] == steps[0] + 10


def test_ctrl_c_during_the_final_evaluation_abandons_it_and_resume_does_it(tiny, tmp_path, monkeypatch, capsys):
    """A real SIGINT while the final evaluation runs (made to last half a minute, as an FID does): it is
    abandoned at once and the run stops with its final checkpoint, exit 130; resume evaluates that step (before:
    Ctrl-C only asked to stop after the evaluation, which ran to its end)."""
    from ganscape.training import loop

    real = loop.evaluate

    def slow(*args):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the evaluation runs
        time.sleep(30)  # the rest of a long FID
        return real(*args)

    monkeypatch.setattr(loop, "evaluate", slow)
    tic = time.perf_counter()
    code = main(["train", *tiny, "train.steps=20"])
    elapsed = time.perf_counter() - tic
    out, err = capsys.readouterr()
    run = RunDir(tmp_path / "runs" / "tiny")
    assert code == 130 and elapsed < 25, (code, elapsed, err)
    assert f"this evaluation is abandoned ('ganscape resume {run}' does it again" in err
    assert f"stopped at step 20 on request; continue with: ganscape resume {run}" in out
    assert [s for s, _ in list_checkpoints(run.checkpoints)][-1] == 20
    assert not run.eval_result(20).exists() and not any("eval/modes_covered" in r for r in read_metrics(run))
    monkeypatch.setattr(loop, "evaluate", real)
    assert main(["resume", str(run.path)]) == 0
    assert "already at step 20 of 20" in capsys.readouterr().out
    assert run.eval_result(20).exists() and "eval/modes_covered" in read_metrics(run)[-1]


def test_a_second_ctrl_c_aborts_and_says_how_to_continue(tiny, tmp_path, monkeypatch, capsys):
    """Two real SIGINTs during step 25 (checkpoints every 10): the first asks to stop after the step, the second
    aborts at once and names 'ganscape resume RUN' (before: only 'interrupted'), which continues from step 20."""
    from ganscape.training import loop

    real = loop.train_step

    def interrupted_twice(state, *args):
        stats = real(state, *args)
        if state.step == 25:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return stats

    monkeypatch.setattr(loop, "train_step", interrupted_twice)
    code = main(["train", *tiny])
    err = capsys.readouterr().err
    run = RunDir(tmp_path / "runs" / "tiny")
    assert code == 130 and "stopping after this step" in err
    assert f"aborting; continue from the last checkpoint with: ganscape resume {run}" in err
    assert [s for s, _ in list_checkpoints(run.checkpoints)] == [10, 20]
    monkeypatch.setattr(loop, "train_step", real)
    assert main(["resume", str(run.path)]) == 0
    assert list_checkpoints(run.checkpoints)[-1][0] == 40


def test_eval_that_cannot_write_its_result_prints_the_values_and_names_out(tiny, tmp_path, capsys):
    """The run's eval folder is a file, so the result cannot be written: the values are printed first and the
    one-line error names --out (before: the values were lost behind an OSError line). The printed values are
    those that 'eval --out FILE' then writes."""
    assert main(["train", *tiny, "train.steps=20"]) == 0
    run = RunDir(tmp_path / "runs" / "tiny")
    for path in run.eval.iterdir():
        path.unlink()
    run.eval.rmdir()
    run.eval.write_text("")
    capsys.readouterr()
    code = main(["eval", str(run.path)])
    out, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert f"cannot write the result to {run.eval}" in err and "--out FILE" in err
    assert main(["eval", str(run.path), "--out", str(tmp_path / "result.json")]) == 0
    values = json.loads((tmp_path / "result.json").read_text())["values"]
    for key, value in values.items():
        assert (f"  {key:16s} {value:.6g}" if isinstance(value, float) else f"  {key:16s} {value}") in out
