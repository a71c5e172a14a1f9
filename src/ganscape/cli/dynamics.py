"""``ganscape dynamics``: the Dirac-GAN of a loss and penalties, the paper's table, the spectrum of a run.

    ganscape dynamics dirac --loss ns --penalty r1:1 [--lr 0.1 --steps 1000] [--json] [--plot P]
    ganscape dynamics table [--lr 0.2] [--steps 500] [--n-disc 1] [--json]
    ganscape dynamics spectrum RUN_DIR [--step N] [--top 20] [--batch 1024] [--plot P] [--json]
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def _dirac_result(dynamics, analysis, trajectory, scheme: str) -> dict:
    from ganscape.dynamics.jacobian import complex_pairs, finite_or_none

    result = {"game": dynamics.game.describe(), "loss": dynamics.game.loss.name,
              "penalties": [{"name": name, "weight": weight} for name, weight in dynamics.game.penalties()],
              "scheme": scheme, "consensus_weight": dynamics.consensus,
              "jacobian": [[finite_or_none(x) for x in row] for row in analysis.jacobian],
              "eigenvalues": complex_pairs(analysis.eigenvalues),
              "continuous_converges": analysis.continuous_converges}
    if analysis.lr is not None:
        result |= {"lr": analysis.lr, "n_disc": analysis.n_disc}
        for update, radius in analysis.radius.items():
            result |= {f"{update}_radius": finite_or_none(radius),
                       f"{update}_converges": analysis.converges(update)}
    if trajectory is not None:
        result["trajectory"] = {"update": trajectory.update, "steps": len(trajectory.points) - 1,
                                "start": trajectory.points[0].tolist(),
                                "final": [finite_or_none(x) for x in trajectory.points[-1]],
                                "final_distance": finite_or_none(trajectory.final_distance),
                                "converged": trajectory.converged,
                                "reached_at": trajectory.reached_at}
    return result


def _print_dirac(result: dict, analysis) -> None:
    from ganscape.dynamics.jacobian import format_eigenvalues, verdict
    from ganscape.dynamics.simulate import TOLERANCE

    t = result.get("trajectory", {})  # the simulation, if one ran
    scheme = "consensus optimization" if result["scheme"] == "consensus" else "gradient descent"
    print(f"Dirac-GAN: {result['game']}, {scheme}")
    print("Jacobian of the field at (θ, ψ) = (0, 0):")
    for row in analysis.jacobian:
        print("  [" + "  ".join(f"{x:9.4f}" for x in row) + "]")
    print(f"eigenvalues: {format_eigenvalues(analysis.eigenvalues)}")
    print(f"continuous-time gradient flow: {verdict(analysis.continuous_converges)} "
          f"(largest real part {analysis.eigenvalues.real.max():.4g})")
    for update, radius in analysis.radius.items():
        disc = f", n_disc {analysis.n_disc}" if update == "alternating" else ""
        reached = t["converged"] if t.get("update") == update else None
        print(f"{update} GD, lr {analysis.lr:g}{disc}: {verdict(analysis.converges(update), reached)} "
              f"(spectral radius {radius:.6g})")
    if t:
        where = (f"within {TOLERANCE:g} of (0, 0) from step {t['reached_at']}" if t["converged"]
                 else "did not end near (0, 0)")
        print(f"simulation, {t['update']} GD from {tuple(t['start'])}, {t['steps']} steps: {where} "
              f"(final distance {t['final_distance']:.3g})")


def cmd_dirac(args) -> int:
    from ganscape.dynamics.dirac import dirac_gan
    from ganscape.dynamics.jacobian import Dynamics, analyse
    from ganscape.dynamics.simulate import plot_dynamics, simulate

    game = dirac_gan(args.loss, ",".join(args.penalty))
    dynamics = Dynamics(game, args.consensus_weight if args.scheme == "consensus" else 0.0)
    analysis = analyse(dynamics, args.lr, args.n_disc)
    trajectory = None
    if args.lr is not None:
        trajectory = simulate(dynamics, args.start, args.lr, args.steps, args.update, args.n_disc)
    result = _dirac_result(dynamics, analysis, trajectory, args.scheme)
    if args.plot:
        scheme = ", consensus optimization" if args.scheme == "consensus" else ""
        result["plot"] = str(plot_dynamics(dynamics, args.plot, f"Dirac-GAN: {game.describe()}{scheme}", trajectory))
    if args.json:
        print(json.dumps(result))
        return 0
    _print_dirac(result, analysis)
    if args.plot:
        print(f"wrote {result['plot']}")
    return 0


def cmd_table(args) -> int:
    from ganscape.dynamics.simulate import TOLERANCE
    from ganscape.dynamics.table import markdown_table, reproduce_table

    rows = reproduce_table(args.lr, args.steps, args.n_disc)
    if args.json:
        print(json.dumps({"lr": args.lr, "steps": args.steps, "n_disc": args.n_disc, "tolerance": TOLERANCE,
                          "start": [1.0, 1.0], "rows": [row.to_json() for row in rows]}))
    else:
        print(markdown_table(rows, args.lr, args.steps, args.n_disc))
    return 0


def _eigenvalue_lines(title: str, values: np.ndarray) -> list[str]:
    lines = [title, f"  {'#':>3}  {'eigenvalue':>26}  {'|λ|':>10}  {'Re λ':>11}"]
    for i, z in enumerate(values, 1):
        lines.append(f"  {i:3d}  {z.real:12.5g} {z.imag:+12.5g}i  {abs(z):10.5g}  {z.real:11.4g}")
    return lines


def cmd_spectrum(args) -> int:
    from pathlib import Path

    from ganscape.dynamics.jacobian import complex_pairs
    from ganscape.dynamics.spectrum import plot_spectrum, run_spectrum
    from ganscape.runs import RunDir

    run = RunDir.open(args.run_dir)
    spectrum = run_spectrum(run, args.step, args.top, args.batch, args.device)
    path = Path(args.plot) if args.plot else run.spectrum_picture(spectrum.step)
    plot_spectrum(spectrum, path, f"{run.path.name}, step {spectrum.step}: Jacobian of the training field")
    if args.json:
        print(json.dumps({"run_dir": str(run), "step": spectrum.step, "parameters": spectrum.parameters,
                          "batch": args.batch, "largest_magnitude": complex_pairs(spectrum.largest_magnitude),
                          "largest_real": complex_pairs(spectrum.largest_real), "plot": str(path)}))
        return 0
    print(f"{run} step {spectrum.step}: {spectrum.parameters:,} parameters (G and D), batch {args.batch}")
    print("\n".join(_eigenvalue_lines("largest magnitude:", spectrum.largest_magnitude)))
    print("\n".join(_eigenvalue_lines("largest real part:", spectrum.largest_real)))
    print(f"wrote {path}")
    return 0


def _add_dirac_parser(actions) -> None:
    dirac = actions.add_parser(
        "dirac", help="eigenvalues, verdicts, a trajectory and a picture of the Dirac-GAN of a loss and penalties",
        description="The Dirac-GAN (Mescheder et al. 2018) played with a registered loss and penalties: the "
                    "Jacobian of the training field at the equilibrium, its eigenvalues and the continuous-time "
                    "verdict; with --lr, the spectral radius of simultaneous and alternating gradient descent and a "
                    "simulated trajectory. r1/r2 weight γ is the paper's γ; wgan_gp weight λ is the paper's γ/2.")
    dirac.add_argument("--loss", default="ns", help="a registered loss (default: %(default)s)")
    dirac.add_argument("--penalty", action="append", default=[], metavar="NAME[:WEIGHT]",
                       help="a penalty with its weight, as in a config (e.g. r1:0.3; repeatable or comma-separated): "
                            "wgan_gp, dragan, r1, r2, instance_noise (weight: noise std) or wgan_clip (weight: clip "
                            "bound); a name alone takes its default weight")
    dirac.add_argument("--scheme", choices=("gd", "consensus"), default="gd",
                       help="gradient descent, or consensus optimization (default: %(default)s)")
    dirac.add_argument("--consensus-weight", type=float, default=1.0, metavar="GAMMA",
                       help="consensus optimization's γ (default: %(default)s)")
    dirac.add_argument("--lr", type=float, help="learning rate of the discrete verdicts and the simulation")
    dirac.add_argument("--steps", type=int, default=1000, help="simulated steps (default: %(default)s)")
    dirac.add_argument("--update", choices=("simultaneous", "alternating"), default="simultaneous",
                       help="update rule of the simulation (default: %(default)s)")
    dirac.add_argument("--n-disc", type=int, default=1, help="D steps per G step, alternating (default: %(default)s)")
    dirac.add_argument("--start", type=float, nargs=2, default=[1.0, 1.0], metavar=("THETA", "PSI"),
                       help="start of the simulation (default: 1 1)")
    dirac.add_argument("--json", action="store_true", help="print one JSON object")
    dirac.add_argument("--plot", metavar="PATH", help="write a PNG of the vector field (and the trajectory)")
    dirac.set_defaults(func=cmd_dirac)


def _add_table_parser(actions) -> None:
    table = actions.add_parser(
        "table", help="the table of Mescheder et al. (2018) on the Dirac-GAN",
        description="For each method of the paper: eigenvalues at the equilibrium, the continuous-time verdict, "
                    "the spectral radius of simultaneous and alternating GD, and whether each reaches within 1e-3 "
                    "of the equilibrium from (1, 1).")
    table.add_argument("--lr", type=float, default=0.2, help="learning rate (default: %(default)s, the paper's)")
    table.add_argument("--steps", type=int, default=500, help="simulated steps (default: %(default)s, the paper's)")
    table.add_argument("--n-disc", type=int, default=1, help="D steps per G step, alternating (default: %(default)s)")
    table.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    table.set_defaults(func=cmd_table)


def _add_spectrum_parser(actions) -> None:
    spectrum = actions.add_parser(
        "spectrum", help="leading eigenvalues of a run's game Jacobian at a checkpoint",
        description="The eigenvalues of largest magnitude and of largest real part of the Jacobian of the run's "
                    "training field (loss and penalties over all parameters of the raw G and D) on a fixed batch, "
                    "matrix-free with ARPACK; plotted in the complex plane.")
    spectrum.add_argument("run_dir", metavar="RUN_DIR")
    spectrum.add_argument("--step", type=int, help="checkpoint step (default: the latest)")
    spectrum.add_argument("--top", type=int, default=20, help="eigenvalues of each kind (default: %(default)s)")
    spectrum.add_argument("--batch", type=int, default=1024, help="real samples and latents (default: %(default)s)")
    spectrum.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: %(default)s)")
    spectrum.add_argument("--plot", metavar="PATH",
                          help="the picture (default: RUN_DIR/dynamics/spectrum_step_XXXXXXXX.png)")
    spectrum.add_argument("--json", action="store_true", help="print one JSON object")
    spectrum.set_defaults(func=cmd_spectrum)


def add_dynamics_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``ganscape dynamics dirac|table|spectrum`` on the command's subparsers."""
    dynamics = commands.add_parser("dynamics", help="training dynamics: the Dirac-GAN and the spectrum of a run",
                                   description="Eigenvalue analysis of GAN training (Mescheder et al. 2018) with "
                                               "ganscape's own losses and penalties.")
    actions = dynamics.add_subparsers(dest="dynamics_command", required=True, metavar="ACTION")
    _add_dirac_parser(actions)
    _add_table_parser(actions)
    _add_spectrum_parser(actions)
