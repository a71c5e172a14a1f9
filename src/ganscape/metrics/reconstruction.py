"""Test-set reconstruction error of Xiang & Li ("On the effects of batch and weight normalization in
generative adversarial networks", 2017).

The metric asks how well a frozen generator can reproduce held-out images:

    error = (1/m) sum_i min_z ||G(z) - x_i||^2,

with ||.||^2 the pixel-mean squared error on the [0, 1] image scale. The inner minimum is approximated
by gradient descent on z, following the paper's code:

* G is frozen (eval mode, no parameter gradients); z starts at 0 and is unconstrained;
* optimizer RMSProp with lr 0.01, decay (alpha) 0.9, eps 1e-6;
* 50 steps for the running test during training (more for a final test), minibatches of 32 images.

Extension: ``restarts > 1`` adds further starts drawn from the latent distribution (seeded, so results
are reproducible); each image reports the minimum over restarts of the error of its final z.

As a registered metric (``recon``) the images are a fixed subset of the evaluation split: the first
``metrics.recon.images`` in the salted SHA-256 order of ``metrics.reference.subset_indices``, which
depends on nothing but the split's size, so every checkpoint of a run (and of any run on that split) is
scored on the same images. Each result's protocol names the subset (its rule and the SHA-256 of the
JSON list of its indices), the step count, learning rate, optimizer with its alpha and eps, the starts
and their seed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm import tqdm

from ganscape.metrics.reference import subset_indices
from ganscape.nets import sample_latent

_ALPHA, _EPS = 0.9, 1e-6  # RMSProp settings of the paper's code
OPTIMIZER = "rmsprop(alpha=0.9, eps=1e-6)"  # _ALPHA and _EPS as a protocol records them
INIT = "z = 0, then latent-distribution draws"


def _row_mse01(G: nn.Module, z: torch.Tensor, target: torch.Tensor, labels, dtype=None) -> torch.Tensor:
    """Pixel-mean squared error of each row of G(z) against ``target``, on the [0, 1] scale."""
    out = G(z, labels)
    if out.shape != target.shape:
        raise ValueError(f"generator output shape {tuple(out.shape[1:])} does not match the images' "
                         f"shape {tuple(target.shape[1:])} (per image)")
    if dtype is not None:
        out, target = out.to(dtype), target.to(dtype)
    # Images live in [-1, 1]; halving the difference puts it on the [0, 1] scale.
    return ((out - target) / 2).square().flatten(1).mean(dim=1)


def reconstruction_error(G: nn.Module, images: torch.Tensor, latent_dim: int, latent_dist: str = "normal",
                         labels: torch.Tensor | None = None, steps: int = 50, lr: float = 0.01,
                         restarts: int = 1, batch_size: int = 32, seed: int = 0,
                         progress: bool = False) -> dict:
    """Mean over ``images`` (N, ...; values in [-1, 1]) of min_z MSE(G(z), x) on the [0, 1] scale.

    Protocol: G is put in eval mode with its parameters frozen (both restored afterwards, parameters
    untouched). Each minibatch of ``batch_size`` images optimises all ``restarts`` starts jointly as one
    (restarts * B, latent_dim) latent with RMSProp(lr, alpha=0.9, eps=1e-6) for ``steps`` steps. Restart
    0 starts at z = 0 (the paper); restarts 1.. start from ``sample_latent`` draws of a CPU
    ``torch.Generator`` seeded with ``seed``, drawn for all images up front so they do not depend on
    ``batch_size``. The loss is the sum over rows of each row's MSE, so a latent's trajectory does not
    depend on the other rows. After the last update one more forward pass (float64 error) gives the
    error of the returned z; each image keeps its minimum over restarts. ``labels`` (int64, one per
    image) are passed as G(z, labels) for class-conditional generators, else G gets None.

    Returns a dict with "mse" (mean), "mse_std" (population std), "per_image" (float64 CPU tensor of
    shape (N,)) and the protocol settings.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if restarts < 1:
        raise ValueError(f"restarts must be >= 1, got {restarts}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if latent_dist not in ("normal", "uniform"):
        raise ValueError(f"unknown latent distribution {latent_dist!r} (expected 'normal' or 'uniform')")
    if images.dim() < 2 or len(images) == 0:
        raise ValueError(f"images must have shape (N, ...) with N >= 1, got {tuple(images.shape)}")
    n = len(images)
    if labels is not None and labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), one per image, got {tuple(labels.shape)}")

    param = next(G.parameters(), None)
    device = param.device if param is not None else images.device
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32

    # Extra starts for all images at once: the draws for an image do not depend on batching.
    gen = torch.Generator().manual_seed(seed)
    extra = sample_latent((restarts - 1) * n, latent_dim, latent_dist, gen, "cpu")
    extra = extra.view(restarts - 1, n, latent_dim)

    # Freeze G; remember exactly what to restore.
    modes = [(m, m.training) for m in G.modules()]
    flags = [(p, p.requires_grad) for p in G.parameters()]
    G.eval()
    G.requires_grad_(False)
    try:
        # Gradients on z are needed even when the caller runs under no_grad or inference_mode.
        with torch.inference_mode(False), torch.enable_grad():
            per_image = torch.empty(n, dtype=torch.float64)
            batches = range(0, n, batch_size)
            for start in tqdm(batches, desc="reconstruction", unit="batch", disable=not progress):
                stop = min(start + batch_size, n)
                b = stop - start
                x = images[start:stop].to(device=device, dtype=dtype)
                x = x.repeat(restarts, *([1] * (images.dim() - 1)))
                y = None if labels is None else labels[start:stop].to(device).repeat(restarts)
                # Rows are restart-major: row r * b + i is restart r of image i.
                z = torch.cat([torch.zeros(1, b, latent_dim), extra[:, start:stop]])
                z = z.view(restarts * b, latent_dim)
                z = z.to(device=device, dtype=dtype).requires_grad_(True)
                opt = torch.optim.RMSprop([z], lr=lr, alpha=_ALPHA, eps=_EPS)
                for _ in range(steps):
                    opt.zero_grad(set_to_none=True)
                    # Sum, not mean, over rows: each latent's gradient is independent of the batch size.
                    _row_mse01(G, z, x, y).sum().backward()
                    opt.step()
                # The error of the returned z: one more forward pass, measured in float64.
                with torch.no_grad():
                    err = _row_mse01(G, z.detach(), x, y, dtype=torch.float64)
                per_image[start:stop] = err.view(restarts, b).min(dim=0).values.cpu()
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        for m, mode in modes:
            m.training = mode

    return {
        "mse": float(per_image.mean()),
        "mse_std": float(per_image.std(correction=0)),
        "per_image": per_image,
        "steps": steps,
        "restarts": restarts,
        "lr": lr,
        "optimizer": OPTIMIZER,
        "init": INIT,
        "num_images": n,
    }


@dataclass
class ReconSettings:
    """``metrics.recon.*``."""

    images: int = field(default=200, metadata={"min": 1, "max": 1 << 20, "help": "reconstruction error: held-out "
                                               "images (Xiang & Li: 200 running)"})
    steps: int = field(default=50, metadata={"min": 0, "help": "reconstruction error: steps fitting each z"})
    lr: float = field(default=0.01, metadata={"above": 0.0, "help": "reconstruction error: learning rate of z"})
    restarts: int = field(default=1, metadata={"min": 1, "max": 1000,
                                               "help": "reconstruction error: starts per image, the best kept"})


def recon_subset(evaluator, settings: ReconSettings) -> torch.Tensor:
    """The indices of the held-out images the metric reconstructs: the same at every evaluation."""
    return subset_indices(len(evaluator.reference), settings.images)


def recon_metric(scoring, settings: ReconSettings) -> dict[str, float]:
    """The registered metric ``recon``: the fixed subset of ``images`` reconstructed by the generator."""
    evaluator = scoring.evaluator
    images, labels = evaluator.reference.take(recon_subset(evaluator, settings))
    result = reconstruction_error(scoring.G, images, evaluator.latent_dim, evaluator.latent_dist,
                                  labels if evaluator.num_classes else None, steps=settings.steps, lr=settings.lr,
                                  restarts=settings.restarts, seed=evaluator.seed, progress=evaluator.progress)
    return {"recon_mse": result["mse"], "recon_mse_std": result["mse_std"]}


def recon_protocol(evaluator, settings: ReconSettings) -> dict:
    """The metric's part of an evaluation's protocol: enough to redo it on the same images."""
    indices = recon_subset(evaluator, settings)
    digest = hashlib.sha256(json.dumps(indices.tolist()).encode()).hexdigest()
    return {"images": len(indices), "subset": "the first images of the reference split in the fixed SHA-256 order "
            "of ganscape.metrics.reference.subset_indices", "subset_sha256": digest,
            "steps": settings.steps, "lr": settings.lr, "optimizer": OPTIMIZER, "restarts": settings.restarts,
            "init": INIT, "restart_seed": evaluator.seed, "scale": "pixel-mean squared error on [0, 1]"}
