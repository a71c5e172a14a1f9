"""kill -9 at random points of training and checkpointing, a full disk and a read-only file system.

The kill test prints its counts (kills, resumes, runs bit-identical to an uninterrupted run) in the test log.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time

import pytest

from ganscape.cli import main
from ganscape.training.checkpoint import list_checkpoints, load_checkpoint
from ganscape.training.run import RunDir, read_metrics
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
            time.sleep(rng.uniform(0.3, 0.97) * duration)  # a fixed time missed runs on a faster machine
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
        import errno

        from ganscape.training import checkpoint

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
        import errno

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
