"""Supervised study workers: one worker over several study folders, the supervisor's progress and restart cap,
a reaped (zombie) worker counted as dead at once, and ``ganscape study dashboard``.

The worker SIGKILLed under ``study run`` (reaped, replaced, its trial queued again within seconds) is in
tests/faults/test_study_workers.py.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import yaml

from ganscape.cli import main
from ganscape.study import queue
from ganscape.study.engine import StudyDir, create, load_studies
from ganscape.study.leases import _alive, _zombie, lost_worker
from ganscape.study.spec import parse_spec

TINY = {"base": "ring8_grid", "space": "wide", "trials": 2, "seeds": 1, "sampler": {"name": "sobol", "seed": 0},
        "objective": "js_to_target",
        "overrides": ["train.steps=30", "eval.every=30", "eval.samples=200", "log.every=30", "log.samples_every=0",
                      "checkpoint.every=30", "train.ema=0"]}


def tiny_study(folder: Path, name: str, loss: str) -> StudyDir:
    return create(parse_spec(TINY | {"name": name, "groups": {"loss": [loss]}}, name), folder)


def states(folder: StudyDir) -> list[str]:
    return [t.state.name for _, study in load_studies(folder)[1] for t in study.get_trials()]


def test_one_supervised_worker_runs_the_trials_of_two_study_folders_in_turn(tmp_path):
    """supervise() over two folders with one worker: every trial of both completes, the worker takes the two
    studies' groups in turn (a, b, a, b: the order of its 'started' lines, each naming its study folder), and
    on_progress ends at (4, 4) after counting up, never down."""
    first, second = tiny_study(tmp_path / "a", "first", "ns"), tiny_study(tmp_path / "b", "second", "hinge")
    seen = []
    run = queue.supervise([first.path, second.path], ["cpu"], 1, tmp_path / "logs",
                          on_progress=lambda done, total: seen.append((done, total)))
    log = (tmp_path / "logs" / "worker-0.log").read_text()
    assert run.completed and run.exit_codes == [0] and run.restarts == 0 and not run.gave_up, log
    assert states(first) == states(second) == ["COMPLETE", "COMPLETE"]
    started = re.findall(r"\] (\w): (loss=\w+), trial (\d) started$", log, flags=re.MULTILINE)
    assert started == [("a", "loss=ns", "0"), ("b", "loss=hinge", "0"), ("a", "loss=ns", "1"),
                       ("b", "loss=hinge", "1")]
    assert seen[-1] == (4, 4) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert sorted(p.name for p in (tmp_path / "a" / "runs" / "loss=ns").iterdir()) == \
        ["trial-0000-seed-0", "trial-0001-seed-0"]


def test_study_run_gives_up_on_a_worker_that_keeps_crashing(tmp_path, monkeypatch, capsys):
    """A worker that dies at once while trials wait is replaced MAX_RESTARTS times, then given up: 'study run'
    says so and exits 2, with every trial still waiting. Independent count: 1 start + 3 replacements."""
    folder = tiny_study(tmp_path / "study", "crashing", "ns")
    starts = []

    def crashing_worker(folders, device, threads, log):
        starts.append(device)
        return subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])

    monkeypatch.setattr(queue, "start_worker", crashing_worker)
    assert main(["study", "run", str(folder.path), "--workers", "1"]) == 2
    captured = capsys.readouterr()
    assert starts == ["cpu"] * 4 and queue.MAX_RESTARTS == 3
    assert "worker exit codes [3, 3, 3, 3], 3 worker(s) replaced" in captured.out
    assert "the worker on cpu kept crashing (3 replacements)" in captured.err
    assert "trials remain unfinished" in captured.err and not (folder.path / "report").exists()
    assert states(folder) == ["WAITING", "WAITING"]


def test_a_finished_but_unreaped_worker_counts_as_dead_at_once(tmp_path):
    """A child that exited but was not reaped (a zombie) still answers kill(pid, 0); it must count as gone so the
    trial it held is given back at once, not after the heartbeat grace. A running process counts as alive."""
    ended = subprocess.Popen([sys.executable, "-c", ""])
    deadline = time.time() + 30
    while not _zombie(ended.pid):
        assert time.time() < deadline, "the child did not become a zombie"
        time.sleep(0.02)
    os.kill(ended.pid, 0)  # the kernel still knows the pid: the old check's blind spot
    trial = SimpleNamespace(user_attrs={"worker": {"host": socket.gethostname(), "pid": ended.pid},
                                        "heartbeat": time.time()}, datetime_start=None)
    assert not _alive(ended.pid) and lost_worker(trial) == f"process {ended.pid} is gone"
    ended.wait()
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert _alive(running.pid) and not _zombie(running.pid)
    finally:
        running.kill()
        running.wait()


def fake_dashboard(bin_dir: Path, argv_file: Path) -> None:
    """An 'optuna-dashboard' executable that writes its arguments, one a line, to ``argv_file``."""
    bin_dir.mkdir()
    script = bin_dir / "optuna-dashboard"
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {argv_file}\n")
    script.chmod(0o755)


def test_study_dashboard_starts_optuna_dashboard_on_the_study_storage(tmp_path, monkeypatch):
    """The journal file's absolute path for the embedded storage, the database URL for PostgreSQL (the study.yaml
    of such a folder, written by hand: no server is needed to build the command), with --host and --port."""
    argv_file = tmp_path / "argv"
    fake_dashboard(tmp_path / "bin", argv_file)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    journal = tiny_study(tmp_path / "journal", "dash", "ns")
    monkeypatch.chdir(tmp_path)
    assert main(["study", "dashboard", "journal"]) == 0
    assert argv_file.read_text().splitlines() == [str(tmp_path / "journal" / "study.journal"), "--host", "127.0.0.1",
                                                  "--port", "8080"]
    url = "postgresql://postgres@dbhost:5432/studies"
    (tmp_path / "pg").mkdir()
    stored = yaml.safe_load(journal.spec_path.read_text()) | {"storage": url}
    (tmp_path / "pg" / "study.yaml").write_text(yaml.safe_dump(stored))
    assert main(["study", "dashboard", str(tmp_path / "pg"), "--host", "0.0.0.0", "--port", "9000"]) == 0
    assert argv_file.read_text().splitlines() == [url, "--host", "0.0.0.0", "--port", "9000"]


def test_study_dashboard_without_optuna_dashboard_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    folder = tiny_study(tmp_path / "study", "dash", "ns")
    assert main(["study", "dashboard", str(folder.path)]) == 2
    assert "optuna-dashboard is not installed (it is optional): pip install 'ganscape[dashboard]'" in \
        capsys.readouterr().err
