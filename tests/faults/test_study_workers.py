"""Study workers under faults, on both storages, and the study report in a real browser.

Two worker processes share a study; one is killed with SIGKILL in the middle of a trial (after the
trial's run wrote a checkpoint, before it finished). The other must fail the orphaned trial, queue it
again with the same parameters, resume its run from the checkpoint and finish the study with exactly
the requested number of completed trials, each with an intact run directory.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from ganscape.cli import main
from ganscape.study.engine import StudyDir, load_studies
from ganscape.study.leases import LOST
from ganscape.study.report import gather
from ganscape.store.checkpoint import list_checkpoints, load_checkpoint
from ganscape.runs import RunDir
from ganscape.store.rundir import read_metrics

STEPS = 1500
SPEC = {
    "name": "killed_worker",
    "base": "ring8_grid",
    "overrides": [f"train.steps={STEPS}", "checkpoint.every=100", "checkpoint.keep=2", "eval.every=500",
                  "eval.samples=500", "log.every=100", "log.samples_every=0"],
    "groups": {"loss": ["ns", "hinge"]},
    "space": {"lr": {"log_uniform": [1e-4, 1e-3], "keys": ["g_opt.lr", "d_opt.lr"]}},
    "trials": 3,
    "seeds": 1,
    "sampler": {"name": "sobol", "seed": 0},
    "objective": {"metric": "js_to_target", "direction": "minimize"},
}
PG = dict(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")


def worker(folder: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ganscape", "study", "worker", str(folder), "--heartbeat", "0.5",
                             "--grace", "60"], stdout=open(log, "w"), stderr=subprocess.STDOUT)


def trial_in_progress(log: Path, folder: Path) -> tuple[str, int, Path] | None:
    """The trial the worker writing ``log`` is running, once its run has a checkpoint: (group, number, run).
    ``folder`` is the study folder; for a worker over several studies, whose log names each trial's study
    folder ("cifar: loss=ns, trial 3 started"), the folder that holds those study folders."""
    lines = log.read_text().splitlines()
    started = [re.search(r"\] (?:([\w.=-]+): )?(loss=\w+), trial (\d+) started$", line) for line in lines]
    started = [m for m in started if m]
    if not started:
        return None
    study, group, number = started[-1].group(1), started[-1].group(2), int(started[-1].group(3))
    name = f"{study}: {group}" if study else group
    if any(f"] {name}, trial {number} done: " in line for line in lines):
        return None
    study_folder = folder / study if study else folder
    run = RunDir(study_folder / "runs" / group / f"trial-{number:04d}-seed-0")
    return (group, number, run) if run.checkpoints.is_dir() and list_checkpoints(run.checkpoints) else None


def run_study_killing_a_worker(tmp: Path, storage: str) -> dict:
    spec_path = tmp / "killed_worker.yaml"
    spec_path.write_text(yaml.safe_dump(SPEC, sort_keys=False))
    folder = tmp / "study"
    assert main(["study", "create", str(spec_path), "--out", str(folder), "--storage", storage]) == 0
    victim_log, survivor_log = tmp / "victim.log", tmp / "survivor.log"
    victim, survivor = worker(folder, victim_log), worker(folder, survivor_log)
    deadline = time.time() + 300
    while (found := trial_in_progress(victim_log, folder)) is None:
        assert victim.poll() is None and time.time() < deadline, victim_log.read_text()
        time.sleep(0.05)
    group, number, run = found
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    before_kill = read_metrics(run)
    assert survivor.wait(timeout=600) == 0, survivor_log.read_text()
    return {"folder": folder, "group": group, "number": number, "run": run, "before_kill": before_kill,
            "survivor_log": survivor_log.read_text()}


def check_the_study(outcome: dict) -> None:
    _, studies = load_studies(StudyDir(outcome["folder"]))
    trials = {group["loss"]: study.get_trials() for group, study in studies}
    complete = {g: [t for t in ts if t.state.name == "COMPLETE"] for g, ts in trials.items()}
    failed = [t for ts in trials.values() for t in ts if t.state.name == "FAIL"]
    assert {g: len(ts) for g, ts in complete.items()} == {"ns": 3, "hinge": 3}  # exactly as many as queued
    assert not [t for ts in trials.values() for t in ts if t.state.name in ("WAITING", "RUNNING")]
    killed_group = outcome["group"].split("=")[1]
    [killed] = failed
    assert killed.number == outcome["number"] and killed in trials[killed_group]
    assert killed.user_attrs["failure"] == "its worker stopped (killed or lost)"
    [retry] = [t for t in complete[killed_group] if t.user_attrs.get("retry_of") == killed.number]
    assert retry.params == killed.params and retry.user_attrs["run_prefix"] == killed.user_attrs["run_prefix"]
    assert f"trial {killed.number}: its worker stopped; queued again" in outcome["survivor_log"]
    # The trial's compute counts both attempts: the killed one from its claim to its last heartbeat (every
    # 0.5 s here), and the retry's recorded wall times.
    killed_s = killed.user_attrs["heartbeat"] - killed.datetime_start.timestamp()
    [row] = [r for r in gather(StudyDir(outcome["folder"]))[1]
             if r["group"] == outcome["group"] and r["trial"] == retry.number]
    assert killed_s > 0 and row["compute_s"] == pytest.approx(killed_s + sum(retry.user_attrs["wall_s"]), rel=1e-12)
    # No run trained twice to completion: every completed trial has a run directory of its own.
    dirs = [d for ts in complete.values() for t in ts for d in t.user_attrs["run_dirs"]]
    assert len(dirs) == len(set(dirs)) == 6
    for name in dirs:
        run = RunDir(outcome["folder"] / "runs" / name)
        steps = [r["step"] for r in read_metrics(run) if "d_loss" in r]
        assert steps == list(range(100, STEPS + 1, 100)), name  # no step logged twice, none missing
        [evals] = [[r["step"] for r in read_metrics(run) if "eval/js_to_target" in r]]
        assert evals == [500, 1000, 1500], name
        step, path = run.latest_checkpoint()
        assert step == STEPS and load_checkpoint(path)["step"] == STEPS  # checksums verified on load
        assert run.eval_result(STEPS).exists() and not list(run.checkpoints.glob(".*.tmp"))
    # The retry resumed the killed run from its checkpoint: the rows logged before it are the very same
    # (their timings included, which a run started afresh would not reproduce).
    resumed = read_metrics(outcome["run"])
    last_checkpoint = max(r["step"] for r in outcome["before_kill"] if r["step"] % 100 == 0)
    kept = [r for r in outcome["before_kill"] if r["step"] <= last_checkpoint and "steps_per_s" in r]
    assert kept and [r for r in resumed if r in kept] == kept


@pytest.fixture(scope="module")
def journal_study(tmp_path_factory):
    return run_study_killing_a_worker(tmp_path_factory.mktemp("journal"), "journal")


def test_a_worker_killed_mid_trial_loses_nothing_on_the_embedded_storage(journal_study):
    check_the_study(journal_study)


@pytest.fixture
def postgres_url():
    psycopg2 = pytest.importorskip("psycopg2", reason="the PostgreSQL test needs psycopg2-binary (in .[test])")
    try:
        admin = psycopg2.connect(**PG, connect_timeout=5)
    except psycopg2.OperationalError as err:
        pytest.skip(f"no PostgreSQL server answers at {PG['host']}:{PG['port']} as {PG['user']} ({err}); "
                    ".ci/run checks that one does")
    admin.autocommit = True
    name = f"ganscape_test_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def test_a_worker_killed_mid_trial_loses_nothing_on_postgresql(tmp_path, postgres_url):
    outcome = run_study_killing_a_worker(tmp_path, postgres_url)
    check_the_study(outcome)
    assert not (outcome["folder"] / "study.journal").exists()


def test_status_and_report_of_the_finished_study(journal_study, capsys):
    folder = journal_study["folder"]
    assert main(["study", "status", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "6 complete, 1 fail" in out and "loss=ns: 3 complete, best eval/js_to_target" in out
    assert main(["study", "report", str(folder)]) == 0
    report = folder / "report"
    rows = (report / "trials.csv").read_text().splitlines()
    assert len(rows) == 1 + 7 and rows[0].startswith("trial,state,group,param:lr,value")
    summary = (report / "summary.md").read_text()
    assert "| loss=ns | 3 | 0 |" in summary and "| loss=hinge | 3 | 0 |" in summary
    for name in ("budget_trials.png", "budget_compute.png", "top5.png", "scores.png"):
        assert (report / name).stat().st_size > 5_000, name


def test_study_run_reaps_and_replaces_a_killed_worker_and_requeues_its_trial_at_once(tmp_path):
    """Under 'study run', a worker SIGKILLed mid-trial is reaped (no zombie that looks alive), its trial is failed
    and queued again within seconds (not after the 120 s heartbeat grace the workers run with), a replacement
    worker starts on its device, the study completes with the requested trials, and 'study run' exits 0."""
    spec_path = tmp_path / "replaced.yaml"
    overrides = ["train.steps=400", "checkpoint.every=100", "checkpoint.keep=2", "eval.every=200", "eval.samples=500",
                 "log.every=100", "log.samples_every=0"]
    spec_path.write_text(yaml.safe_dump(SPEC | {"name": "replaced", "groups": {"loss": ["ns"]}, "overrides": overrides},
                                        sort_keys=False))
    folder = tmp_path / "study"
    assert main(["study", "create", str(spec_path), "--out", str(folder)]) == 0
    out = tmp_path / "run.out"
    run = subprocess.Popen([sys.executable, "-m", "ganscape", "study", "run", str(folder), "--workers", "2"],
                           stdout=open(out, "w"), stderr=subprocess.STDOUT)
    victim_log, deadline = folder / "logs" / "worker-0.log", time.time() + 300
    while not victim_log.exists() or (found := trial_in_progress(victim_log, folder)) is None:
        assert run.poll() is None and time.time() < deadline, out.read_text()
        time.sleep(0.05)
    _, number, _ = found
    [pid] = set(re.findall(r"\[[\d:]+ pid (\d+)\] ", victim_log.read_text()))
    os.kill(int(pid), signal.SIGKILL)
    killed_at = time.perf_counter()
    [(_, study)] = load_studies(StudyDir(folder))[1]
    while study.get_trials()[number].state.name == "RUNNING":
        assert time.perf_counter() - killed_at < 10, "the killed worker's trial was not given back within 10 s"
        time.sleep(0.1)
    assert run.wait(timeout=600) == 0, out.read_text()
    trials = study.get_trials()
    assert trials[number].state.name == "FAIL" and trials[number].user_attrs["failure"] == LOST
    assert sorted(t.state.name for t in trials) == ["COMPLETE"] * 3 + ["FAIL"]
    [retry] = [t for t in trials if t.user_attrs.get("retry_of") == number]
    assert retry.state.name == "COMPLETE" and retry.params == trials[number].params
    printed = out.read_text()
    assert "3 trial(s) complete, 0 pruned, 1 failed, 0 waiting" in printed
    assert "worker exit codes [-9, 0, 0], 1 worker(s) replaced" in printed and "report: " in printed
    # the replacement logs there too: a trial it ran, or (when the other worker took the retry first) its summary
    log = victim_log.read_text()
    assert len(set(re.findall(r"\[[\d:]+ pid (\d+)\] ", log)) | set(re.findall(r"^worker (\d+): ", log, re.M))) == 2


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium; "
                                             ".ci/run installs it)")
def test_the_html_report_renders_in_headless_chromium(journal_study):
    """Every image of the page loads and no script error or console error is raised (the page's own check
    script writes both counts onto <body>); a screenshot is kept beside the report."""
    folder = journal_study["folder"]
    assert main(["study", "report", str(folder)]) == 0
    page = folder / "report" / "index.html"
    browser = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               f"--user-data-dir={folder / 'chromium-profile'}"]
    dom = subprocess.run(browser + ["--virtual-time-budget=10000", "--dump-dom", page.resolve().as_uri()],
                         capture_output=True, text=True, timeout=120)
    body = re.search(r"<body([^>]*)>", dom.stdout)
    assert body, dom.stderr[-2000:]
    marks = dict(re.findall(r'data-([\w-]+)="(\d+)"', body.group(1)))
    assert int(marks["images"]) >= 6 and marks["images-loaded"] == marks["images"], marks
    assert marks["errors"] == "0", marks
    shot = folder / "report" / "screenshot.png"
    subprocess.run(browser + ["--hide-scrollbars", "--window-size=1200,2400", f"--screenshot={shot}",
                              page.resolve().as_uri()], capture_output=True, timeout=120, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    assert os.path.getsize(page) > 50_000  # the images are embedded, not linked


def test_ctrl_c_gives_the_trial_back_to_the_queue(tmp_path):
    """The first Ctrl-C stops the run after its step with a checkpoint; the worker fails the trial with the
    reason, queues it again (same parameters, same run directory) and exits with 130."""
    spec_path = tmp_path / "interrupted.yaml"
    spec_path.write_text(yaml.safe_dump(SPEC | {"groups": {"loss": ["ns"]}, "trials": 1}, sort_keys=False))
    folder = tmp_path / "study"
    assert main(["study", "create", str(spec_path), "--out", str(folder)]) == 0
    log = tmp_path / "worker.log"
    proc = worker(folder, log)
    deadline = time.time() + 300
    while trial_in_progress(log, folder) is None:
        assert proc.poll() is None and time.time() < deadline, log.read_text()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130, log.read_text()
    [(_, study)] = load_studies(StudyDir(folder))[1]
    first, retry = study.get_trials()
    assert first.state.name == "FAIL" and first.user_attrs["failure"] == "its worker was interrupted (Ctrl-C)"
    assert retry.state.name == "WAITING" and retry.user_attrs["retry_of"] == 0
    assert retry.system_attrs["fixed_params"] == first.params
    run = RunDir(folder / "runs" / "loss=ns" / "trial-0000-seed-0")
    assert 0 < run.latest_checkpoint()[0] < STEPS


@pytest.mark.parametrize("storage", ["journal", "postgresql"])
def test_the_claim_lock_lets_one_worker_claim_at_a_time(tmp_path, request, storage):
    """Two workers' locks on one study (a file lock for the journal, an advisory lock on PostgreSQL, each on
    its own connection): the second waits while the first holds it and gets it once it is released."""
    import threading

    from ganscape.study.leases import claim_lock

    url = "journal" if storage == "journal" else request.getfixturevalue("postgres_url")
    first, second = (claim_lock(url, tmp_path, "killed_worker") for _ in range(2))
    entered = threading.Event()

    def claim_elsewhere():
        with second:
            entered.set()

    with first:
        other = threading.Thread(target=claim_elsewhere)
        other.start()
        assert not entered.wait(1.0)
    assert entered.wait(30)
    other.join()
    with first:  # released by the second holder too
        pass
