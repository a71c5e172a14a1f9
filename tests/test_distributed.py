"""One run on several processes: ``torchrun --nproc_per_node 2 -m ganscape train`` with gloo on the CPU.

The independent value for a 2-process run is a 1-process run of the same config with
``train.shards=2``: the same shards drawn from the same streams, trained in one process, with the
gradient sum done locally instead of across processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ganscape.store.checkpoint import list_checkpoints, load_checkpoint

TORCHRUN = Path(sys.executable).with_name("torchrun")
pytestmark = pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun is not installed beside this Python")

IMAGE = ["data.name=digits", "data.conditional=true", "g.arch=sndcgan", "d.arch=sndcgan", "g.width=8", "d.width=8",
         "g.norm=none", "d.norm=layer", "latent.dim=16", "train.batch_size=8", "train.accumulate=2",
         "penalty=wgan_gp:1,instance_noise:0.05", "loss=wgan", "train.steps=3", "checkpoint.every=3",
         "log.every=1", "log.samples_every=0", "log.tensorboard=false", "train.ema=0.9"]
MLP = ["train.batch_size=32", "log.every=50", "log.tensorboard=false", "train.ema=0.9"]


def ganscape(args: list[str], cwd: Path, processes: int = 1, **popen) -> subprocess.Popen | subprocess.CompletedProcess:
    command = ([str(TORCHRUN), "--nproc_per_node", str(processes), "--master_port", str(29500 + os.getpid() % 500),
                "-m", "ganscape"] if processes > 1 else [sys.executable, "-m", "ganscape"]) + args
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if popen:
        return subprocess.Popen(command, cwd=cwd, env=env, **popen)
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def final_state(run: Path) -> dict:
    step, path = list_checkpoints(run / "checkpoints")[-1]
    return load_checkpoint(path)


def assert_same_networks(a: dict, b: dict, exact: bool) -> None:
    for net in ("G", "D", "G_ema"):
        for key, value in a[net].items():
            if exact:
                assert torch.equal(value, b[net][key]), f"{net}.{key}"
            else:
                torch.testing.assert_close(value, b[net][key], rtol=1e-4, atol=1e-5, msg=f"{net}.{key}")


def test_two_processes_train_what_one_process_trains_with_two_shards(tmp_path):
    """Conditional images, a gradient penalty and instance noise (their own random draws per shard) and two
    accumulated micro-batches: after 3 steps the 2-process run's G, D and EMA equal the 1-process run's with
    train.shards=2 (to float tolerance: the gradients are summed in another order), and the checkpoint holds
    both shards' streams."""
    common = IMAGE + ["run.root=runs"]
    ganscape(["train", *common, "run.name=one", "train.shards=2"], tmp_path)
    out = ganscape(["train", *common, "run.name=two"], tmp_path, processes=2)
    assert "(2 processes)" in out.stdout
    one, two = final_state(tmp_path / "runs/one"), final_state(tmp_path / "runs/two")
    assert one["step"] == two["step"] == 3
    assert_same_networks(one, two, exact=False)
    assert len(two["rng"]["shards"]) == 1 and two["config"]["train"]["shards"] == 2
    for stream in ("data", "latent", "noise"):
        assert torch.equal(one["rng"][stream], two["rng"][stream])
        assert torch.equal(one["rng"]["shards"][0][stream], two["rng"]["shards"][0][stream])
    # one writer: a single log with one row per step, and one config
    rows = (tmp_path / "runs/two/metrics.jsonl").read_text().splitlines()
    assert len([r for r in rows if '"d_loss"' in r]) == 3


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def wait_until_gone(pids: list[int], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids), f"{pids} still run {timeout:.0f} s after SIGKILL"


def test_a_two_process_run_killed_and_resumed_continues_exactly(tmp_path):
    """SIGKILL to torchrun and its workers once a checkpoint exists, then `torchrun ... resume`:
    the final networks equal those of a 2-process run never killed, bit for bit."""
    common = MLP + ["train.steps=400", "checkpoint.every=100", "run.root=runs"]
    ganscape(["train", *common, "run.name=straight"], tmp_path, processes=2)
    victim = ganscape(["train", *common, "run.name=killed"], tmp_path, processes=2, start_new_session=True,
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list_checkpoints(tmp_path / "runs/killed/checkpoints") and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = children(victim.pid)  # torchrun starts each worker in a session of its own: not in its group
    for pid in [victim.pid, *workers]:
        os.kill(pid, signal.SIGKILL)
    victim.wait()
    wait_until_gone(workers)  # a worker holds the run's lock until it is gone
    killed_at = list_checkpoints(tmp_path / "runs/killed/checkpoints")[-1][0]
    ganscape(["resume", "runs/killed"], tmp_path, processes=2)
    straight, resumed = final_state(tmp_path / "runs/straight"), final_state(tmp_path / "runs/killed")
    assert resumed["step"] == 400 and 100 <= killed_at
    assert_same_networks(straight, resumed, exact=True)


def test_a_two_process_run_resumes_on_one_process(tmp_path):
    """The shards, not the processes, fix the random streams: a 2-process run stopped at step 100 and resumed
    by one process ends where the 2-process run ends (to float tolerance)."""
    common = MLP + ["train.steps=200", "checkpoint.every=100", "run.root=runs"]
    ganscape(["train", *common, "run.name=straight"], tmp_path, processes=2)
    ganscape(["train", *common, "run.name=moved", "--until", "100"], tmp_path, processes=2)
    ganscape(["resume", "runs/moved"], tmp_path)
    assert_same_networks(final_state(tmp_path / "runs/straight"), final_state(tmp_path / "runs/moved"), exact=False)


def test_shards_that_processes_cannot_share_are_refused(tmp_path):
    result = subprocess.run([str(TORCHRUN), "--nproc_per_node", "2", "--master_port", str(29000 + os.getpid() % 500),
                             "-m", "ganscape", "train", *MLP, "train.batch_size=36", "train.shards=3", "run.root=runs"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "train.shards=3 cannot be shared by 2 processes; use a multiple of 2" in result.stdout + result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_spectral_norm_vectors_and_weights_stay_identical_across_processes(tmp_path):
    """Two processes train a spectrally normalised D (with R1, whose double backward runs in each process) and
    a batch-norm G for 3 steps: every u, every parameter and the EMA are bit-identical in both processes."""
    script = tmp_path / "check.py"
    script.write_text('''
import torch
from ganscape.config import load_config
from ganscape.data import build_dataset
from ganscape.objectives.objective import Objective
from ganscape.training import distributed
from ganscape.training.state import build_state
from ganscape.training.step import train_step

processes, device = distributed.start("cpu")
cfg = load_config(None, ["data.name=digits", "g.arch=sndcgan", "d.arch=sndcgan", "g.width=8", "d.width=8",
                         "g.norm=batch", "d.norm=spectral", "penalty=r1:1", "latent.dim=16", "train.batch_size=8"])
data = build_dataset(cfg)
state = build_state(cfg, data, torch.device(device), processes)
objective = Objective.from_config(cfg)
for _ in range(3):
    train_step(state, data, objective, cfg)
mine = torch.cat([t.flatten().float() for net in (state.G, state.D, state.ema.model)
                  for name, t in [*net.named_parameters(), *net.named_buffers()]
                  if not name.endswith(("running_mean", "running_var", "num_batches_tracked"))])
everyone = distributed.gather(mine, processes)
assert state.shards == (processes.rank,) and len(everyone) == 2 and torch.equal(everyone[0], everyone[1])
if processes.main:
    print("IDENTICAL", mine.numel())
distributed.stop()
''')
    result = subprocess.run([str(TORCHRUN), "--nproc_per_node", "2", "--master_port", str(28500 + os.getpid() % 500),
                             str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0 and "IDENTICAL" in result.stdout, result.stdout + result.stderr


def test_synchronised_batch_norm_on_cpu_processes_is_refused_with_the_reason(tmp_path):
    result = subprocess.run([str(TORCHRUN), "--nproc_per_node", "2", "--master_port", str(28000 + os.getpid() % 500),
                             "-m", "ganscape", "train", *MLP, "g.norm=batch", "train.sync_bn=true", "train.device=cpu",
                             "run.root=runs"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "train.sync_bn computes batch-norm statistics over every process's batch, which PyTorch does on CUDA " \
           "GPUs only" in result.stdout + result.stderr
