"""Gradient-descent trajectories of a Dirac-GAN, and the picture of its vector field with a trajectory.

The picture follows Mescheder et al. (2018): theta (the generator) on the x-axis, psi (the
discriminator) on the y-axis, the field's directions as arrows of equal length, and the
trajectory on top. ganscape's psi is the paper's -psi (see ``dirac``), so the picture is the paper's
mirrored about the theta-axis.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ganscape.dynamics.jacobian import Dynamics, update_map
from ganscape.errors import ConfigError

TOLERANCE = 1e-3  # "converged": within this distance of the equilibrium


@dataclass(frozen=True)
class Trajectory:
    """The states x_0 ... x_T (shape (T + 1, 2d), float64) of a training rule from a start point."""

    points: np.ndarray
    update: str
    lr: float
    n_disc: int = 1

    @property
    def distances(self) -> np.ndarray:
        """Distance of every state from the equilibrium 0."""
        return np.linalg.norm(self.points, axis=1)

    @property
    def final_distance(self) -> float:
        return float(self.distances[-1])

    @property
    def converged(self) -> bool:
        """Whether the last state lies within ``TOLERANCE`` of the equilibrium."""
        return bool(self.final_distance <= TOLERANCE)

    @property
    def reached_at(self) -> int | None:
        """The first step within ``TOLERANCE`` of the equilibrium, or None."""
        hits = np.flatnonzero(self.distances <= TOLERANCE)
        return int(hits[0]) if len(hits) else None


def simulate(dynamics: Dynamics, start: Sequence[float], lr: float, steps: int, update: str = "simultaneous",
             n_disc: int = 1) -> Trajectory:
    """Run ``steps`` training steps from ``start`` = (theta, psi) (length 2d, or 2 for any d: every
    dimension starts there). A state that stops being finite ends the trajectory early."""
    if steps < 0:
        raise ConfigError(f"steps must be >= 0, got {steps}.")
    step = update_map(dynamics, lr, update, n_disc)
    x = _start_state(dynamics, start)
    points = [x.numpy()]
    for _ in range(steps):
        x = step(x).detach()
        points.append(x.numpy())
        if not torch.isfinite(x).all():
            break
    return Trajectory(np.stack(points), update, lr, n_disc)


def _start_state(dynamics: Dynamics, start: Sequence[float]) -> torch.Tensor:
    dim = dynamics.game.dim
    start = [float(s) for s in start]
    if len(start) == 2:
        start = [start[0]] * dim + [start[1]] * dim
    if len(start) != 2 * dim:
        raise ConfigError(f"a start point is (theta, psi): 2 or {2 * dim} numbers, got {len(start)}.")
    return torch.tensor(start, dtype=torch.float64)


def field_grid(dynamics: Dynamics, extent: float, resolution: int) -> tuple[np.ndarray, ...]:
    """(theta, psi, v_theta, v_psi) of the field on a square grid over [-extent, extent]^2 (d = 1)."""
    axis = np.linspace(-extent, extent, resolution)
    theta, psi = np.meshgrid(axis, axis, indexing="xy")
    states = torch.tensor(np.stack([theta.ravel(), psi.ravel()], axis=1))
    v = np.stack([dynamics.field(x).detach().numpy() for x in states])
    return theta, psi, v[:, 0].reshape(theta.shape), v[:, 1].reshape(theta.shape)


def plot_dynamics(dynamics: Dynamics, path: Path, title: str, trajectory: Trajectory | None = None,
                  resolution: int = 21) -> Path:
    """Write a PNG of the field over [-2, 2]^2 (wider when the trajectory leaves it) with the trajectory."""
    if dynamics.game.dim != 1:
        raise ConfigError(f"the vector field picture is of the one-dimensional Dirac-GAN, not dim={dynamics.game.dim}.")
    extent = 2.0
    if trajectory is not None:
        finite = trajectory.points[np.isfinite(trajectory.points).all(axis=1)]
        extent = max(extent, 1.05 * float(np.abs(finite).max()))
    theta, psi, v_theta, v_psi = field_grid(dynamics, extent, resolution)
    length = np.hypot(v_theta, v_psi)
    length[length == 0] = 1.0
    fig = Figure(figsize=(5, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.quiver(theta, psi, v_theta / length, v_psi / length, color="0.45", pivot="mid", angles="xy",
              scale_units="xy", scale=resolution / (1.6 * extent))
    if trajectory is not None:
        points = trajectory.points
        title += f"\n{trajectory.update} GD, lr {trajectory.lr:g}, {len(points) - 1} steps"
        ax.plot(points[:, 0], points[:, 1], color="tab:red", lw=1.2, label="trajectory")
        ax.plot(*points[0], "o", color="tab:red", ms=5, label="start")
        ax.plot(*points[-1], "s", color="tab:red", ms=5, label="end")
    ax.plot(0, 0, "*", color="tab:blue", ms=12, label="equilibrium")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_xlim(-extent, extent)
    ax.set_ylim(-extent, extent)
    ax.set_aspect("equal")
    ax.set_xlabel("θ (generator)")
    ax.set_ylabel("ψ (discriminator)")
    ax.set_title(title, fontsize=10, wrap=True)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
