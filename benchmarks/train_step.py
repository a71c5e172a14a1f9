"""Cost of each landscape part in one training step, as a ratio to the plain step in the same run.

    python benchmarks/train_step.py [--steps 300] [--threads 1] [key=value ...]

Times ``train_step`` (no logging, evaluation or checkpoints) for the default 2-D config with one
change at a time (a normalization, a penalty, n_disc) and prints steps/s and the ratio to the
unmodified config measured in the same process. Each case is timed three times after a warm-up
and the best time is kept, which filters out interference from other processes.
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch

from ganscape.config import load_config
from ganscape.data import build_dataset
from ganscape.errors import ConfigWarning
from ganscape.objectives.objective import Objective
from ganscape.training.state import build_state
from ganscape.training.step import train_step

CASES = {
    "plain": [],
    "D spectral norm": ["d.norm=spectral"],
    "D layer norm": ["d.norm=layer"],
    "G and D weight norm": ["g.norm=weight", "d.norm=weight"],
    "wgan_gp": ["penalty=wgan_gp"],
    "r1": ["penalty=r1"],
    "instance noise": ["penalty=instance_noise"],
    "n_disc 5": ["train.n_disc=5"],
    "no EMA": ["train.ema=0"],
}


def steps_per_second(overrides: list[str], steps: int) -> float:
    cfg = load_config(None, overrides)
    data = build_dataset(cfg)
    state = build_state(cfg, data, torch.device("cpu"))
    objective = Objective.from_config(cfg)
    for _ in range(20):
        train_step(state, data, objective, cfg)
    best = float("inf")
    for _ in range(3):
        tic = time.perf_counter()
        for _ in range(steps):
            train_step(state, data, objective, cfg)
        best = min(best, time.perf_counter() - tic)
    return steps / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("overrides", nargs="*", help="applied to every case, e.g. g.width=128 d.width=128")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", ConfigWarning)
    # The plain case runs first and last; the spread between the two shows the timing noise.
    first = steps_per_second(args.overrides, args.steps)
    rates = {name: steps_per_second(args.overrides + extra, args.steps)
             for name, extra in CASES.items() if name != "plain"}
    last = steps_per_second(args.overrides, args.steps)
    baseline = max(first, last)
    print(f"{'case':<22} {'steps/s':>8} {'ratio to plain':>15}")
    print(f"{'plain':<22} {baseline:8.1f} {1.0:15.2f}   (first {first:.1f}, last {last:.1f})")
    for name, rate in rates.items():
        print(f"{name:<22} {rate:8.1f} {rate / baseline:15.2f}")


if __name__ == "__main__":
    main()
