"""Generators out of a run: loading a checkpoint's generator, drawing samples, and sample pictures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ganscape.config import Experiment, from_dict
from ganscape.data import build_dataset
from ganscape.data.base import Dataset, is_image_data
from ganscape.errors import CheckpointError
from ganscape.metrics.evaluate import generated_batches
from ganscape.nets import ModelSpec, build_generator
from ganscape.plots import plot_points, row_labels, sample_picture, save_png
from ganscape.training.checkpoint import checkpoint_name, list_checkpoints
from ganscape.training.run import MetricsLog, RunDir
from ganscape.training.snapshots import load_run_checkpoint
from ganscape.training.state import GANState, derived_seed


def checkpoint_path(run: RunDir, step: int | None) -> tuple[int, Path]:
    """(step, path) of a run's checkpoint at ``step``, or of its newest one."""
    if step is None:
        return run.latest_checkpoint()
    path = run.checkpoints / checkpoint_name(step)
    if not path.is_file():
        steps = ", ".join(str(s) for s, _ in list_checkpoints(run.checkpoints)) or "none"
        raise CheckpointError(f"{run} has no checkpoint at step {step} (checkpoints: {steps}).")
    return step, path


def checkpoint_spec(state: dict, cfg: Experiment, path: Path, data: Dataset | None = None) -> ModelSpec:
    """What a checkpoint's networks are built for: stored in it, or (checkpoints written before specs
    were) read off the run's data set."""
    if state.get("spec") is not None:
        return ModelSpec.from_json(state["spec"], f"checkpoint {path}")
    return ModelSpec.of_run(cfg, data if data is not None else build_dataset(cfg))


def load_run_generator(run: RunDir, step: int | None = None, ema: bool = True, device: str | torch.device = "cpu",
                       data: Dataset | None = None) -> tuple[nn.Module, Experiment, int, ModelSpec]:
    """The generator of a run's checkpoint (the newest, or at ``step``), in eval mode, built from the spec
    in the checkpoint: the run's data set is not needed.

    ``ema`` picks the EMA weights when the run kept them. Returns (G, config, step, spec).
    """
    cfg = run.read_config()
    step, path = checkpoint_path(run, step)
    state = load_run_checkpoint(path)
    spec = checkpoint_spec(state, cfg, path, data)
    G = build_generator(cfg.g, spec)
    which = "G_ema" if ema and state["G_ema"] is not None else "G"
    try:
        G.load_state_dict(state[which])
    except RuntimeError as err:
        raise CheckpointError(f"checkpoint {path} does not match the run's config.yaml: {err}") from None
    bad = [name for name, t in state[which].items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise CheckpointError(f"the generator ({which}) in checkpoint {path} has non-finite weights ({', '.join(bad[:3])}"
                              f"): the run had diverged. Use an earlier checkpoint (--step).")
    return G.to(device).eval(), cfg, step, spec


def generate(G: nn.Module, n: int, cfg: Experiment, seed: int, device, num_classes: int = 0,
             batch: int = 1024, labels: torch.Tensor | None = None) -> torch.Tensor:
    """``n`` samples from ``G`` in eval mode, with latents from a fixed seed (see ``generated_batches``)."""
    return torch.cat(list(generated_batches(G, n, cfg.latent.dim, cfg.latent.dist, seed, device, num_classes,
                                            batch, labels=labels)))


def grid_classes(num_classes: int, rows: int = 10) -> torch.Tensor:
    """The class of each row of a conditional run's sample picture: every class when there are at most
    ``rows``, else ``rows`` classes spread evenly over all of them (ImageNet: 0, 111, 222, ...)."""
    if num_classes <= rows:
        return torch.arange(num_classes)
    return torch.linspace(0, num_classes - 1, rows).round().long()


def points_picture(points: torch.Tensor, model_config: dict, title: str, path: Path | None = None) -> np.ndarray:
    """A scatter picture of a 2-D generator's ``points`` over as many points of the data set that its
    config.json records (none when it records none, as for imported weights); saved at ``path`` when given."""
    data = (model_config.get("provenance") or {}).get("data")
    real = None
    if data:
        dataset = build_dataset(from_dict({"data": data}, Experiment))
        real, _ = dataset.sample(len(points), torch.Generator().manual_seed(0))
    return plot_points(real, points, None, title, path)


def save_samples(state: GANState, data: Dataset, cfg: Experiment, run: RunDir, log: MetricsLog) -> Path:
    """A picture of the sampling generator's output with the same latents at every step.

    Images: an 8x8 grid (``sample_picture``: enlarged to at least 512 pixels, captioned); for a conditional
    run, 8 samples of a class per row (``grid_classes``), labelled. 2-D points: generated and real points
    over D's logit.
    """
    device = next(state.G.parameters()).device
    seed = derived_seed(cfg.train.seed, "samples")
    path = run.samples / f"step_{state.step:08d}.png"
    which = "EMA generator" if state.ema is not None else "generator"
    if is_image_data(data):
        classes = grid_classes(state.spec.num_classes) if state.spec.num_classes else None
        labels = classes.repeat_interleave(8) if classes is not None else None  # 8 samples of a class per row
        fake = generate(state.sampler, 64 if labels is None else len(labels), cfg, seed, device,
                        state.spec.num_classes, labels=labels)
        title = f"step {state.step}, {which}" + ("; a class per row" if classes is not None else "")
        names = row_labels(classes.tolist(), state.spec.class_names) if classes is not None else None
        rgb = sample_picture(fake, columns=8, labels=names, title=title)
        save_png(rgb, path)
    else:
        fake = generate(state.sampler, 2000, cfg, seed, device)
        real, _ = data.sample(2000, torch.Generator().manual_seed(derived_seed(cfg.train.seed, "real-samples")))
        rgb = plot_points(real, fake, state.D, f"{cfg.data.name}, {cfg.loss}, step {state.step} ({which})", path)
    log.image("samples", rgb, state.step)
    return path
