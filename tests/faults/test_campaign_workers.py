"""A campaign on PostgreSQL with a worker killed mid-trial, and its report in a real browser.

``ganscape campaign run`` starts two workers over two studies on the embedded data (ring8 and grid25);
one is killed with SIGKILL while it trains a trial whose run has written a checkpoint. The supervisor
must replace it, the trial must be queued again and resumed, and the campaign must end with every
queued trial complete, exit 0 and write a report whose every image loads in headless Chromium.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from optuna.trial import TrialState
from test_study_workers import CHROMIUM, postgres_url  # noqa: F401 - the fixture: a fresh database, dropped after

from ganscape.campaign.engine import CampaignDir
from ganscape.cli import main
from ganscape.runs import RunDir
from ganscape.store.checkpoint import list_checkpoints
from ganscape.study.engine import load_studies

STEPS = 600
STUDY = {
    "base": "ring8_grid",
    "overrides": [f"train.steps={STEPS}", "checkpoint.every=100", "checkpoint.keep=2", "eval.every=300",
                  "eval.samples=500", "log.every=100", "log.samples_every=0"],
    "groups": {"loss": ["ns", "hinge"]},
    "space": {"lr": {"log_uniform": [1e-4, 1e-3], "keys": ["g_opt.lr", "d_opt.lr"]}},
    "sampler": {"name": "sobol", "seed": 0},
    "objective": {"metric": "js_to_target", "direction": "minimize"},
}
CAMPAIGN = {  # the study is a file beside the campaign's
    "name": "killed_worker_campaign",
    "trials": 2,
    "studies": [{"data": "ring8", "arch": "mlp", "study": "study.yaml"},
                {"data": "grid25", "arch": "mlp", "study": "study.yaml", "overrides": ["data.name=grid25"]}],
}
TRIALS = 2 * 2 * 2  # studies x groups x trials


def running_trial_with_a_checkpoint(folder: CampaignDir) -> tuple[int, int] | None:
    """(the worker's pid, the trial's number) of a running trial whose run has a checkpoint and at least half
    its steps to go (so that it is still running when killed)."""
    for cell in folder.read()[1]:
        for _, study in load_studies(cell.study)[1]:
            for trial in study.get_trials(states=(TrialState.RUNNING,)):
                prefix, pid = trial.user_attrs.get("run_prefix"), trial.user_attrs.get("worker", {}).get("pid")
                run = RunDir(cell.study.runs / f"{prefix}-seed-0")
                steps = [step for step, _ in list_checkpoints(run.checkpoints)] if prefix else []
                if pid and steps and max(steps) <= STEPS // 2:
                    return pid, trial.number
    return None


@pytest.fixture
def killed_campaign(tmp_path, postgres_url):  # noqa: F811 - the fixture imported above
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "study.yaml").write_text(yaml.safe_dump(STUDY, sort_keys=False))
    spec = tmp_path / "specs" / "campaign.yaml"
    spec.write_text(yaml.safe_dump(CAMPAIGN, sort_keys=False))
    folder = CampaignDir(tmp_path / "campaign")
    assert main(["campaign", "create", str(spec), "--out", str(folder.path), "--storage", postgres_url]) == 0
    log = tmp_path / "run.log"
    runner = subprocess.Popen([sys.executable, "-m", "ganscape", "campaign", "run", str(folder.path), "--workers",
                               "2"], stdout=open(log, "w"), stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while (found := running_trial_with_a_checkpoint(folder)) is None:
        assert runner.poll() is None and time.time() < deadline, log.read_text()
        time.sleep(0.2)
    pid, number = found
    os.kill(pid, signal.SIGKILL)
    assert runner.wait(timeout=900) == 0, log.read_text()
    return folder, number, log.read_text()


def test_a_campaign_on_postgresql_survives_a_killed_worker_and_its_report_renders(killed_campaign):
    folder, killed_number, log = killed_campaign
    states = []
    for cell in folder.read()[1]:
        assert not (cell.study.path / "study.journal").exists()  # the database holds the trials
        for _, study in load_studies(cell.study)[1]:
            states += [(t.state, t.number, t.user_attrs.get("retry_of")) for t in study.get_trials()]
    complete = [s for s in states if s[0] == TrialState.COMPLETE]
    failed = [s for s in states if s[0] == TrialState.FAIL]
    assert len(complete) == TRIALS and len(failed) == 1  # every queued trial, and the killed attempt
    assert failed[0][1] == killed_number and any(retry == killed_number for _, _, retry in complete)
    assert "1 replaced" in log and "report: " in log
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)")
    page = folder.path / "report" / "index.html"
    dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                          f"--user-data-dir={folder.path / 'chromium-profile'}", "--virtual-time-budget=10000",
                          "--dump-dom", page.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    body = re.search(r"<body([^>]*)>", dom.stdout)
    assert body, dom.stderr[-2000:]
    marks = dict(re.findall(r'data-([\w-]+)="(\d+)"', body.group(1)))
    assert int(marks["images"]) >= 8 and marks["images-loaded"] == marks["images"], marks
    assert marks["errors"] == "0", marks
    assert re.findall(r"<h2>(.*?)</h2>", page.read_text()) == ["Best trial per study", "ring8 x mlp", "grid25 x mlp"]
