"""The default job (``ganscape train``) across seeds and PyTorch's CPU kernel choices.

    python benchmarks/default_job.py [--seeds 0,1,2,3,4] [--kernels native,avx2,default] [--jobs 1] [key=value ...]

Runs ``ganscape train train.seed=N`` once per seed and kernel choice, each in its own process with
``ATEN_CPU_CAPABILITY`` set (``native``: unset, the best the CPU offers), and prints the final
evaluation of the sampling generator (modes covered, high-quality samples, KL to uniform), read from
the run directory, with the wall time and the median steps/s. Float kernels differ in their last
digits, and a GAN amplifies such differences, so this is what shows whether the default job reaches
every mode on CPUs other than the one it was tuned on. The load average is printed with each run,
since other processes slow the runs down; ``steps/s`` at low load gives the idle speed. ``--jobs``
runs that many at once (each run uses one thread), which changes the times but not the results.
Extra ``key=value`` settings apply to every run (to try other defaults).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

NATIVE = "native"  # ATEN_CPU_CAPABILITY unset


def kernel_env(kernel: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("ATEN_CPU_CAPABILITY", None)
    if kernel != NATIVE:
        env["ATEN_CPU_CAPABILITY"] = kernel
    return env


def capability_in_use(kernel: str) -> str:
    """The kernel set PyTorch actually runs under this choice (it falls back if the CPU lacks one)."""
    probe = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    out = subprocess.run([sys.executable, "-c", probe], env=kernel_env(kernel), check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


def final_eval(run_dir: Path) -> dict:
    """The values of the last evaluation of the sampling (EMA) generator."""
    last = sorted(p for p in (run_dir / "eval").glob("step_*.json") if not p.stem.endswith("_raw"))[-1]
    return json.loads(last.read_text())["values"]


def median_speed(run_dir: Path) -> float:
    with open(run_dir / "metrics.jsonl") as lines:
        rates = [row["steps_per_s"] for row in map(json.loads, lines) if "steps_per_s" in row]
    return statistics.median(rates)


def train(seed: int, kernel: str, root: Path, overrides: list[str]) -> dict:
    name = f"seed{seed}-{kernel}"
    command = [sys.executable, "-m", "ganscape", "train", f"train.seed={seed}", f"run.root={root}",
               f"run.name={name}", *overrides]
    tic = time.perf_counter()
    done = subprocess.run(command, env=kernel_env(kernel), capture_output=True, text=True)
    seconds = time.perf_counter() - tic
    if done.returncode != 0:
        raise SystemExit(f"seed {seed}, kernel {kernel}: ganscape train failed:\n{done.stderr}")
    return {**final_eval(root / name), "seconds": seconds, "steps_per_s": median_speed(root / name),
            "load": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds")
    parser.add_argument("--kernels", default=f"{NATIVE},avx2,default",
                        help="ATEN_CPU_CAPABILITY values; native: unset")
    parser.add_argument("--root", default="", help="keep the runs here (default: a temporary directory)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at the same time (default: %(default)s)")
    parser.add_argument("overrides", nargs="*", help="settings for every run, e.g. train.steps=4000")
    args = parser.parse_args()
    seeds = [int(seed) for seed in args.seeds.split(",")]
    labels = {kernel: f"{kernel} ({capability_in_use(kernel)})" for kernel in args.kernels.split(",")}
    runs = [(seed, kernel) for kernel in labels for seed in seeds]
    with tempfile.TemporaryDirectory() as scratch, ThreadPoolExecutor(args.jobs) as pool:
        root = Path(args.root or scratch)
        print(f"{'kernel':<18} {'seed':>4} {'modes':>5} {'HQ %':>6} {'KL':>7} {'time s':>7} "
              f"{'steps/s':>7} {'load':>5}", flush=True)
        rows = []
        for (seed, kernel), row in zip(runs, pool.map(lambda run: train(*run, root, args.overrides), runs)):
            rows.append(row)
            print(f"{labels[kernel]:<18} {seed:>4} {row['modes_covered']:>3}/{row['num_modes']} "
                  f"{row['high_quality_pct']:6.1f} {row['kl_to_uniform']:7.4f} {row['seconds']:7.1f} "
                  f"{row['steps_per_s']:7.1f} {row['load']:5.2f}", flush=True)
    complete = sum(row["modes_covered"] == row["num_modes"] for row in rows)
    print(f"all modes in {complete} of {len(rows)} runs; "
          + ", ".join(f"{key} {min(row[key] for row in rows):.4g} to {max(row[key] for row in rows):.4g}"
                      for key in ("modes_covered", "high_quality_pct", "kl_to_uniform", "seconds")))


if __name__ == "__main__":
    main()
