"""The leading eigenvalues of a trained GAN's game Jacobian, computed matrix-free.

At a checkpoint, the field v of the run's training step (its loss plus its weighted penalties, on one
fixed batch of real data and latents) is built over all trainable parameters of the raw G and D, in
float64 and in training mode, as ``train_step`` runs them. Its Jacobian J is never formed: each
product is one more backward pass through the field's graph, u -> J^T u (a vector-Jacobian product;
J^T has the same eigenvalues as J), and ARPACK's implicitly restarted Arnoldi iteration
(``scipy.sparse.linalg.eigs``) finds the eigenvalues of largest magnitude and of largest real part.
Small problems (``dense_limit``) form J from n such products and take all its eigenvalues.

Eigenvalues near the imaginary axis with large imaginary parts are the oscillating regime of
Mescheder et al. (2018); a positive real part is a locally unstable direction of gradient flow.

Not in the field: WGAN weight clipping and normalization constraints (they act after a step), and,
for penalties evaluated at generated points (r2, wgan_gp), the dependence of where they are evaluated
on G: the penalties detach those points, as training does. On the Dirac-GAN that dependence is zero.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigs

from ganscape.data import build_dataset
from ganscape.data.base import is_image_data
from ganscape.dynamics.field import game_totals, gradient_field
from ganscape.errors import CheckpointError, ConfigError, GanscapeError
from ganscape.nets import build_discriminator, sample_latent
from ganscape.objectives.d_input import DInput
from ganscape.objectives.objective import Objective
from ganscape.runs import RunDir, load_run_generator
from ganscape.training.snapshots import load_run_checkpoint
from ganscape.training.state import derived_seed, resolve_device

Tensor = torch.Tensor
DENSE_LIMIT = 400  # up to this many parameters, form the Jacobian and take all its eigenvalues
KRYLOV = 80  # least dimension of ARPACK's Krylov space
MAX_RESTARTS = 300  # ARPACK's implicit restarts before it returns the eigenvalues it has


def transposed_jacobian(v: Tensor, params: Sequence[Tensor]) -> LinearOperator:
    """The operator u -> J^T u of the field ``v`` (built with ``create_graph=True``) over ``params``."""

    def matvec(u: np.ndarray) -> np.ndarray:
        u = torch.as_tensor(np.ascontiguousarray(u).reshape(-1), dtype=v.dtype, device=v.device)
        grads = torch.autograd.grad(v, list(params), grad_outputs=u, retain_graph=True, materialize_grads=True)
        return torch.cat([grad.reshape(-1) for grad in grads]).cpu().numpy()

    return LinearOperator((v.numel(), v.numel()), matvec=matvec, dtype=np.float64)


def dense_jacobian(operator: LinearOperator) -> np.ndarray:
    """J itself: row i is J^T e_i."""
    return np.stack([operator.matvec(e) for e in np.eye(operator.shape[0])])


def _largest(values: np.ndarray, k: int, key: str) -> np.ndarray:
    """The ``k`` values of largest magnitude ("LM") or real part ("LR"), in that order."""
    order = np.lexsort((-values.imag, -(np.abs(values) if key == "LM" else values.real)))
    return values[order][:k]


def _arnoldi(operator: LinearOperator, k: int, which: str) -> np.ndarray:
    """ARPACK with a Krylov space of at least ``KRYLOV`` vectors: with ARPACK's default (2k + 1), the
    clustered eigenvalues of largest real part of a GAN's Jacobian take hundreds of times longer."""
    n = operator.shape[0]
    start = np.random.default_rng(0).standard_normal(n)
    try:
        return eigs(operator, k=k, which=which, v0=start, ncv=min(n, max(2 * k + 1, KRYLOV)), tol=1e-10,
                    maxiter=MAX_RESTARTS, return_eigenvectors=False)
    except ArpackNoConvergence as err:
        if len(err.eigenvalues) == 0:
            raise GanscapeError(f"ARPACK found no eigenvalue ({which}) of the Jacobian; try a smaller --top.") from None
        warnings.warn(f"ARPACK found {len(err.eigenvalues)} of {k} eigenvalues ({which}) in {MAX_RESTARTS} restarts.",
                      RuntimeWarning, stacklevel=2)
        return err.eigenvalues


def leading_eigenvalues(v: Tensor, params: Sequence[Tensor], k: int,
                        dense_limit: int = DENSE_LIMIT) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` eigenvalues of the field's Jacobian of largest magnitude, and the ``k`` of largest real part.

    Matrix-free (ARPACK) unless there are at most ``dense_limit`` parameters or ``k >= n - 1`` (where
    ARPACK cannot work); then dense. ARPACK may return fewer than ``k`` values when it does not converge.
    """
    n = v.numel()
    if k < 1:
        raise ConfigError(f"the number of eigenvalues must be >= 1, got {k}.")
    k = min(k, n)
    operator = transposed_jacobian(v, params)
    if n <= dense_limit or k >= n - 1:
        values = np.linalg.eigvals(dense_jacobian(operator)).astype(complex)
        return _largest(values, k, "LM"), _largest(values, k, "LR")
    return tuple(_largest(_arnoldi(operator, k, which), k, which) for which in ("LM", "LR"))


def load_networks(run: RunDir, step: int | None, device: torch.device):
    """(G, D, config, data set, step, D-input pipeline): the raw networks of a checkpoint (default: the
    newest), in float64 and in training mode, as ``train_step`` runs them, and the run's D-input pipeline
    in the state the checkpoint holds (ADA's p)."""
    cfg = run.read_config()
    data = build_dataset(cfg)
    G, _, step, spec = load_run_generator(run, step, ema=False, device=device, data=data)
    D = build_discriminator(cfg.d, spec)
    path = run.checkpoint_file(step)
    pipeline = DInput.from_config(cfg.augment, is_image_data(data))
    try:
        state = load_run_checkpoint(path)
        D.load_state_dict(state["D"])
        if state.get("augment") is not None:
            pipeline.load_state_dict(state["augment"])
    except (KeyError, RuntimeError) as err:
        raise CheckpointError(f"checkpoint {path} does not match the run's config.yaml: {err}") from None
    return G.to(torch.float64).train(), D.to(device, torch.float64).train(), cfg, data, step, pipeline


def run_field(run: RunDir, step: int | None = None, batch: int = 1024,
              device: str = "cpu") -> tuple[Tensor, list[Tensor], int]:
    """(v, parameters of G then D, step): the run's training field at a checkpoint (default: the newest).

    The batch of real data, latents and D-input draws (augmentation, instance noise) is drawn from seeds
    derived from the run's seed, so the same command gives the same field.
    """
    device = resolve_device(device)
    G, D, cfg, data, step, pipeline = load_networks(run, step, device)
    objective = Objective.from_config(cfg)
    seeds = {name: derived_seed(cfg.train.seed, f"dynamics/{name}") for name in ("data", "latent", "noise")}
    noise_rng = torch.Generator(device).manual_seed(seeds["noise"])
    real, labels = data.sample(batch, torch.Generator().manual_seed(seeds["data"]))
    labels = labels.to(device) if cfg.data.conditional else None
    z = sample_latent(batch, cfg.latent.dim, cfg.latent.dist, torch.Generator(device).manual_seed(seeds["latent"]),
                      device)
    real, fake = pipeline.d_step(real.to(device, torch.float64), G(z.to(torch.float64), labels), step, noise_rng)
    g_obj, d_obj = game_totals(objective, D, real, fake, labels, G, noise_rng)
    g_params = [p for p in G.parameters() if p.requires_grad]
    d_params = [p for p in D.parameters() if p.requires_grad]
    return gradient_field(g_obj, d_obj, g_params, d_params), g_params + d_params, step


@dataclass(frozen=True)
class Spectrum:
    """The leading eigenvalues of a run's game Jacobian at ``step`` over ``parameters`` parameters."""

    step: int
    parameters: int
    largest_magnitude: np.ndarray
    largest_real: np.ndarray


def run_spectrum(run: RunDir, step: int | None = None, top: int = 20, batch: int = 1024, device: str = "cpu",
                 dense_limit: int = DENSE_LIMIT) -> Spectrum:
    """The ``top`` eigenvalues of largest magnitude and of largest real part at a checkpoint."""
    if batch < 1:
        raise ConfigError(f"the batch size must be >= 1, got {batch}.")
    v, params, step = run_field(run, step, batch, device)
    return Spectrum(step, v.numel(), *leading_eigenvalues(v, params, top, dense_limit))


def plot_spectrum(spectrum: Spectrum, path: Path, title: str) -> Path:
    """Write a PNG of the eigenvalues in the complex plane, with the imaginary axis marked."""
    fig = Figure(figsize=(5.5, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.axvline(0, color="0.5", lw=1, ls="--", label="imaginary axis (Re λ = 0)")
    ax.axhline(0, color="0.85", lw=0.8)
    magnitude, real = spectrum.largest_magnitude, spectrum.largest_real
    ax.scatter(magnitude.real, magnitude.imag, s=40, facecolors="none", edgecolors="tab:blue",
               label=f"largest |λ| ({len(magnitude)})")
    ax.scatter(real.real, real.imag, s=30, marker="x", color="tab:red", label=f"largest Re λ ({len(real)})")
    ax.set_xlabel("Re λ")
    ax.set_ylabel("Im λ")
    ax.set_title(title, fontsize=10, wrap=True)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
