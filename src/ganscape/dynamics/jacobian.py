"""Eigenvalue analysis of a training vector field at its equilibrium, with autograd in float64.

The Jacobian of a map is computed by ``torch.autograd.functional.jacobian``: reverse-mode autograd,
one vector-Jacobian product per output. The field itself is an autograd gradient built with
``create_graph=True`` (see ``field``), so this is double (and, for consensus optimization, triple)
backward through the registered losses and penalties.

Verdicts, as in Mescheder et al. (2018):

* continuous-time gradient flow converges locally iff every eigenvalue of the field's Jacobian has a
  negative real part;
* a discrete training rule converges locally iff the spectral radius of the Jacobian of its update
  map is below 1. The update maps are built as functions (``update_map``) and differentiated, not
  derived: simultaneous updates x <- x + h v(x); alternating updates (the order of ganscape's
  ``train_step``) take ``n_disc`` D steps, each with the current theta, then one G step with the new psi.

Both say nothing about a far start: where a simulation from one does not end at the equilibrium, a
stable verdict reads "converges locally" (``verdict``).

Consensus optimization (Mescheder et al., 2017) trains both players on v - gamma grad(1/2 |v|^2) =
v - gamma J^T v instead of v (``Dynamics`` with ``consensus=gamma``).

A Jacobian that autograd cannot give (a NaN, e.g. WGAN-GP's |psi| at psi = 0) yields NaN eigenvalues
and a verdict of "does not converge".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ganscape.dynamics.dirac import DiracGAN
from ganscape.dynamics.field import requiring_grad
from ganscape.errors import ConfigError, lookup

Tensor = torch.Tensor
TOLERANCE = 1e-9  # a real part must be below -TOLERANCE, a spectral radius below 1 - TOLERANCE


@dataclass(frozen=True)
class Dynamics:
    """A Dirac-GAN and how its players train: gradient descent, or consensus optimization (``consensus`` > 0)."""

    game: DiracGAN
    consensus: float = 0.0

    def field(self, x: Tensor) -> Tensor:
        """The field both players follow, differentiable again."""
        x = requiring_grad(x)
        v = self.game.field(x)
        if self.consensus == 0:
            return v
        (grad_half_norm,) = torch.autograd.grad(v, x, grad_outputs=v, create_graph=True)  # J^T v
        return v - self.consensus * grad_half_norm


def _simultaneous(dynamics: Dynamics, lr: float, n_disc: int) -> Callable[[Tensor], Tensor]:
    """Both players step once on the field at the same point (``n_disc`` does not apply)."""
    game = dynamics.game

    def step(x: Tensor) -> Tensor:
        theta, psi = game.split(x + lr * dynamics.field(x))
        return torch.cat([theta, game.constrain(psi)])

    return step


def _alternating(dynamics: Dynamics, lr: float, n_disc: int) -> Callable[[Tensor], Tensor]:
    """``n_disc`` D steps, each at the current theta, then one G step at the new psi (``train_step``'s order)."""
    game = dynamics.game

    def step(x: Tensor) -> Tensor:
        theta, psi = game.split(x)
        for _ in range(n_disc):
            _, v_psi = game.split(dynamics.field(torch.cat([theta, psi])))
            psi = game.constrain(psi + lr * v_psi)
        v_theta, _ = game.split(dynamics.field(torch.cat([theta, psi])))
        return torch.cat([theta + lr * v_theta, psi])

    return step


_UPDATE_MAPS = {"simultaneous": _simultaneous, "alternating": _alternating}
UPDATES = tuple(_UPDATE_MAPS)


def update_map(dynamics: Dynamics, lr: float, update: str = "simultaneous",
               n_disc: int = 1) -> Callable[[Tensor], Tensor]:
    """One training step x -> x' with learning rate ``lr``; ``n_disc`` D steps per G step (alternating only)."""
    if not lr > 0:
        raise ConfigError(f"the learning rate must be > 0, got {lr}.")
    if n_disc < 1:
        raise ConfigError(f"n_disc must be >= 1, got {n_disc}.")
    return lookup(_UPDATE_MAPS, update, "update rule")(dynamics, lr, n_disc)


def jacobian(fn: Callable[[Tensor], Tensor], x: Tensor) -> np.ndarray:
    """The Jacobian of ``fn`` at ``x`` as a float64 array."""
    return torch.autograd.functional.jacobian(fn, x.detach().to(torch.float64)).numpy()


def eigenvalues(matrix: np.ndarray) -> np.ndarray:
    """Complex eigenvalues sorted by real part, then imaginary part, both descending; all NaN if the
    matrix is not finite."""
    if not np.isfinite(matrix).all():
        return np.full(len(matrix), complex(np.nan, np.nan))
    values = np.linalg.eigvals(matrix).astype(complex)
    return values[np.lexsort((-values.imag, -values.real))]


def spectral_radius(matrix: np.ndarray) -> float:
    return float(np.abs(eigenvalues(matrix)).max())


def flow_converges(values: np.ndarray) -> bool:
    """Continuous-time verdict: every real part < 0 (False when any eigenvalue is NaN)."""
    return bool(np.all(values.real < -TOLERANCE))


def radius_converges(radius: float) -> bool:
    """Discrete-time verdict: spectral radius of the update map < 1 (False when NaN)."""
    return bool(radius < 1 - TOLERANCE)


def verdict(stable: bool, reached: bool | None = None) -> str:
    """A verdict in words: "does not converge" unless the linearization is ``stable``, and "converges
    locally" where a simulation from a far start did not end at the equilibrium (``reached`` False;
    None: not simulated)."""
    if not stable:
        return "does not converge"
    return "converges locally" if reached is False else "converges"


@dataclass(frozen=True)
class Analysis:
    """The field's Jacobian at the equilibrium, its eigenvalues and the verdicts.

    ``radius`` maps each update rule to the spectral radius of its update map at ``lr`` (empty
    without a learning rate).
    """

    jacobian: np.ndarray
    eigenvalues: np.ndarray
    lr: float | None = None
    n_disc: int = 1
    radius: dict[str, float] = field(default_factory=dict)

    @property
    def continuous_converges(self) -> bool:
        return flow_converges(self.eigenvalues)

    def converges(self, update: str) -> bool:
        """Discrete verdict for ``update`` ("simultaneous" or "alternating")."""
        return radius_converges(self.radius[update])


def analyse(dynamics: Dynamics, lr: float | None = None, n_disc: int = 1) -> Analysis:
    """Jacobian and eigenvalues of the field at the equilibrium and, with ``lr``, the radius of each update map."""
    x0 = dynamics.game.equilibrium()
    matrix = jacobian(dynamics.field, x0)
    radius = {} if lr is None else {update: spectral_radius(jacobian(update_map(dynamics, lr, update, n_disc), x0))
                                    for update in UPDATES}
    return Analysis(matrix, eigenvalues(matrix), lr, n_disc, radius)


def finite_or_none(x: float) -> float | None:
    """``x`` as a JSON number, or None (null) when it is NaN or infinite."""
    return float(x) if np.isfinite(x) else None


def complex_pairs(values: np.ndarray) -> list[list[float | None]]:
    """Eigenvalues as JSON-ready ``[real, imag]`` pairs, NaN as None."""
    return [[finite_or_none(z.real), finite_or_none(z.imag)] for z in values]


def format_eigenvalues(values: np.ndarray, digits: int = 4) -> str:
    """Eigenvalues as text, conjugate pairs folded and repeats counted: "−0.15 ± 0.477i", "±0.5i (×16)",
    "−0.5 (×2)", "−0.1044, −2.396"."""
    if not np.isfinite(values).all():
        return "undefined (NaN)"

    def number(x: float) -> str:
        return f"{x:.{digits}g}".replace("-", "−")

    counts = Counter(complex(round(z.real, 10) + 0.0, round(abs(z.imag), 10)) for z in values)
    parts = []
    for z in sorted(counts, key=lambda z: (-z.real, -z.imag)):
        if z.imag == 0:
            text, repeats = number(z.real), counts[z]
        else:
            pair = f"±{number(z.imag)}i" if z.real == 0 else f"{number(z.real)} ± {number(z.imag)}i"
            text, repeats = pair, counts[z] // 2
        parts.append(text + (f" (×{repeats})" if repeats > 1 else ""))
    return ", ".join(parts)
