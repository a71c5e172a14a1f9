"""Generators out of a run: drawing samples and sample pictures (a checkpoint's generator: ``ganscape.runs``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ganscape.config import Experiment, from_dict
from ganscape.data import build_dataset
from ganscape.data.base import Dataset, is_image_data
from ganscape.metrics.evaluate import generated_batches
from ganscape.nets import ModelSpec
from ganscape.plots import plot_points, row_labels, sample_picture, save_png
from ganscape.store.rundir import MetricsLog, RunDir
from ganscape.training.state import GANState, derived_seed


def checkpoint_spec(state: dict, cfg: Experiment, path: Path, data: Dataset | None = None) -> ModelSpec:
    """What a checkpoint's networks are built for: stored in it, or (checkpoints written before specs
    were) read off the run's data set."""
    if state.get("spec") is not None:
        return ModelSpec.from_json(state["spec"], f"checkpoint {path}")
    return ModelSpec.of_run(cfg, data if data is not None else build_dataset(cfg))


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
    path = run.sample_picture(state.step)
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
