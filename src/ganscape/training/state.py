"""The state of a training run: networks, optimizers, EMA, random streams and the step counter.

All randomness of training is drawn from the generators held in ``GANState`` (data batches, latents,
penalty draws, the D-input pipeline's augmentation and noise) or from torch's global generator
(initialisation), and all of them are stored in every checkpoint, with the D-input pipeline's own state
(ADA's p); logging, pictures and evaluation use their own fixed-seed generators and never touch the
training streams. So a run is determined by its config, and a resumed run continues bit for bit as if it
had never stopped (on the same hardware and thread count).
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from ganscape.config import Experiment
from ganscape.data.base import is_image_data
from ganscape.errors import ConfigError, lookup
from ganscape.nets import ModelSpec, build_discriminator, build_generator, mixes_samples
from ganscape.objectives.d_input import DInput
from ganscape.training.distributed import SINGLE, Processes, shards_of
from ganscape.training.ema import EMA
from ganscape.training.optim import OPTIMIZERS
from ganscape.training.speed import compiled


def derived_seed(seed: int, stream: str) -> int:
    """A fixed, well-separated seed for each named random stream of a run."""
    return zlib.crc32(f"{seed}/{stream}".encode())


def resolve_device(name: str) -> torch.device:
    """The device that ``train.device`` names, after checking that this machine has it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device: {name!r} is not a device; use auto, cpu, cuda or cuda:N.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name} but no CUDA GPU is available; use train.device=cpu.")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"train.device={name} but this machine has {torch.cuda.device_count()} CUDA GPU(s).")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"train.device={name} but Apple's MPS is not available here; use train.device=cpu.")
    return device


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def resolve_threads(cfg: Experiment) -> int:
    """CPU threads for ``train.threads``: the number given, or with 0 (auto) one thread for MLPs, whose
    operations are too small to share (on a busy machine more threads make them many times slower,
    and a run's numbers depend on the thread count), and every available core for other networks."""
    if cfg.train.threads:
        return cfg.train.threads
    return 1 if cfg.g.arch == cfg.d.arch == "mlp" else available_cores()


@dataclass
class Streams:
    """The random streams of one shard of every batch: its data, its latents, its noise (input noise and the
    penalties' own draws)."""

    data: torch.Generator
    latent: torch.Generator
    noise: torch.Generator

    def states(self) -> dict[str, torch.Tensor]:
        return {"data": self.data.get_state(), "latent": self.latent.get_state(), "noise": self.noise.get_state()}

    def load(self, states: dict[str, torch.Tensor]) -> None:
        self.data.set_state(states["data"])
        self.latent.set_state(states["latent"])
        self.noise.set_state(states["noise"])


def shard_streams(seed: int, shard: int, device: torch.device) -> Streams:
    """Shard ``shard``'s streams; shard 0's are a one-shard run's."""
    suffix = f"/shard{shard}" if shard else ""
    return Streams(torch.Generator().manual_seed(derived_seed(seed, "data" + suffix)),
                   torch.Generator(device).manual_seed(derived_seed(seed, "latent" + suffix)),
                   torch.Generator(device).manual_seed(derived_seed(seed, "noise" + suffix)))


@dataclass
class GANState:
    """Everything needed to continue a run exactly.

    ``data_rng``, ``latent_rng`` and ``noise_rng`` are the streams of this process's first shard;
    ``more_streams`` those of its further shards (``shards`` lists the shards it trains, of
    ``total_shards``; see ``training.distributed``).
    """

    G: nn.Module
    D: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    ema: EMA | None
    data_rng: torch.Generator
    latent_rng: torch.Generator
    noise_rng: torch.Generator  # penalties and the D-input pipeline (augmentation, instance noise)
    spec: ModelSpec | None = None  # what the networks are built for; stored in checkpoints
    step: int = 0
    fused_d: bool = False  # D sees real and generated batches in one call (``Objective.d_totals``)
    precision: str = "fp32"  # ``training.speed.PRECISIONS``
    channels_last: bool = False
    G_forward: Callable | None = None  # how the step calls G and D: compiled, or the modules themselves
    D_forward: Callable | None = None
    shards: tuple[int, ...] = (0,)
    total_shards: int = 1
    more_streams: list[Streams] = field(default_factory=list)
    processes: Processes = SINGLE
    d_input: DInput = field(default_factory=DInput)  # what D sees of the batches (``objectives.d_input``)

    @property
    def streams(self) -> list[Streams]:
        """The streams of each shard this process trains, in the order of ``shards``."""
        return [Streams(self.data_rng, self.latent_rng, self.noise_rng), *self.more_streams]

    def __post_init__(self):
        self.G_forward = self.G if self.G_forward is None else self.G_forward
        self.D_forward = self.D if self.D_forward is None else self.D_forward

    @property
    def sampler(self) -> nn.Module:
        """The generator to sample from: the EMA when there is one."""
        return self.ema.model if self.ema is not None else self.G

    def stream_states(self) -> dict[int, dict[str, torch.Tensor]]:
        """This process's shards' stream states, by shard."""
        return {shard: streams.states() for shard, streams in zip(self.shards, self.streams)}

    def state_dict(self, streams: dict[int, dict[str, torch.Tensor]] | None = None) -> dict:
        """The state to checkpoint; ``streams``: every shard's stream states (gathered from all processes),
        by default this process's own."""
        streams = self.stream_states() if streams is None else streams
        rng = {**streams[0], "torch": torch.get_rng_state()}
        if self.total_shards > 1:
            rng["shards"] = [streams[shard] for shard in range(1, self.total_shards)]
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {"step": self.step, "G": self.G.state_dict(), "D": self.D.state_dict(),
                "G_ema": self.ema.model.state_dict() if self.ema else None,
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(), "rng": rng,
                "spec": self.spec.to_json() if self.spec is not None else None, "augment": self.d_input.state_dict()}

    @staticmethod
    def problems(state) -> list[str]:
        """What keeps ``state`` (read from a file) from being a run's state: missing keys, wrong types."""
        if not isinstance(state, dict):
            return [f"it holds a {type(state).__name__}, not a run's state"]
        problems = [f"no {key!r}" for key in ("step", "G", "D", "G_ema", "opt_g", "opt_d", "rng") if key not in state]
        if problems:
            return problems
        if not isinstance(state["step"], int) or isinstance(state["step"], bool) or state["step"] < 0:
            problems.append(f"step is {state['step']!r}, not a step number")
        for key in ("G", "D") + (("G_ema",) if state["G_ema"] is not None else ()):
            if not isinstance(state[key], dict) or not all(isinstance(t, torch.Tensor) for t in state[key].values()):
                problems.append(f"{key} is not a state dict of tensors")
        for key in ("opt_g", "opt_d"):
            opt = state[key]
            if not isinstance(opt, dict) or not isinstance(opt.get("state"), dict) \
                    or not isinstance(opt.get("param_groups"), list):
                problems.append(f"{key} is not an optimizer state")
        rng = state["rng"]

        def generators(states, keys=("data", "latent", "noise")) -> bool:
            return isinstance(states, dict) and all(isinstance(states.get(k), torch.Tensor)
                                                    and states[k].dtype == torch.uint8 for k in keys)

        shards = rng.get("shards", []) if isinstance(rng, dict) else None
        if not generators(rng, ("data", "latent", "noise", "torch")) or not isinstance(shards, list) \
                or not all(generators(s) for s in shards):
            problems.append("rng does not hold the run's random generator states")
        augment = state.get("augment")  # absent from checkpoints written before the D-input pipeline
        if augment is not None and not (isinstance(augment, dict) and set(DInput().state_dict()) <= set(augment)):
            problems.append("augment is not the D-input pipeline's state")
        return problems

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        if self.ema is not None:
            self.ema.model.load_state_dict(state["G_ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        rng = state["rng"]
        saved = [rng, *rng.get("shards", [])]
        if len(saved) != self.total_shards:
            raise ValueError(f"the checkpoint holds the streams of {len(saved)} shard(s), the run has "
                             f"{self.total_shards} (train.shards)")
        for shard, streams in zip(self.shards, self.streams):
            streams.load(saved[shard])
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        if state.get("augment") is not None:
            self.d_input.load_state_dict(state["augment"])


def build_state(cfg: Experiment, data, device: torch.device, processes: Processes = SINGLE) -> GANState:
    """Fresh networks (initialised from ``train.seed``, the same in every process), optimizers, EMA and the
    random streams of the shards this process trains."""
    torch.manual_seed(cfg.train.seed)
    spec = ModelSpec.of_run(cfg, data)
    layout = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    G = build_generator(cfg.g, spec).to(device, memory_format=layout)
    D = build_discriminator(cfg.d, spec).to(device, memory_format=layout)
    if cfg.train.sync_bn and processes.many:
        if device.type != "cuda":
            raise ConfigError("train.sync_bn computes batch-norm statistics over every process's batch, which "
                              "PyTorch does on CUDA GPUs only (NCCL); on CPUs leave it off.")
        G, D = nn.SyncBatchNorm.convert_sync_batchnorm(G), nn.SyncBatchNorm.convert_sync_batchnorm(D)
    opt_g = lookup(OPTIMIZERS, cfg.g_opt.name, "optimizer")(G.parameters(), cfg.g_opt)
    opt_d = lookup(OPTIMIZERS, cfg.d_opt.name, "optimizer")(D.parameters(), cfg.d_opt)
    ema = EMA(G, cfg.train.ema, cfg.train.ema_start) if cfg.train.ema > 0 else None
    total = cfg.train.shards or processes.world
    if cfg.train.batch_size % total:
        raise ConfigError(f"train.batch_size={cfg.train.batch_size} does not split into {total} equal shards "
                          "(train.shards, or one per process); use a multiple of it.")
    shards = shards_of(processes, total)
    first, *more = [shard_streams(cfg.train.seed, shard, device) for shard in shards]
    fused_d = cfg.train.fused_d and not mixes_samples(D)
    d_input = DInput.from_config(cfg.augment, is_image_data(data), summed_over(processes))
    return GANState(G, D, opt_g, opt_d, ema, first.data, first.latent, first.noise, spec, fused_d=fused_d,
                    precision=cfg.train.precision, channels_last=cfg.train.channels_last,
                    G_forward=compiled(G, cfg.train.compile), D_forward=compiled(D, cfg.train.compile),
                    shards=tuple(shards), total_shards=total, more_streams=more, processes=processes,
                    d_input=d_input)


def summed_over(processes: Processes):
    """A tensor summed over the processes of a torchrun run (itself in one process): what ADA's statistics
    are, so that every process keeps the same p."""
    if not processes.many:
        return lambda tensor: tensor

    def summed(tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.clone()
        torch.distributed.all_reduce(tensor)
        return tensor

    return summed
