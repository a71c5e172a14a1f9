"""Speed of the D-input augmentations (DiffAugment's policies, ADA's groups), forward and backward.

    python benchmarks/augment_ops.py                                  # CPU, batch 64 of 32x32 RGB
    python benchmarks/augment_ops.py --device cuda --batch 64 --size 128

For each DiffAugment policy and each ADA group (at p = 1, where every transform is drawn for every
sample, the slowest case) it prints milliseconds per call of the augmentation alone and of the
augmentation plus the backward pass into the images (as in G's step), best of ``--repeats`` runs of
``--steps`` calls after a warm-up. Compare with the time of a training step (benchmarks/image_step.py)
to see what augmenting D's inputs costs.
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import torch

from ganscape.objectives.augment import ADA_GROUPS, DIFFAUGMENT, ada_augment, diffaugment

Tensor = torch.Tensor


def augmentations() -> dict[str, Callable[[Tensor, torch.Generator], Tensor]]:
    """Every policy and group alone, and each method's full set, by a printable name."""
    cases = {f"diffaugment {name}": (lambda x, g, name=name: diffaugment(x, [name], g)) for name in DIFFAUGMENT}
    cases["diffaugment color,translation,cutout"] = lambda x, g: diffaugment(x, list(DIFFAUGMENT), g)
    cases.update({f"ada {group}": (lambda x, g, group=group: ada_augment(x, 1.0, [group], g)) for group in ADA_GROUPS})
    cases["ada blit,geom,color"] = lambda x, g: ada_augment(x, 1.0, list(ADA_GROUPS), g)
    return cases


def milliseconds(call: Callable[[], object], device: torch.device, steps: int, repeats: int) -> float:
    """Best mean time of ``steps`` calls over ``repeats`` runs, after one warm-up run."""
    best = float("inf")
    for run in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for _ in range(steps):
            call()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if run > 0:
            best = min(best, (time.perf_counter() - start) / steps * 1000)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=32, help="image side in pixels")
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    generator = torch.Generator(device=device).manual_seed(0)
    x = torch.rand(args.batch, args.channels, args.size, args.size, device=device) * 2 - 1
    leaf = x.clone().requires_grad_(True)
    print(f"{args.batch} images of {args.channels}x{args.size}x{args.size} on {device}; ms per call")
    print(f"{'augmentation':40s} {'forward':>9s} {'+backward':>10s}")
    for name, augment in augmentations().items():
        forward = milliseconds(lambda: augment(x, generator), device, args.steps, args.repeats)
        both = milliseconds(lambda: augment(leaf, generator).square().sum().backward(), device, args.steps,
                            args.repeats)
        print(f"{name:40s} {forward:9.2f} {both:10.2f}")


if __name__ == "__main__":
    main()
