"""What each paper's experiments cost: FLOPs per run and per study, and the hours they take at a given speed.

    python benchmarks/paper_budgets.py                          # 100 TFLOP/s, at most 50 steps/s per GPU (assumed)
    python benchmarks/paper_budgets.py --tflops 180 --gpus 8    # at the speed gpu_check measured, on 8 GPUs

For every built-in preset and study that reproduces a paper (docs/reproduce.md), the FLOPs of one training step
are counted with ``torch.utils.flop_counter`` on fake tensors (shapes only: nothing is computed, so BigGAN at
128x128 costs a second on any CPU): G's and D's forward passes for one sample, then a step as

    n_disc x (G forward + 3 x D forward on 2 batches) + 3 x G forward + 3 x D forward

per sample (a backward pass counted as twice its forward), times the batch and its accumulated micro-batches.
Penalties (a gradient penalty adds about one more D forward and backward per D update), evaluations and data
loading are left out, so the hours are a floor at the given speed. A run takes its FLOPs at ``--tflops`` or its
steps at ``--steps-per-s``, whichever is longer: small networks are bound by kernel launches, not arithmetic (50
G steps/s is the goal for the ResNet-CIFAR step). A study's runs are its groups x trials x
seeds, each at its first trial's settings (the searched n_disc changes the cost of a run of a fixed D budget
little). ``--tflops`` is the speed achieved on real steps, not the GPU's peak: ``benchmarks/gpu_check.py``
measures it (its GFLOP/s column); ``--gpus`` divides the hours by the GPUs working in parallel (one run each,
or one run spread over them), assuming perfect scaling.
"""

from __future__ import annotations

import argparse
import warnings

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils.flop_counter import FlopCounterMode

from ganscape.config import Experiment, load_config
from ganscape.errors import ConfigWarning
from ganscape.nets import ModelSpec, build_discriminator, build_generator
from ganscape.study.engine import example_params
from ganscape.study.spec import load_spec
from ganscape.training.work import in_g_updates

# (paper, what, preset or study, (channels, height, width), classes): the data shape and classes the networks see
EXPERIMENTS = [
    ("Kurach et al.", "SNDCGAN on CIFAR-10, one run", "landscape_sndcgan_cifar10", (3, 32, 32), 0),
    ("Kurach et al.", "ResNet-CIFAR on CIFAR-10, one run", "landscape_resnet_cifar_cifar10", (3, 32, 32), 0),
    ("Kurach et al.", "study: CIFAR-10 x SNDCGAN, wide", "study:landscape_cifar10_sndcgan_wide", (3, 32, 32), 0),
    ("Kurach et al.", "study: CIFAR-10 x ResNet-CIFAR, wide", "study:landscape_cifar10_resnet_cifar_wide",
     (3, 32, 32), 0),
    ("Kurach et al.", "study: CelebA-HQ-128 x ResNet19, wide", "study:landscape_celebahq128_resnet19_wide",
     (3, 128, 128), 0),
    ("Kurach et al.", "study: LSUN-Bedroom-128 x ResNet19, wide", "study:landscape_lsun_bedroom128_resnet19_wide",
     (3, 128, 128), 0),
    ("Xiang & Li", "study: WN vs BN vs none, DCGAN on CelebA 64", "study:xiang_li_normalization", (3, 64, 64), 0),
    ("Mescheder et al.", "ResNet with R1 on CelebA-HQ 1024, one run", "gan_stability_celebahq1024",
     (3, 1024, 1024), 0),
    ("Mescheder et al.", "ResNet with R1 on LSUN bedroom 256, one run", "gan_stability_lsun_bedroom256",
     (3, 256, 256), 0),
    ("Mescheder et al.", "study: regularizers on CIFAR-10", "study:mescheder_regularizers_cifar10", (3, 32, 32), 0),
    ("Brock et al.", "BigGAN on ImageNet 128, one run", "biggan_imagenet128", (3, 128, 128), 1000),
    ("Brock et al.", "BigGAN-deep on ImageNet 128, one run", "biggan_deep_imagenet128", (3, 128, 128), 1000),
    ("Brock et al.", "study: Table 1's ablation", "study:biggan_ablation", (3, 128, 128), 1000),
]


def forward_flops(cfg: Experiment, shape: tuple[int, ...], classes: int) -> tuple[float, float]:
    """FLOPs of G's and of D's forward pass for one sample, counted on fake tensors over a batch of two (batch norm
    in training mode needs more than one sample)."""
    spec = ModelSpec(shape, classes, tuple(str(c) for c in range(classes)), cfg.latent.dim, cfg.latent.dist)
    with FakeTensorMode():
        G, D = build_generator(cfg.g, spec), build_discriminator(cfg.d, spec)
        z = torch.randn(2, cfg.latent.dim)
        labels = torch.zeros(2, dtype=torch.long) if classes else None
        with FlopCounterMode(display=False) as counted:
            images = G(z, labels) if classes else G(z)
        g = counted.get_total_flops()
        with FlopCounterMode(display=False) as counted:
            D(images, labels) if classes else D(images)
        return g / 2, counted.get_total_flops() / 2


def step_flops(cfg: Experiment, g: float, d: float) -> float:
    """One training step's FLOPs (see the module docstring)."""
    per_sample = cfg.train.n_disc * (g + 3 * 2 * d) + 3 * g + 3 * d
    return per_sample * cfg.train.batch_size * cfg.train.accumulate


def configs_of(name: str) -> list[tuple[Experiment, int]]:
    """A preset's config, or each group's config of a study (at its first trial) with its runs (trials x seeds)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        if not name.startswith("study:"):
            return [(load_config(name), 1)]
        spec = load_spec(name.removeprefix("study:"))
        return [(spec.trial_config(group, example_params(spec, group), 0), spec.trials * spec.seeds)
                for group in spec.group_names()]


def budget(name: str, shape: tuple[int, ...], classes: int, steps_per_s: float, flops_per_s: float) -> dict:
    """Runs, G steps per run, total FLOPs and GPU-seconds of a preset or study: each run takes its FLOPs at
    ``flops_per_s``, or its steps at ``steps_per_s``, whichever is longer (small networks are bound by kernel
    launches, not by arithmetic)."""
    runs, steps, flops, seconds, cache = 0, 0, 0.0, 0.0, {}
    for cfg, count in configs_of(name):
        cfg = in_g_updates(cfg)
        key = (repr(cfg.g), repr(cfg.d), cfg.latent.dim)
        if key not in cache:
            cache[key] = forward_flops(cfg, shape, classes)
        run_flops = cfg.train.steps * step_flops(cfg, *cache[key])
        runs, steps, flops = runs + count, cfg.train.steps, flops + count * run_flops
        seconds += count * max(run_flops / flops_per_s, cfg.train.steps / steps_per_s)
    return {"runs": runs, "steps": steps, "flops": flops, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tflops", type=float, default=100.0, help="TFLOP/s achieved per GPU (default: 100)")
    parser.add_argument("--steps-per-s", type=float, default=50.0,
                        help="the most G steps per second a GPU runs, whatever the network (default: 50)")
    parser.add_argument("--gpus", type=int, default=1, help="GPUs working in parallel (default: 1)")
    args = parser.parse_args()
    print(f"at {args.tflops:g} TFLOP/s achieved and at most {args.steps_per_s:g} G steps/s per GPU, {args.gpus} "
          "GPU(s); penalties, evaluations and data loading left out")
    print("| paper | experiment | runs | G steps per run | PFLOP | hours |\n|---|---|---|---|---|---|")
    for paper, what, name, shape, classes in EXPERIMENTS:
        cost = budget(name, shape, classes, args.steps_per_s, args.tflops * 1e12)
        print(f"| {paper} | {what} | {cost['runs']} | {cost['steps']:,} | {cost['flops'] / 1e15:,.0f} "
              f"| {cost['seconds'] / args.gpus / 3600:,.1f} |")


if __name__ == "__main__":
    main()
