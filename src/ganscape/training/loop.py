"""The training loop.

``train_step`` is the whole algorithm of one generator step: ``n_disc`` discriminator updates, one
generator update, then the EMA of the generator. ``train`` runs it and does the bookkeeping around
it at intervals: logging, sample pictures, evaluation and atomic checkpoints.

Reproducibility: all randomness of training is drawn from generators held in ``GANState`` (data
batches, latents) or from torch's global generator (initialisation), and all of them are stored in
every checkpoint; logging, pictures and evaluation use their own fixed-seed generators and never
touch the training streams. So a run is determined by its config, and a resumed run continues
bit for bit as if it had never stopped (on the same hardware and thread count).
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from ganscape.config import Experiment
from ganscape.data import build_dataset
from ganscape.errors import CheckpointError, ConfigError, DivergenceError, lookup
from ganscape.metrics.evaluate import Evaluator, generated_batches, write_result
from ganscape.nets import build_discriminator, build_generator, conditioning_classes, sample_latent
from ganscape.nets.layers import apply_constraints
from ganscape.objectives.losses import LOSSES, Loss
from ganscape.objectives.penalties import (PENALTIES, add_instance_noise, clip_weights_, d_penalty, g_penalty,
                                           instance_noise_std)
from ganscape.plots import image_grid, plot_points, save_png
from ganscape.training.checkpoint import (checkpoint_name, list_checkpoints, load_checkpoint, prune_checkpoints,
                                          remove_stale_temporaries, save_checkpoint)
from ganscape.training.ema import EMA
from ganscape.training.optim import OPTIMIZERS
from ganscape.training.run import MetricsLog, RunDir


def derived_seed(seed: int, stream: str) -> int:
    """A fixed, well-separated seed for each named random stream of a run."""
    return zlib.crc32(f"{seed}/{stream}".encode())


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device: {name!r} is not a device; use auto, cpu, cuda or cuda:N.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name} but no CUDA GPU is available; use train.device=cpu.")
    return device


@dataclass
class GANState:
    """Everything needed to continue a run exactly."""

    G: nn.Module
    D: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    ema: EMA | None
    data_rng: torch.Generator
    latent_rng: torch.Generator
    noise_rng: torch.Generator  # penalties and input noise
    step: int = 0

    @property
    def sampler(self) -> nn.Module:
        """The generator to sample from: the EMA when there is one."""
        return self.ema.model if self.ema is not None else self.G

    def state_dict(self) -> dict:
        rng = {"data": self.data_rng.get_state(), "latent": self.latent_rng.get_state(),
               "noise": self.noise_rng.get_state(), "torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {"step": self.step, "G": self.G.state_dict(), "D": self.D.state_dict(),
                "G_ema": self.ema.model.state_dict() if self.ema else None,
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(), "rng": rng}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        if self.ema is not None:
            self.ema.model.load_state_dict(state["G_ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        rng = state["rng"]
        self.data_rng.set_state(rng["data"])
        self.latent_rng.set_state(rng["latent"])
        self.noise_rng.set_state(rng["noise"])
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])


def build_state(cfg: Experiment, data, device: torch.device) -> GANState:
    torch.manual_seed(cfg.train.seed)
    G = build_generator(cfg, data).to(device)
    D = build_discriminator(cfg, data).to(device)
    opt_g = lookup(OPTIMIZERS, cfg.g_opt.name, "optimizer")(G.parameters(), cfg.g_opt)
    opt_d = lookup(OPTIMIZERS, cfg.d_opt.name, "optimizer")(D.parameters(), cfg.d_opt)
    ema = EMA(G, cfg.train.ema, cfg.train.ema_start) if cfg.train.ema > 0 else None
    data_rng = torch.Generator().manual_seed(derived_seed(cfg.train.seed, "data"))
    latent_rng = torch.Generator(device).manual_seed(derived_seed(cfg.train.seed, "latent"))
    noise_rng = torch.Generator(device).manual_seed(derived_seed(cfg.train.seed, "noise"))
    return GANState(G, D, opt_g, opt_d, ema, data_rng, latent_rng, noise_rng)


@dataclass(frozen=True)
class Regularizers:
    """The configured penalties, sorted by where they act in a training step."""

    d_terms: tuple[tuple[str, float], ...] = ()  # added to D's loss, with their weights
    g_terms: tuple[tuple[str, float], ...] = ()  # added to G's loss
    noise_std: float = 0.0  # instance noise on D's inputs at step 0
    noise_anneal_steps: int = 0
    clip: float = 0.0  # WGAN weight clipping bound; 0 = off

    @classmethod
    def from_config(cls, cfg: Experiment) -> "Regularizers":
        names = cfg.penalty.name
        weights = cfg.penalty.weight or [PENALTIES[n].default_weight for n in names]
        by_kind: dict[str, list[tuple[str, float]]] = {}
        for name, weight in zip(names, weights):
            by_kind.setdefault(PENALTIES[name].kind, []).append((name, weight))
        # instance_noise and wgan_clip are the only penalties of their kinds, so at most one of each
        noise_std = sum(weight for _, weight in by_kind.get("d_input", ()))
        clip = sum(weight for _, weight in by_kind.get("d_constraint", ()))
        return cls(tuple(by_kind.get("d_loss", ())), tuple(by_kind.get("g_loss", ())), noise_std,
                   cfg.penalty.noise_anneal_steps, clip)


def train_step(state: GANState, data, loss: Loss, reg: Regularizers, cfg: Experiment) -> dict[str, torch.Tensor]:
    """One generator step: ``n_disc`` discriminator updates, one generator update, the EMA.

    Returns the losses (without penalties), the mean logits and each penalty's unweighted value.
    """
    G, D = state.G, state.D
    device = next(G.parameters()).device
    batch, latent = cfg.train.batch_size, cfg.latent
    noise_std = instance_noise_std(reg.noise_std, state.step, reg.noise_anneal_steps)

    def d_input(x: torch.Tensor) -> torch.Tensor:
        return add_instance_noise(x, noise_std, state.noise_rng) if noise_std > 0 else x

    for _ in range(cfg.train.n_disc):
        real, labels = data.sample(batch, state.data_rng)
        labels = labels.to(device) if cfg.data.conditional else None  # G's fakes take the same classes
        real = d_input(real.to(device, non_blocking=True))
        z = sample_latent(batch, latent.dim, latent.dist, state.latent_rng, device)
        with torch.no_grad():
            fake = d_input(G(z, labels))
        real_logits, fake_logits = D(real, labels), D(fake, labels)
        d_loss = loss.d_loss(real_logits, fake_logits)
        d_penalties = {name: d_penalty(name, D, real, fake, labels, state.noise_rng) for name, _ in reg.d_terms}
        d_total = d_loss + sum(weight * d_penalties[name] for name, weight in reg.d_terms)
        state.opt_d.zero_grad(set_to_none=True)
        d_total.backward()
        state.opt_d.step()
        apply_constraints(D)
        if reg.clip > 0:
            clip_weights_(D, reg.clip)

    z = sample_latent(batch, latent.dim, latent.dist, state.latent_rng, device)
    D.requires_grad_(False)  # the generator's loss needs gradients through D, not for D
    g_logits = D(d_input(G(z, labels)), labels)
    g_loss = loss.g_loss(g_logits)
    g_penalties = {name: g_penalty(name, G) for name, _ in reg.g_terms}
    g_total = g_loss + sum(weight * g_penalties[name] for name, weight in reg.g_terms)
    state.opt_g.zero_grad(set_to_none=True)
    g_total.backward()
    state.opt_g.step()
    apply_constraints(G)
    D.requires_grad_(True)

    state.step += 1
    if state.ema is not None:
        state.ema.update(G, state.step)
    stats = {"d_loss": d_loss, "g_loss": g_loss, "d_real": real_logits.mean(), "d_fake": fake_logits.mean()}
    stats |= {f"penalty/{name}": value for name, value in (d_penalties | g_penalties).items()}
    return {key: value.detach() for key, value in stats.items()}


def load_generator(run: RunDir, step: int | None = None, ema: bool = True,
                   device: str | torch.device = "cpu", data=None) -> tuple[nn.Module, Experiment, int]:
    """The generator of a run's checkpoint (the newest, or at ``step``), in eval mode.

    ``ema`` picks the EMA weights when the run kept them. ``data``: the run's data set, when the
    caller has it already (G's shape depends on it). Returns (G, config, step).
    """
    cfg = run.read_config()
    if step is None:
        step, path = run.latest_checkpoint()
    else:
        path = run.checkpoints / checkpoint_name(step)
        if not path.is_file():
            steps = ", ".join(str(s) for s, _ in list_checkpoints(run.checkpoints)) or "none"
            raise CheckpointError(f"{run} has no checkpoint at step {step} (checkpoints: {steps}).")
    state = load_checkpoint(path)
    G = build_generator(cfg, data if data is not None else build_dataset(cfg))
    weights = state["G_ema"] if ema and state["G_ema"] is not None else state["G"]
    try:
        G.load_state_dict(weights)
    except RuntimeError as err:
        raise CheckpointError(f"checkpoint {path} does not match the run's config.yaml: {err}") from None
    return G.to(device).eval(), cfg, step


def nonfinite_parameters(state: GANState) -> list[str]:
    bad = []
    for prefix, module in (("G", state.G), ("D", state.D)):
        bad += [f"{prefix}.{name}" for name, p in module.named_parameters() if not torch.isfinite(p).all()]
    return bad


def check_finite(values: dict[str, float], state: GANState, run: RunDir) -> None:
    """Stop with a diagnosis when a loss or parameter is NaN or infinite."""
    bad_values = [f"{k} = {v}" for k, v in values.items() if not math.isfinite(v)]
    if not bad_values:
        return
    params = nonfinite_parameters(state)
    shown = ", ".join(params[:5]) + (f" and {len(params) - 5} more" if len(params) > 5 else "")
    try:
        last_step, last = run.latest_checkpoint()
        kept = f"The last good checkpoint is {last} (step {last_step}); it was not touched."
    except CheckpointError:
        kept = "No checkpoint had been written yet."
    raise DivergenceError(
        f"training diverged at step {state.step}: {', '.join(bad_values)}"
        + (f"; non-finite parameters: {shown}" if params else "") + f". {kept} "
        "Try a lower learning rate (g_opt.lr, d_opt.lr), a different loss, or more discriminator "
        "regularization, then start again or resume from the checkpoint.")


def generate(G: nn.Module, n: int, cfg: Experiment, seed: int, device, num_classes: int = 0,
             batch: int = 1024) -> torch.Tensor:
    """``n`` samples from ``G`` in eval mode, with latents from a fixed seed (see ``generated_batches``)."""
    return torch.cat(list(generated_batches(G, n, cfg.latent.dim, cfg.latent.dist, seed, device, num_classes,
                                            batch)))


def eval_path(run: RunDir, step: int, raw: bool = False) -> Path:
    return run.eval / f"step_{step:08d}{'_raw' if raw else ''}.json"


def evaluate(state: GANState, evaluator: Evaluator, cfg: Experiment, run: RunDir) -> dict[str, float]:
    """Metrics of the sampling generator (``eval/...``) and, when an EMA is kept, of the raw one
    (``eval_raw/...``); each result is also written with its protocol to ``eval/step_N[_raw].json``."""
    raw = state.ema is not None
    generators = {"eval": (state.sampler, False)} | ({"eval_raw": (state.G, True)} if raw and cfg.eval.raw else {})
    results = {}
    for prefix, (G, is_raw) in generators.items():
        tic = time.perf_counter()
        values = evaluator(G)
        protocol = evaluator.protocol() | {"generator": "raw" if is_raw or not raw else "ema",
                                           "seconds": time.perf_counter() - tic}
        write_result(eval_path(run, state.step, is_raw), {"step": state.step, "values": values, "protocol": protocol})
        results |= {f"{prefix}/{k}": v for k, v in values.items()}
    return results


def save_samples(state: GANState, data, cfg: Experiment, run: RunDir, log: MetricsLog) -> Path:
    """A picture of the sampling generator's output with the same latents at every step.

    Images: an 8x8 grid. 2-D points: generated and real points over D's logit.
    """
    device = next(state.G.parameters()).device
    seed = derived_seed(cfg.train.seed, "samples")
    path = run.samples / f"step_{state.step:08d}.png"
    if len(data.shape) == 3:
        fake = generate(state.sampler, 64, cfg, seed, device, conditioning_classes(cfg, data))
        rgb = image_grid(fake, columns=8)
        save_png(rgb, path)
    else:
        fake = generate(state.sampler, 2000, cfg, seed, device)
        real, _ = data.sample(2000, torch.Generator().manual_seed(derived_seed(cfg.train.seed, "real-samples")))
        which = "EMA generator" if state.ema is not None else "generator"
        rgb = plot_points(real, fake, state.D, f"{cfg.data.name}, {cfg.loss}, step {state.step} ({which})", path)
    log.image("samples", rgb, state.step)
    return path


def save_state(state: GANState, cfg: Experiment, run: RunDir) -> Path:
    bad = nonfinite_parameters(state)
    if bad:  # never let a broken state replace a good checkpoint
        raise DivergenceError(f"refusing to checkpoint step {state.step}: non-finite parameters {bad[:5]}.")
    remove_stale_temporaries(run.checkpoints)
    path = save_checkpoint(run.checkpoints / checkpoint_name(state.step), state.state_dict())
    prune_checkpoints(run.checkpoints, cfg.checkpoint.keep)
    return path


@contextmanager
def stop_requests():
    """Turn the first Ctrl-C into a request to stop after the current step (with a checkpoint)."""
    requested = {"stop": False}
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield requested
        return

    def handler(signum, frame):
        if requested["stop"]:
            raise KeyboardInterrupt
        requested["stop"] = True
        print("\nstopping after this step and writing a checkpoint (Ctrl-C again to abort)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield requested
    finally:
        signal.signal(signal.SIGINT, previous)


def due(step: int, every: int, last: int) -> bool:
    return step % every == 0 or step == last


def train(cfg: Experiment, run: RunDir, resume: bool = False, until: int | None = None,
          progress: bool | None = None) -> dict:
    """Train (or, with ``resume``, continue) the run in ``run`` up to ``cfg.train.steps``.

    ``until`` stops earlier, at that step, with a checkpoint; ``resume`` continues later.
    ``progress``: True shows a progress bar, False prints nothing, None (default) shows the bar
    on a terminal and a plain line every ``log.every`` steps otherwise. Returns a summary with the final step, the last evaluation and the wall time.
    """
    start_time = time.perf_counter()
    device = resolve_device(cfg.train.device)
    data = build_dataset(cfg)
    loss = lookup(LOSSES, cfg.loss, "loss")
    reg = Regularizers.from_config(cfg)
    state = build_state(cfg, data, device)
    show_bar = sys.stderr.isatty() if progress is None else progress
    evaluator = Evaluator.from_config(cfg, data, derived_seed(cfg.train.seed, "eval"), device, progress=show_bar)
    if resume:
        step, path = run.latest_checkpoint()
        try:
            state.load_state_dict(load_checkpoint(path))
        except (KeyError, RuntimeError, ValueError) as err:
            raise CheckpointError(f"checkpoint {path} does not match the run's config.yaml: {err}") from None
    last = min(until, cfg.train.steps) if until is not None else cfg.train.steps
    log = MetricsLog(run, cfg.log.tensorboard, start_step=state.step)
    print_lines = progress is None and not show_bar
    bar = tqdm(total=last, initial=state.step, desc="train", unit="step", dynamic_ncols=True, disable=not show_bar)
    results: dict[str, float] = {}
    step_time, steps_timed = 0.0, 0
    try:
        with stop_requests() as requested:
            while state.step < last:
                tic = time.perf_counter()
                stats = train_step(state, data, loss, reg, cfg)
                values = dict(zip(stats, torch.stack(list(stats.values())).tolist()))
                step_time += time.perf_counter() - tic
                steps_timed += 1
                check_finite(values, state, run)
                step = state.step
                stopping = requested["stop"]
                end = last if not stopping else step
                bar.update(1)
                if due(step, cfg.log.every, end):
                    values["steps_per_s"] = steps_timed / max(step_time, 1e-9)
                    step_time, steps_timed = 0.0, 0
                    log.write(step, values)
                    bar.set_postfix(d_loss=f"{values['d_loss']:.3f}", g_loss=f"{values['g_loss']:.3f}")
                    if print_lines:
                        print(f"step {step}/{last}  d_loss {values['d_loss']:.4f}  g_loss {values['g_loss']:.4f}"
                              f"  {values['steps_per_s']:.0f} steps/s", flush=True)
                if evaluator is not None and due(step, cfg.eval.every, end):
                    results = evaluate(state, evaluator, cfg, run)
                    log.write(step, results)
                if cfg.log.samples_every and due(step, cfg.log.samples_every, end):
                    save_samples(state, data, cfg, run, log)
                if due(step, cfg.checkpoint.every, end):
                    save_state(state, cfg, run)
                if stopping:
                    break
    finally:
        bar.close()
        log.close()
    return {"step": state.step, "steps": cfg.train.steps, "run_dir": str(run), "results": results,
            "wall_time_s": time.perf_counter() - start_time}
