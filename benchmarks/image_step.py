"""Speed of ganscape's training step on image GANs, against a plain PyTorch step and torch-mimicry, in one run.

    python benchmarks/image_step.py                                   # CPU: small batch, every variant
    python benchmarks/image_step.py --device cuda --batch 64 --steps 50 --variants all   # a GPU

The reference configuration is an SN-GAN ResNet for CIFAR-10 (batch 64, 5 D steps per G step, hinge
loss, Adam, spectral norm in D, batch norm in G): ganscape's ``resnet_cifar`` (G width 256, D width
128). Other architectures: ``sndcgan``, ``biggan32`` (BigGAN-PyTorch's CIFAR settings) and
``biggan128`` (its ImageNet settings, at the given batch).

For each architecture and each variant of ganscape's step (``train.precision``, ``train.compile``,
``train.fused_d``), and for two baselines on the same device in the same process:

* plain: a step written here in plain PyTorch for the same networks (fp32, D called separately on
  real and fake, hinge loss, Adam, EMA of G), fed from the same in-memory images;
* torch-mimicry: its SNGAN-32 networks (``pip install --no-deps torch-mimicry``; only its networks
  are imported) in the same plain step, as its trainer runs them (reference configuration only).

it prints milliseconds per G step (best of ``--repeats`` runs of ``--steps`` steps after a warm-up, so
compilation is not timed), the achieved GFLOP/s (floating-point operations of one step counted by
``torch.utils.flop_counter.FlopCounterMode``, divided by its time), the peak memory (CUDA only) and
the ratio of each step's speed to the plain step's and to torch-mimicry's.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import types
import warnings

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from ganscape.config import load_config
from ganscape.data import build_dataset
from ganscape.errors import ConfigWarning
from ganscape.objectives.objective import Objective
from ganscape.training.speed import precision_flags
from ganscape.training.state import build_state
from ganscape.training.step import train_step

REFERENCE = ["loss=hinge", "train.n_disc=5", "g_opt.lr=2e-4", "d_opt.lr=2e-4", "g_opt.beta1=0", "d_opt.beta1=0",
             "g_opt.beta2=0.9", "d_opt.beta2=0.9", "train.ema=0.999", "latent.dim=128"]
ARCHS = {
    "resnet_cifar": (32, REFERENCE + ["g.arch=resnet_cifar", "d.arch=resnet_cifar", "g.width=256", "d.width=128",
                                      "g.norm=batch", "d.norm=spectral"]),
    "sndcgan": (32, REFERENCE + ["g.arch=sndcgan", "d.arch=sndcgan", "g.width=64", "d.width=64", "g.norm=batch",
                                 "d.norm=spectral"]),
    "biggan32": (32, REFERENCE + ["g.arch=biggan", "d.arch=biggan", "g.width=64", "d.width=64", "g.norm=spectral",
                                  "d.norm=spectral", "g.biggan.attention=", "d.biggan.attention=",
                                  "g.biggan.shared_dim=0", "g.biggan.hierarchical=false", "train.n_disc=4",
                                  "data.conditional=true"]),
    "biggan128": (128, REFERENCE + ["g.arch=biggan", "d.arch=biggan", "g.width=96", "d.width=96", "g.norm=spectral",
                                    "d.norm=spectral", "latent.dim=120", "train.n_disc=1", "data.conditional=true"]),
}
VARIANTS = {
    "fp32, D called twice": ["train.fused_d=false"],
    "fp32": [],
    "tf32": ["train.precision=tf32"],
    "bf16": ["train.precision=bf16"],
    "bf16 + compile": ["train.precision=bf16", "train.compile=inductor"],
}
QUICK = ["fp32, D called twice", "fp32", "bf16"]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def flops_of(step) -> int:
    """Floating-point operations of one (eager) step, as FlopCounterMode counts them."""
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def time_steps(step, device: torch.device, steps: int, repeats: int) -> tuple[float, float]:
    """(seconds per step, peak bytes): best of ``repeats`` timed runs after two warm-up steps."""
    for _ in range(2):
        step()
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        tic = time.perf_counter()
        for _ in range(steps):
            step()
        synchronize(device)
        best = min(best, (time.perf_counter() - tic) / steps)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else float("nan")
    return best, peak


def ganscape_step(overrides: list[str], device: torch.device):
    """ganscape's step for a config, with its state and data."""
    cfg = load_config(None, overrides)
    data = build_dataset(cfg)
    if device.type != "cpu":
        data.to_device(device)
    state = build_state(cfg, data, device)
    objective = Objective.from_config(cfg)
    return (lambda: train_step(state, data, objective, cfg)), state, cfg, data


def plain_step(G, D, cfg, data, device: torch.device, conditional: bool):
    """The step as a plain PyTorch script writes it: fp32, D on real and on fake separately, hinge loss."""
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.g_opt.lr, betas=(cfg.g_opt.beta1, cfg.g_opt.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.d_opt.lr, betas=(cfg.d_opt.beta1, cfg.d_opt.beta2))
    ema = [p.detach().clone() for p in G.parameters()]
    rng = torch.Generator().manual_seed(0)
    batch = cfg.train.batch_size

    def step():
        for _ in range(cfg.train.n_disc):
            real, labels = data.sample(batch, rng)
            real = real.to(device)
            labels = labels.to(device) if conditional else None
            z = torch.randn(batch, cfg.latent.dim, device=device)
            with torch.no_grad():
                fake = G(z, labels) if conditional else G(z)
            real_logits = D(real, labels) if conditional else D(real)
            fake_logits = D(fake, labels) if conditional else D(fake)
            loss = F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
            opt_d.zero_grad(set_to_none=True)
            loss.backward()
            opt_d.step()
        z = torch.randn(batch, cfg.latent.dim, device=device)
        fake = G(z, labels) if conditional else G(z)
        loss = -(D(fake, labels) if conditional else D(fake)).mean()
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
        with torch.no_grad():
            torch._foreach_lerp_(ema, [p.detach() for p in G.parameters()], 1 - cfg.train.ema)
    return step


def mimicry_networks(device: torch.device):
    """torch-mimicry's SNGAN-32 G (ngf 256) and D (ndf 128), imported without its package's other modules."""
    spec = importlib.util.find_spec("torch_mimicry")
    if spec is None:
        return None
    package = types.ModuleType("torch_mimicry")  # its __init__ would import torchvision and its trainers
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules.setdefault("torch_mimicry", package)
    from torch_mimicry.nets.sngan.sngan_32 import SNGANDiscriminator32, SNGANGenerator32

    return SNGANGenerator32().to(device), SNGANDiscriminator32().to(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=16, help="batch size (the reference configuration: 64)")
    parser.add_argument("--steps", type=int, default=1, help="G steps per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--archs", default="resnet_cifar,sndcgan,biggan32", help=f"of {', '.join(ARCHS)}")
    parser.add_argument("--variants", default="quick", help="quick, all, or names from: " + "; ".join(VARIANTS))
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConfigWarning)
    device = torch.device(args.device)
    variants = (QUICK if args.variants == "quick" else list(VARIANTS) if args.variants == "all"
                else [v.strip() for v in args.variants.split(";")])
    print(f"device {device}, batch {args.batch}, best of {args.repeats} x {args.steps} step(s), torch {torch.__version__}")
    print(f"{'arch':<13} {'step':<28} {'ms/step':>9} {'GFLOP/s':>9} {'peak MiB':>9} {'x plain':>8} {'x mimicry':>9}")
    for arch in args.archs.split(","):
        size, overrides = ARCHS[arch]
        base = overrides + [f"train.batch_size={args.batch}", "data.name=stacked_digits", f"data.resolution={size}",
                            f"train.device={device}"]
        _, state, cfg, data = ganscape_step(base, device)  # networks of their own for the plain step
        plain = plain_step(state.G, state.D, cfg, data, device, cfg.data.conditional)
        flops = flops_of(plain)  # the same arithmetic in every variant: GFLOP/s compares their speed
        rows = {"plain PyTorch": time_steps(plain, device, args.steps, args.repeats)}
        mimicry = mimicry_networks(device) if arch == "resnet_cifar" else None
        if mimicry is not None:
            peer = plain_step(*mimicry, cfg, data, device, False)
            peer_flops = flops_of(peer)
            rows["torch-mimicry SNGAN-32"] = time_steps(peer, device, args.steps, args.repeats)
        for name in variants:
            with precision_flags(load_config(None, VARIANTS[name]).train.precision):  # as `ganscape train` sets them
                rows[f"ganscape {name}"] = time_steps(ganscape_step(base + VARIANTS[name], device)[0], device,
                                                      args.steps, args.repeats)
        if mimicry is None and arch == "resnet_cifar":
            print("(torch-mimicry is not installed: pip install --no-deps torch-mimicry)")
        plain_time = rows["plain PyTorch"][0]
        peer_time = rows.get("torch-mimicry SNGAN-32", (float("nan"),))[0]
        for name, (seconds, peak) in rows.items():
            work = peer_flops if name.startswith("torch-mimicry") else flops
            print(f"{arch:<13} {name:<28} {seconds * 1e3:9.1f} {work / seconds / 1e9:9.1f} {peak / 2**20:9.0f} "
                  f"{plain_time / seconds:8.2f} {peer_time / seconds:9.2f}")
        print(f"{arch:<13} {flops / 1e9:.1f} GFLOP per G step"
              + (f" (torch-mimicry's networks: {peer_flops / 1e9:.1f})" if mimicry is not None else ""))


if __name__ == "__main__":
    main()
