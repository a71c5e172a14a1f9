"""Cost of augmenting D's inputs in one training step, as a ratio to the step without it in the same run.

    python benchmarks/augment_step.py [--steps 10] [--rounds 3] [--threads 2] [--device cpu] [key=value ...]

Times ``train_step`` (no logging, evaluation or checkpoints) on the digits preset (digits_sndcgan) with
no augmentation, DiffAugment (color, translation, cutout) and ADA (blit, geom, color) at fixed p (its
speed set so high that p does not move while timed: ADA draws nothing at p = 0, and its cost grows with
the share of images transformed). The D-input pipeline transforms the real and the generated batch in
each D update and the generated batch in G's update. The cases are timed in interleaved rounds after a
warm-up, and each keeps its best time, which filters out interference from other processes.
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

PRESET = "digits_sndcgan"
FIXED_P = "augment.ada_speed_images=1000000000000"  # p moves by images / 1e12 per adjustment: negligibly
CASES = {
    "none": [],
    "diffaugment": ["augment=diffaugment:color,translation,cutout"],
    "ada p=0.2": ["augment=ada", "augment.ada_p=0.2", FIXED_P],
    "ada p=0.6": ["augment=ada", "augment.ada_p=0.6", FIXED_P],
    "ada p=1": ["augment=ada", "augment.ada_p=1", FIXED_P],
}


class Case:
    """One config's run state, stepped on demand."""

    def __init__(self, overrides: list[str], device: torch.device):
        self.cfg = cfg = load_config(PRESET, overrides)
        self.data = build_dataset(cfg)
        if device.type != "cpu":
            self.data.to_device(device)
        self.state = build_state(cfg, self.data, device)
        self.objective = Objective.from_config(cfg)
        self.device = device

    def seconds(self, steps: int) -> float:
        tic = time.perf_counter()
        for _ in range(steps):
            train_step(self.state, self.data, self.objective, self.cfg)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - tic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="steps per timing")
    parser.add_argument("--rounds", type=int, default=3, help="timings of each case, interleaved")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("overrides", nargs="*", help="applied to every case, e.g. train.batch_size=128")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", ConfigWarning)
    device = torch.device(args.device)
    cases = {name: Case(args.overrides + extra, device) for name, extra in CASES.items()}
    for case in cases.values():
        case.seconds(2)  # warm-up
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(args.rounds):  # interleaved, so that a slow spell of the machine hits every case alike
        for name, case in cases.items():
            best[name] = min(best[name], case.seconds(args.steps))
    print(f"{PRESET}, {args.device}, {args.threads} thread(s), best of {args.rounds} x {args.steps} steps")
    print(f"{'case':<14} {'steps/s':>8} {'time ratio to none':>19}")
    for name, seconds in best.items():
        print(f"{name:<14} {args.steps / seconds:8.2f} {seconds / best['none']:19.2f}")

if __name__ == "__main__":
    main()
