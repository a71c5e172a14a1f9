"""The table of Mescheder et al. (2018), reproduced on the Dirac-GAN with ganscape's losses and penalties.

Each method is analysed at the equilibrium (eigenvalues, continuous-time verdict, spectral radius of
simultaneous and alternating gradient descent at the learning rate) and simulated from (1, 1). The
settings are those of the paper's notebook: R1 and R2 gamma = 0.3, WGAN clip bound 1, WGAN-GP gamma =
0.7 in the paper's (gamma/2)(|psi| - 1)^2, i.e. wgan_gp weight 0.35, instance noise sigma = 0.7,
consensus gamma = 1. A method converges when the flow does and both simulations end within 1e-3 of
the equilibrium, and converges locally when the flow and both update rules are stable there but a
simulation does not end there.
"""

from __future__ import annotations

from dataclasses import dataclass

from ganscape.dynamics.dirac import dirac_gan
from ganscape.dynamics.jacobian import (UPDATES, Analysis, Dynamics, analyse, complex_pairs, finite_or_none,
                                        format_eigenvalues, verdict)
from ganscape.dynamics.simulate import TOLERANCE, Trajectory, simulate

START = (1.0, 1.0)
VERDICT_CELLS = {"converges": "yes", "converges locally": "locally", "does not converge": "no"}


@dataclass(frozen=True)
class Method:
    """A row of the table: a loss, penalties with their weights and the training scheme."""

    name: str
    loss: str
    penalties: tuple[tuple[str, float], ...] = ()
    consensus: float = 0.0
    regularization: str = ""

    def dynamics(self) -> Dynamics:
        return Dynamics(dirac_gan(self.loss, dict(self.penalties)), self.consensus)


PAPER_METHODS = (
    Method("unregularized GAN", "minimax", regularization="none"),
    Method("non-saturating GAN", "ns", regularization="none"),
    Method("WGAN", "wgan", (("wgan_clip", 1.0),), regularization="wgan_clip c = 1"),
    Method("WGAN-GP", "wgan", (("wgan_gp", 0.35),), regularization="wgan_gp λ = 0.35 (paper's γ = 0.7)"),
    Method("consensus optimization", "minimax", consensus=1.0, regularization="consensus γ = 1"),
    Method("instance noise", "minimax", (("instance_noise", 0.7),), regularization="instance_noise σ = 0.7"),
    Method("R1", "minimax", (("r1", 0.3),), regularization="r1 γ = 0.3"),
    Method("R2", "minimax", (("r2", 0.3),), regularization="r2 γ = 0.3"),
)


@dataclass(frozen=True)
class Row:
    method: Method
    analysis: Analysis
    simultaneous: Trajectory
    alternating: Trajectory

    @property
    def converges(self) -> bool:
        return self.analysis.continuous_converges and self.simultaneous.converged and self.alternating.converged

    @property
    def verdict(self) -> str:
        """"converges", "converges locally" (stable at the equilibrium, but a simulation did not end there)
        or "does not converge"."""
        if self.converges:
            return verdict(True)
        a = self.analysis
        return verdict(a.continuous_converges and all(a.converges(update) for update in UPDATES), reached=False)

    def to_json(self) -> dict:
        a = self.analysis
        return {"method": self.method.name, "loss": self.method.loss, "regularization": self.method.regularization,
                "eigenvalues": complex_pairs(a.eigenvalues), "continuous_converges": a.continuous_converges,
                "simultaneous_radius": finite_or_none(a.radius["simultaneous"]),
                "alternating_radius": finite_or_none(a.radius["alternating"]),
                "simultaneous_converges": self.simultaneous.converged,
                "simultaneous_final_distance": finite_or_none(self.simultaneous.final_distance),
                "alternating_converges": self.alternating.converged,
                "alternating_final_distance": finite_or_none(self.alternating.final_distance),
                "converges": self.converges, "verdict": self.verdict}


def reproduce_table(lr: float = 0.2, steps: int = 500, n_disc: int = 1,
                    methods: tuple[Method, ...] = PAPER_METHODS) -> list[Row]:
    """Analyse and simulate every method with learning rate ``lr`` for ``steps`` steps from (1, 1)."""
    rows = []
    for method in methods:
        dynamics = method.dynamics()
        trajectories = [simulate(dynamics, START, lr, steps, update, n_disc) for update in UPDATES]
        rows.append(Row(method, analyse(dynamics, lr, n_disc), *trajectories))
    return rows


def _reached(trajectory: Trajectory) -> str:
    if trajectory.converged:
        return f"yes (step {trajectory.reached_at})"
    return f"no ({trajectory.final_distance:.3g} away)"


def _radius(radius: float) -> str:
    return f"{radius:.6g}" if finite_or_none(radius) is not None else "undefined"


def markdown_table(rows: list[Row], lr: float, steps: int, n_disc: int = 1) -> str:
    """The table as Markdown, with a line that says how it was made."""
    alt = "alt. GD" if n_disc == 1 else f"alt. GD (n_disc {n_disc})"
    lines = [f"Dirac-GAN, learning rate {lr:g}, {steps} steps from (θ, ψ) = (1, 1); reached: within {TOLERANCE:g} "
             "of (0, 0); ρ: spectral radius of the update map at (0, 0).", "",
             f"| method | loss | regularization | eigenvalues at (0, 0) | flow converges | ρ sim. GD | ρ {alt} "
             f"| sim. GD reaches (0, 0) | {alt} reaches (0, 0) | converges |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        a = row.analysis
        lines.append(f"| {row.method.name} | {row.method.loss} | {row.method.regularization} "
                     f"| {format_eigenvalues(a.eigenvalues)} | {'yes' if a.continuous_converges else 'no'} "
                     f"| {_radius(a.radius['simultaneous'])} | {_radius(a.radius['alternating'])} "
                     f"| {_reached(row.simultaneous)} | {_reached(row.alternating)} "
                     f"| **{VERDICT_CELLS[row.verdict]}** |")
    if any(finite_or_none(row.analysis.radius["simultaneous"]) is None for row in rows):
        lines += ["", "undefined: the field is not differentiable at (0, 0), so autograd's Jacobian there is NaN "
                      "(wgan_gp: ‖∇ₓD‖ = |ψ| has a kink at ψ = 0, across which the field jumps by 4λ)."]
    return "\n".join(lines)
