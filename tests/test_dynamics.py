"""The training dynamics lab against the closed forms of Mescheder et al. (2018), the paper's table,
the commands, and the matrix-free spectrum on the Dirac-GAN and on a real 2-D run."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from ganscape.cli import main
from ganscape.dynamics import spectrum as spectrum_module
from ganscape.dynamics.dirac import dirac_gan, noise_nodes
from ganscape.dynamics.jacobian import Dynamics, analyse, format_eigenvalues, jacobian, update_map
from ganscape.dynamics.simulate import plot_dynamics, simulate
from ganscape.dynamics.spectrum import leading_eigenvalues, run_field
from ganscape.dynamics.table import PAPER_METHODS, markdown_table, reproduce_table
from ganscape.errors import ConfigError
from ganscape.objectives.losses import LOSSES, Loss
from ganscape.runs import RunDir

@pytest.fixture(autouse=True)
def one_thread():
    """Every tensor here is tiny: a second intra-op thread only adds synchronisation, which on a loaded
    machine costs far more than the work (a vector-Jacobian product of the 2-D run: 1 ms vs 300 ms)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


F_PRIME = {"minimax": 0.5, "ns": 0.5, "wgan": 1.0, "hinge": 1.0}  # f'(0) of each loss on the Dirac-GAN
PAPER_CONVERGENT = {"consensus optimization", "instance noise", "R1", "R2"}


def eigs(loss="minimax", penalties=(), weights=(), consensus=0.0, dim=1):
    return analyse(Dynamics(dirac_gan(loss, dict(zip(penalties, weights)), dim), consensus)).eigenvalues


def assert_same_values(actual, expected, atol=1e-10):
    """Equal as multisets of complex numbers."""
    key = lambda z: (round(z.real, 5), round(z.imag, 5))  # noqa: E731
    actual, expected = sorted(np.asarray(actual, complex), key=key), sorted(np.asarray(expected, complex), key=key)
    np.testing.assert_allclose(actual, expected, atol=atol)


def pair(real, discriminant):
    """real ± sqrt(discriminant), complex when the discriminant is negative."""
    root = np.emath.sqrt(discriminant)
    return [real + root, real - root]


# --------------------------------------------------------------------------------------------------
# Eigenvalues at the equilibrium against the paper's closed forms


@pytest.mark.parametrize("loss", ["minimax", "ns", "wgan", "hinge"])
def test_unregularized_game_has_eigenvalues_plus_minus_i_fprime(loss):
    values = eigs(loss)
    assert_same_values(values, [1j * F_PRIME[loss], -1j * F_PRIME[loss]])
    assert not analyse(Dynamics(dirac_gan(loss))).continuous_converges


@pytest.mark.parametrize("penalty", ["r1", "r2"])
@pytest.mark.parametrize("loss", ["minimax", "wgan"])
@pytest.mark.parametrize("gamma", [0.3, 0.7, 2.5, 4.0])
def test_zero_centred_penalties_match_the_closed_form(penalty, loss, gamma):
    f1 = F_PRIME[loss]
    values = eigs(loss, [penalty], [gamma])
    assert_same_values(values, pair(-gamma / 2, gamma ** 2 / 4 - f1 ** 2))
    assert np.all(values.real < 0)
    assert np.all(values.imag == 0) == (gamma > 2 * f1)  # real eigenvalues above the critical gamma = 2 f'(0)


def test_r1_at_the_critical_weight_has_a_double_eigenvalue():
    assert_same_values(eigs("ns", ["r1"], [1.0]), [-0.5, -0.5], atol=1e-6)
    assert_same_values(eigs("minimax", ["r1"], [0.3]), [-0.15 + 0.4770j, -0.15 - 0.4770j], atol=1e-4)  # papers.md


@pytest.mark.parametrize("loss", ["minimax", "ns"])
@pytest.mark.parametrize("sigma", [0.7, 1.3, 2.5])
def test_instance_noise_matches_the_closed_form(loss, sigma):
    f1, f2 = 0.5, -0.25  # f'(0), f''(0) of the standard GAN
    values = eigs(loss, ["instance_noise"], [sigma])
    assert_same_values(values, pair(f2 * sigma ** 2, f2 ** 2 * sigma ** 4 - f1 ** 2), atol=1e-8)
    if sigma == 0.7:
        assert_same_values(values, [-0.1225 + 0.4848j, -0.1225 - 0.4848j], atol=1e-4)  # papers.md


@pytest.mark.parametrize("dim", [1, 3])
def test_noise_nodes_have_mean_zero_and_identity_covariance(dim):
    nodes = noise_nodes(200, dim)
    assert nodes.shape == (200 * dim, dim) and nodes.dtype == torch.float64
    torch.testing.assert_close(nodes.mean(0), torch.zeros(dim, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(nodes.T @ nodes / len(nodes), torch.eye(dim, dtype=torch.float64), atol=1e-12, rtol=0)


@pytest.mark.parametrize("loss", ["minimax", "wgan"])
@pytest.mark.parametrize("gamma", [0.3, 1.0])
def test_consensus_optimization_matches_the_closed_form(loss, gamma):
    f1 = F_PRIME[loss]
    values = eigs(loss, consensus=gamma)
    assert_same_values(values, [-gamma * f1 ** 2 + 1j * f1, -gamma * f1 ** 2 - 1j * f1])
    assert analyse(Dynamics(dirac_gan(loss), gamma)).continuous_converges


def test_a_new_registered_loss_is_analysed_through_the_registry(monkeypatch):
    # a Wasserstein loss scaled by 3: f'(0) = 3, so the eigenvalues are ±3i
    scaled = Loss("scaled", lambda real, fake: 3 * (fake.mean() - real.mean()), lambda fake: -3 * fake.mean(), "")
    monkeypatch.setitem(LOSSES, "scaled", scaled)
    assert_same_values(eigs("scaled"), [3j, -3j])


def test_d_dimensional_game_repeats_each_eigenvalue_d_times():
    analysis = analyse(Dynamics(dirac_gan("minimax", "r1:0.3", dim=3)))
    assert analysis.jacobian.shape == (6, 6)
    assert_same_values(analysis.eigenvalues, 3 * pair(-0.15, 0.3 ** 2 / 4 - 0.25), atol=1e-8)
    assert format_eigenvalues(analysis.eigenvalues) == "−0.15 ± 0.477i (×3)"


def test_wgan_gp_field_is_discontinuous_at_psi_zero_and_its_jacobian_undefined():
    lam = 0.35
    dynamics = Dynamics(dirac_gan("wgan", {"wgan_gp": lam}))
    for theta, psi in [(0.5, 0.3), (-0.4, -0.8), (0.2, 1e-9), (0.2, -1e-9)]:
        v = dynamics.field(torch.tensor([theta, psi], dtype=torch.float64)).detach().numpy()
        # v = (psi, -theta - 2 lam (|psi| - 1) sign(psi)): a jump of 4 lam across psi = 0
        np.testing.assert_allclose(v, [psi, -theta - 2 * lam * (abs(psi) - 1) * math.copysign(1, psi)], atol=1e-8)
    analysis = analyse(dynamics, lr=0.2)
    assert np.isnan(analysis.eigenvalues).all()
    assert not analysis.continuous_converges and not analysis.converges("simultaneous")
    assert format_eigenvalues(analysis.eigenvalues) == "undefined (NaN)"


# --------------------------------------------------------------------------------------------------
# Discrete-time verdicts


@pytest.mark.parametrize("penalties, weights, consensus", [((), (), 0.0), (("r1",), (0.3,), 0.0),
                                                           (("instance_noise",), (0.7,), 0.0), ((), (), 1.0)])
@pytest.mark.parametrize("lr", [0.2, 1.5])
def test_simultaneous_update_has_eigenvalues_one_plus_h_lambda(penalties, weights, consensus, lr):
    dynamics = Dynamics(dirac_gan("minimax", dict(zip(penalties, weights))), consensus)
    analysis = analyse(dynamics, lr)
    step = jacobian(update_map(dynamics, lr, "simultaneous"), dynamics.game.equilibrium())
    assert_same_values(np.linalg.eigvals(step), 1 + lr * analysis.eigenvalues, atol=1e-8)
    radius = np.abs(1 + lr * analysis.eigenvalues).max()
    assert analysis.radius["simultaneous"] == pytest.approx(radius, abs=1e-10)
    assert analysis.converges("simultaneous") == (radius < 1)


def test_simultaneous_gd_diverges_for_the_unregularized_game_at_any_lr():
    for lr in [0.01, 0.2, 1.0]:
        analysis = analyse(Dynamics(dirac_gan("minimax")), lr)
        assert analysis.radius["simultaneous"] == pytest.approx(math.sqrt(1 + lr ** 2 / 4), abs=1e-12)
        assert not analysis.converges("simultaneous")
    # papers.md: the radius grows x1.00499 per step at h = 0.2, about x12 in 500 steps (near the equilibrium)
    trajectory = simulate(Dynamics(dirac_gan("minimax")), (1e-4, 1e-4), 0.2, 500)
    assert trajectory.distances[-1] / trajectory.distances[0] == pytest.approx(math.sqrt(1.01) ** 500, rel=1e-3)


@pytest.mark.parametrize("lr, n_disc", [(0.2, 1), (0.2, 5), (3.9, 1), (5.0, 1), (1.0, 20)])
def test_alternating_update_matches_the_closed_form(lr, n_disc):
    alpha = math.sqrt(n_disc) * lr * 0.5
    expected = pair(1 - alpha ** 2 / 2, (1 - alpha ** 2 / 2) ** 2 - 1)
    dynamics = Dynamics(dirac_gan("ns"))
    step = jacobian(update_map(dynamics, lr, "alternating", n_disc), dynamics.game.equilibrium())
    assert_same_values(np.linalg.eigvals(step), expected, atol=1e-8)
    radius = analyse(dynamics, lr, n_disc).radius["alternating"]
    if alpha <= 2:
        assert radius == pytest.approx(1.0, abs=1e-12)  # cycles
    else:
        assert radius > 1


def test_alternating_gd_cycles_without_regularization():
    dynamics = Dynamics(dirac_gan("minimax"))
    analysis = analyse(dynamics, 0.2)
    assert analysis.radius["alternating"] == pytest.approx(1.0, abs=1e-12)
    assert not analysis.converges("alternating")
    distances = simulate(dynamics, (0.01, 0.01), 0.2, 400, "alternating").distances
    assert distances.min() > 0.9 * distances[0] and distances.max() < 1.1 * distances[0]  # a closed orbit


# --------------------------------------------------------------------------------------------------
# Simulation and picture


def test_r1_trajectory_converges_from_one_one():
    trajectory = simulate(Dynamics(dirac_gan("minimax", "r1:0.3")), (1, 1), 0.2, 500, "alternating")
    assert trajectory.points.shape == (501, 2) and trajectory.points.dtype == np.float64
    np.testing.assert_array_equal(trajectory.points[0], [1.0, 1.0])
    assert trajectory.converged and 0 < trajectory.reached_at < 500 and trajectory.final_distance < 1e-3


def test_wgan_gp_and_clipping_do_not_converge():
    gp = simulate(Dynamics(dirac_gan("wgan", "wgan_gp:0.35")), (1, 1), 0.2, 500)
    assert not gp.converged and gp.distances[-100:].min() > 0.5
    clipped = simulate(Dynamics(dirac_gan("wgan", "wgan_clip:0.5")), (1, 0.2), 0.2, 300, "alternating", 5)
    assert np.abs(clipped.points[:, 1]).max() == pytest.approx(0.5)  # psi is clipped to the bound
    assert not clipped.converged


def test_vector_field_picture_is_a_png(tmp_path):
    dynamics = Dynamics(dirac_gan("ns", "r1:0.3"))
    path = plot_dynamics(dynamics, tmp_path / "pic" / "field.png", "R1",
                         simulate(dynamics, (1, 1), 0.2, 50, "alternating"), resolution=9)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        assert image.width > 100 and image.height > 100
    with pytest.raises(ConfigError, match="one-dimensional"):
        plot_dynamics(Dynamics(dirac_gan("ns", dim=2)), tmp_path / "x.png", "")


# --------------------------------------------------------------------------------------------------
# The paper's table and the commands


def test_table_reproduces_the_papers_conclusions(capsys):
    assert main(["dynamics", "table", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    rows = {row["method"]: row for row in result["rows"]}
    assert set(rows) == {m.name for m in PAPER_METHODS}
    assert {name for name, row in rows.items() if row["converges"]} == PAPER_CONVERGENT
    for name, row in rows.items():
        expected = name in PAPER_CONVERGENT
        assert (row["continuous_converges"], row["simultaneous_converges"], row["alternating_converges"]) == \
            (expected,) * 3, name
    # the numbers of papers.md
    assert_same_values([complex(*z) for z in rows["unregularized GAN"]["eigenvalues"]], [0.5j, -0.5j])
    assert_same_values([complex(*z) for z in rows["R1"]["eigenvalues"]], [-0.15 + 0.477j, -0.15 - 0.477j], atol=1e-3)
    assert_same_values([complex(*z) for z in rows["consensus optimization"]["eigenvalues"]],
                       [-0.25 + 0.5j, -0.25 - 0.5j])
    assert_same_values([complex(*z) for z in rows["instance noise"]["eigenvalues"]],
                       [-0.1225 + 0.485j, -0.1225 - 0.485j], atol=1e-3)
    assert rows["unregularized GAN"]["simultaneous_radius"] == pytest.approx(1.00499, abs=1e-5)
    assert rows["unregularized GAN"]["alternating_radius"] == pytest.approx(1.0, abs=1e-12)
    assert rows["WGAN-GP"]["eigenvalues"] == [[None, None], [None, None]]


def test_markdown_table_lists_every_method_with_its_verdict():
    rows = reproduce_table(0.2, 5, methods=PAPER_METHODS[:1] + PAPER_METHODS[-1:])
    text = markdown_table(rows, 0.2, 5)
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(lines) == 3
    assert lines[1].startswith("| unregularized GAN |") and "±0.5i" in lines[1] and lines[1].endswith("**no** |")
    assert lines[2].startswith("| R2 |") and "−0.15 ± 0.477i" in lines[2]
    # stable at (0, 0) (ρ 0.975 and 0.970, see the README's table), but 5 steps from (1, 1) do not reach it
    assert lines[2].endswith("**locally** |") and "| no (" in lines[2]


def test_dirac_command_json(tmp_path, capsys):
    png = tmp_path / "field.png"
    args = ["dynamics", "dirac", "--loss", "ns", "--penalty", "r1:1.0", "--lr", "0.1",
            "--steps", "300", "--json", "--plot", str(png)]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(result["eigenvalues"], [[-0.5, 0.0], [-0.5, 0.0]], atol=1e-6)
    assert result["continuous_converges"] is True
    assert result["simultaneous_converges"] is True and result["alternating_converges"] is True
    assert result["simultaneous_radius"] == pytest.approx(0.95)
    assert result["penalties"] == [{"name": "r1", "weight": 1.0}]
    assert result["trajectory"]["converged"] is True and result["trajectory"]["steps"] == 300
    assert result["plot"] == str(png) and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_dirac_command_without_lr_and_other_schemes(capsys):
    assert main(["dynamics", "dirac", "--loss", "wgan", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(sorted(result["eigenvalues"]), [[0.0, -1.0], [0.0, 1.0]], atol=1e-12)
    assert result["continuous_converges"] is False
    assert "simultaneous_converges" not in result and "trajectory" not in result
    assert main(["dynamics", "dirac", "--loss", "minimax", "--scheme", "consensus", "--consensus-weight", "1",
                 "--lr", "0.2", "--steps", "10", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(sorted(result["eigenvalues"]), [[-0.25, -0.5], [-0.25, 0.5]], atol=1e-10)
    assert result["simultaneous_converges"] is True
    assert main(["dynamics", "dirac", "--loss", "ns", "--penalty", "instance_noise:0.7"]) == 0
    out = capsys.readouterr().out
    assert "eigenvalues: −0.1225 ± 0.4848i" in out and "continuous-time gradient flow: converges" in out


def test_dirac_verdict_is_local_where_a_far_start_does_not_reach_the_equilibrium(capsys):
    """ns + r1 (weight 1) at lr 2: J = [[0, 1/2], [-1/2, -1]] at (0, 0), so simultaneous GD's map I + 2J =
    [[1, 1], [-1, -1]] is nilpotent (spectral radius 0) and alternating GD's, (θ, ψ) -> (-ψ, -θ - ψ), has
    radius (1 + √5)/2. From (10, 0) the field v = (ψ σ(-ψθ), -θ σ(ψθ) - ψ), iterated here in closed
    form, saturates into the 2-cycle (10, -10) <-> (-10, 10); from (1, 1) simultaneous GD reaches 0."""
    sigmoid = lambda t: 1 / (1 + math.exp(-t))  # noqa: E731
    theta, psi = 10.0, 0.0
    for _ in range(100):
        theta, psi = theta + 2 * psi * sigmoid(-psi * theta), psi + 2 * (-theta * sigmoid(psi * theta) - psi)
    assert (theta, psi) == pytest.approx((-10.0, 10.0))
    args = ["dynamics", "dirac", "--loss", "ns", "--penalty", "r1:1", "--lr", "2", "--steps", "100"]
    assert main(args + ["--start", "10", "0"]) == 0
    out = capsys.readouterr().out
    assert "final distance 14.1)" in out  # |(-10, 10)|
    assert "continuous-time gradient flow: converges (" in out
    assert "simultaneous GD, lr 2: converges locally (spectral radius" in out
    assert "alternating GD, lr 2, n_disc 1: does not converge (spectral radius 1.61803)" in out
    assert main(args + ["--start", "1", "1"]) == 0
    assert "simultaneous GD, lr 2: converges (spectral radius" in capsys.readouterr().out


def test_dirac_command_json_is_strict_where_the_jacobian_is_undefined(capsys):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    assert main(["dynamics", "dirac", "--loss", "wgan", "--penalty", "wgan_gp:0.35",
                 "--lr", "0.2", "--steps", "50", "--json"]) == 0
    result = json.loads(capsys.readouterr().out, parse_constant=refuse)
    assert result["eigenvalues"] == [[None, None], [None, None]] and result["jacobian"][0][1] is None
    assert result["continuous_converges"] is False and result["simultaneous_radius"] is None
    assert result["simultaneous_converges"] is False and result["alternating_converges"] is False


@pytest.mark.parametrize("args, message", [
    (["--loss", "hingee"], "unknown loss 'hingee'. Did you mean 'hinge'? Known: hinge, ls, minimax, ns, wgan."),
    (["--penalty", "r3"], "unknown penalty 'r3'. Did you mean 'r2'? Valid: dragan, instance_noise, l2"),
    (["--penalty", "l2"], "Penalties on the Dirac-GAN: wgan_gp, dragan, r1, r2, instance_noise, wgan_clip."),
    (["--penalty", "r1:1", "--penalty", "r1:2"], "a penalty is listed twice: r1, r1"),
    (["--penalty", "r1:-1"], "penalty weights must be finite and > 0, got r1:-1.0"),
    (["--penalty", "r1:"], "'r1:' is not a penalty; give each penalty as name or name:weight"),
    (["--lr", "0"], "the learning rate must be > 0"),
])
def test_dirac_command_errors(args, message, capsys):
    assert main(["dynamics", "dirac", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ganscape: error: ") and message in err


# --------------------------------------------------------------------------------------------------
# The spectrum: matrix-free on the Dirac-GAN, and on a real run


@pytest.mark.parametrize("penalties, weights, consensus, magnitude, real", [
    (["r1"], [2.5], 0.0, [-1.25 - math.sqrt(1.5625 - 0.25)], [-1.25 + math.sqrt(1.5625 - 0.25)]),
    ([], [], 1.0, [-0.25 + 0.5j, -0.25 - 0.5j], [-0.25 + 0.5j, -0.25 - 0.5j]),
    ([], [], 0.0, [0.5j, -0.5j], [0.5j, -0.5j]),
])
def test_matrix_free_spectrum_recovers_the_dirac_eigenvalues(monkeypatch, penalties, weights, consensus, magnitude,
                                                             real):
    def no_dense(operator):
        raise AssertionError("the dense Jacobian was formed")

    monkeypatch.setattr(spectrum_module, "dense_jacobian", no_dense)
    x = torch.zeros(32, dtype=torch.float64, requires_grad=True)  # d = 16: n = 32 parameters
    v = Dynamics(dirac_gan("minimax", dict(zip(penalties, weights)), dim=16), consensus).field(x)
    largest_magnitude, largest_real = leading_eigenvalues(v, [x], 5, dense_limit=0)
    assert len(largest_magnitude) == len(largest_real) == 5
    for values, expected in ((largest_magnitude, magnitude), (largest_real, real)):
        distance = np.abs(values[:, None] - np.asarray(expected)[None]).min(axis=1)
        np.testing.assert_allclose(distance, 0, atol=1e-7)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("dynamics")
    args = [f"run.root={root}", "run.name=tiny", "train.steps=10", "train.batch_size=64", "g.width=16", "d.width=16",
            "g.depth=1", "d.depth=1", "latent.dim=4", "eval.every=10", "eval.samples=200", "log.samples_every=0",
            "checkpoint.every=5", "log.tensorboard=false", "penalty=r1:1"]
    assert main(["train", *args]) == 0
    return root / "tiny"


def test_spectrum_command_on_a_2d_run(tiny_run, capsys):
    assert main(["dynamics", "spectrum", str(tiny_run), "--top", "4", "--batch", "256", "--step", "5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["step"] == 5 and result["parameters"] == (4 * 16 + 16 + 16 * 2 + 2) + (2 * 16 + 16 + 16 + 1)
    for key in ("largest_magnitude", "largest_real"):
        values = np.array([complex(*z) for z in result[key]])
        assert len(values) == 4 and np.isfinite(values).all()
    magnitudes = np.abs([complex(*z) for z in result["largest_magnitude"]])
    assert np.all(np.diff(magnitudes) <= 1e-12) and magnitudes[0] > 0
    assert result["plot"] == str(tiny_run / "dynamics" / "spectrum_step_00000005.png")
    assert (tiny_run / "dynamics" / "spectrum_step_00000005.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["dynamics", "spectrum", str(tiny_run), "--top", "3", "--batch", "128"]) == 0
    out = capsys.readouterr().out
    assert "step 10: 179 parameters" in out and "largest real part:" in out


def test_matrix_free_and_dense_spectra_of_a_run_agree(tiny_run):
    v, params, step = run_field(RunDir.open(tiny_run), None, batch=128)
    assert step == 10 and v.dtype == torch.float64 and v.shape == (179,)
    dense = leading_eigenvalues(v, params, 4)
    arnoldi = leading_eigenvalues(v, params, 4, dense_limit=0)
    for a, b in zip(dense, arnoldi):
        np.testing.assert_allclose(np.abs(a), np.abs(b), rtol=1e-6)
        np.testing.assert_allclose(np.sort(a.real), np.sort(b.real), atol=1e-6)


def test_spectrum_errors(tiny_run, tmp_path, capsys):
    assert main(["dynamics", "spectrum", str(tmp_path)]) == 2
    assert "not a ganscape run directory" in capsys.readouterr().err
    assert main(["dynamics", "spectrum", str(tiny_run), "--step", "7"]) == 2
    assert "no checkpoint at step 7" in capsys.readouterr().err
