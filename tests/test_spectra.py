"""The top singular values of every weight of G and D (training/spectra.py, ``log.spectra_every``) against
``torch.linalg.svdvals`` and matrices built with known singular values; the warm start; no effect on training;
the picture (``ganscape plot spectra``)."""

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from ganscape.cli import main
from ganscape.config import load_config
from ganscape.nets.layers import SNLinear
from ganscape.runs import RunDir
from ganscape.store.checkpoint import list_checkpoints, load_checkpoint
from ganscape.store.rundir import read_metrics
from ganscape.training.loop import train
from ganscape.training.spectra import (COLD_ITERATIONS, SpectraMonitor, sigma0_curves, spectra_key,
                                       top_singular_values)
from ganscape.training.spectra_picture import save_spectra_picture
from run_states import assert_same_state, final_state

TOLERANCE = 1e-4  # relative, float32 weights: COLD_ITERATIONS (40) or WARM_ITERATIONS (10), 8 extra vectors


@pytest.fixture(autouse=True)
def one_thread():
    """Matrices of tens of rows: a second thread only adds waiting on a busy machine (seconds instead of ms)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def with_singular_values(m: int, n: int, values: list[float], seed: int = 0) -> torch.Tensor:
    """An m x n matrix U diag(values) V^T with U, V orthonormal columns from the QR of Gaussian matrices: its
    singular values are ``values`` (and zeros), by construction."""
    g = torch.Generator().manual_seed(seed)
    r = len(values)
    u = torch.linalg.qr(torch.randn(m, r, generator=g, dtype=torch.float64)).Q
    v = torch.linalg.qr(torch.randn(n, r, generator=g, dtype=torch.float64)).Q
    return (u * torch.tensor(values, dtype=torch.float64)) @ v.T


def gaussian(m: int, n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(m, n, generator=torch.Generator().manual_seed(seed))


def relative_error(measured, exact) -> float:
    measured, exact = torch.as_tensor(measured, dtype=torch.float64), torch.as_tensor(exact, dtype=torch.float64)
    return float(((measured - exact).abs() / exact).max())


def measured(monitor: SpectraMonitor, net: nn.Module, name: str, k: int = 3) -> list[float]:
    values = monitor.measure({"G": net})
    return [values[spectra_key("G", name, i)] for i in range(k)]


def test_a_matrix_built_with_known_singular_values():
    """U diag(9, 6, 4, 3, 2.5, ...) V^T (50 x 70, rank 10): the top three are 9, 6 and 4, to 1e-6 in float64."""
    known = [9.0, 6.0, 4.0, 3.0, 2.5, 2.0, 1.5, 1.0, 0.5, 0.25]
    w = with_singular_values(50, 70, known)
    start = torch.randn(50, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    values, vectors = top_singular_values(w, 3, start, COLD_ITERATIONS)
    assert relative_error(values, known[:3]) < 1e-6
    assert vectors.shape == (50, 7)


def test_convolution_kernels_are_reshaped_out_by_in_taps():
    """A conv kernel (16, 6, 3, 3) and a transposed one (6, 16, 3, 3) made from a 16 x 54 matrix with singular
    values 8, 5, 3, ... (as BigGAN-PyTorch reshapes, W.view(out, -1); the transposed kernel with its out
    dimension first): both measure 8, 5, 3."""
    known = [8.0, 5.0, 3.0, 2.0, 1.0, 0.5]
    w = with_singular_values(16, 6 * 3 * 3, known).float()
    conv, transposed = nn.Conv2d(6, 16, 3), nn.ConvTranspose2d(6, 16, 3)
    with torch.no_grad():
        conv.weight.copy_(w.view(16, 6, 3, 3))
        transposed.weight.copy_(w.view(16, 6, 3, 3).transpose(0, 1))
    monitor = SpectraMonitor(k=3, every=1, seed=0)
    assert relative_error(measured(monitor, conv, "net"), known[:3]) < TOLERANCE
    assert relative_error(measured(monitor, transposed, "net"), known[:3]) < TOLERANCE


def reference_matrices(net: nn.Module) -> dict[str, torch.Tensor]:
    """Every weight matrix of ``net`` reshaped here independently of the module under test."""
    return {"0": net[0].weight, "1": net[1].weight.reshape(48, -1),
            "2": net[2].weight.transpose(0, 1).reshape(32, -1), "3": net[3].weight}


def layer_zoo() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(80, 120), nn.Conv2d(8, 48, 3), nn.ConvTranspose2d(48, 32, 4),
                         nn.Embedding(100, 32))


def test_random_weights_against_svdvals():
    """Every layer of a linear, conv, transposed-conv and embedding zoo at initialization (cold start,
    COLD_ITERATIONS): the top three singular values agree with torch.linalg.svdvals to TOLERANCE."""
    net = layer_zoo()
    values = SpectraMonitor(k=3, every=1, seed=0).measure({"G": net})
    for name, matrix in reference_matrices(net).items():
        exact = torch.linalg.svdvals(matrix.detach().double())[:3]
        got = [values[spectra_key("G", name, i)] for i in range(3)]
        assert relative_error(got, exact) < TOLERANCE, (name, got, exact)


def test_trained_weights_against_svdvals():
    """A two-layer MLP measured at initialization, then trained by 100 SGD steps (lr 0.2) to regress a rank-3
    linear map (singular values 6, 4, 3; the loss halves and the top singular values grow from 1.2 to 2.3),
    then measured again from the first measurement's vectors (WARM_ITERATIONS): torch.linalg.svdvals' top three
    of each trained weight to TOLERANCE."""
    torch.manual_seed(5)
    net = nn.Sequential(nn.Linear(80, 120), nn.ReLU(), nn.Linear(120, 60))
    target = with_singular_values(60, 80, [6.0, 4.0, 3.0], 7).float()
    monitor = SpectraMonitor(k=3, every=1, seed=0)
    monitor.measure({"G": net})
    optimizer = torch.optim.SGD(net.parameters(), lr=0.2)
    data = torch.Generator().manual_seed(6)
    for _ in range(100):
        x = torch.randn(64, 80, generator=data)
        optimizer.zero_grad()
        (net(x) - x @ target.T).square().mean().backward()
        optimizer.step()
    values = monitor.measure({"G": net})
    for name in ("0", "2"):
        exact = torch.linalg.svdvals(net.get_submodule(name).weight.detach().double())[:3]
        got = [values[spectra_key("G", name, i)] for i in range(3)]
        assert relative_error(got, exact) < TOLERANCE, (name, got, exact)
    assert float(exact[0]) > 2.0  # trained: the regression grew the spectrum's top


def test_the_warm_start_is_carried_between_measurements():
    """One iteration per measurement on a 200 x 300 Gaussian matrix (dense spectrum): the first measurement is
    off by over 1%, but 40 measurements from each other's vectors reach svdvals to TOLERANCE (40 cold ones
    of one iteration each would stay as far off as the first)."""
    layer = nn.Linear(300, 200)
    with torch.no_grad():
        layer.weight.copy_(gaussian(200, 300))
    exact = torch.linalg.svdvals(layer.weight.detach().double())[:3]
    monitor = SpectraMonitor(k=3, every=1, seed=0, iterations=1, cold_iterations=1)
    assert relative_error(measured(monitor, layer, "net"), exact) > 1e-2
    for _ in range(39):
        monitor.measure({"G": layer})
    assert relative_error(measured(monitor, layer, "net"), exact) < TOLERANCE


def test_spectral_norm_u_seeds_sigma0():
    """An SNLinear whose u is its weight's top left singular vector (what training converges u to): sigma_0 from
    one cold iteration equals svdvals' to 1e-6; a plain Linear with the same weight, started at random, is off
    by over 1e-3 after that one iteration."""
    w = gaussian(150, 100)
    sn, plain = SNLinear(100, 150), nn.Linear(100, 150)
    with torch.no_grad():
        sn.weight.copy_(w)
        plain.weight.copy_(w)
        sn.u.copy_(torch.linalg.svd(w.double()).U[:, 0].float())
    exact = float(torch.linalg.svdvals(w.double())[0])
    one_iteration = lambda: SpectraMonitor(k=3, every=1, seed=0, cold_iterations=1)  # cold: a monitor each
    assert relative_error(measured(one_iteration(), sn, "net")[0], exact) < 1e-6
    assert relative_error(measured(one_iteration(), plain, "net")[0], exact) > 1e-3


def scaled_linear(n_in: int, n_out: int, sigma0: float, seed: int) -> nn.Linear:
    """A Linear layer whose weight has singular values sigma0, sigma0 / 2, sigma0 / 4, ..."""
    layer = nn.Linear(n_in, n_out)
    rank = min(n_in, n_out)
    with torch.no_grad():
        layer.weight.copy_(with_singular_values(n_out, n_in, [sigma0 / 2**i for i in range(rank)], seed).float())
    return layer


def test_g_and_d_their_summaries_and_the_rows_measured():
    """G = [embedding with sigma_0 20, linear 3, linear 5], D = [linear 7, linear 11] (built values): each net's
    keys carry its own values, first_s0 is G's first linear layer (3, not the embedding's 20), max_s0 is 20
    for G and 11 for D; a layer with one singular value logs s0 only. With every=15 and rows every 10 steps,
    the rows measured are the first at or after 15, 30 and 45: steps 20, 30 and 50."""
    embedding = nn.Embedding(6, 4)
    with torch.no_grad():
        embedding.weight.copy_(with_singular_values(6, 4, [20.0, 10.0, 5.0, 2.5], 9).float())
    G = nn.Sequential(embedding, scaled_linear(4, 8, 3.0, 1), scaled_linear(8, 8, 5.0, 2))
    D = nn.Sequential(scaled_linear(8, 8, 7.0, 3), scaled_linear(8, 1, 11.0, 4))
    monitor = SpectraMonitor(k=3, every=15, seed=0)
    state = SimpleNamespace(G=G, D=D, step=0)
    rows = {}
    for step in range(10, 60, 10):
        state.step = step
        rows[step] = monitor.logged(state)
    assert [step for step, row in rows.items() if row] == [20, 30, 50]
    row = rows[50]
    built = {"G/0": [20, 10, 5], "G/1": [3, 1.5, 0.75], "G/2": [5, 2.5, 1.25], "D/0": [7, 3.5, 1.75], "D/1": [11]}
    for layer, values in built.items():
        net, name = layer.split("/")
        got = [row[spectra_key(net, name, i)] for i in range(len(values))]
        assert relative_error(got, values) < TOLERANCE, (layer, got)
    assert spectra_key("D", "1", 1) not in row
    assert math.isclose(row["spectra/G/first_s0"], 3.0, rel_tol=TOLERANCE)
    assert math.isclose(row["spectra/G/max_s0"], 20.0, rel_tol=TOLERANCE)
    assert math.isclose(row["spectra/D/max_s0"], 11.0, rel_tol=TOLERANCE)


def test_sigma0_curves_from_rows_by_hand():
    """Two rows with spectra and one without: sigma_0 per layer and net over the steps, s1 and summaries left out."""
    rows = [{"step": 10, "d_loss": 1.0, "spectra/G/a/s0": 1.0, "spectra/G/a/s1": 0.5, "spectra/D/b/s0": 2.0,
             "spectra/G/max_s0": 1.0},
            {"step": 20, "d_loss": 0.9},
            {"step": 30, "spectra/G/a/s0": 1.5, "spectra/D/b/s0": 2.5}]
    assert sigma0_curves(rows) == {"G": {"a": ([10, 30], [1.0, 1.5])}, "D": {"b": ([10, 30], [2.0, 2.5])}}
    assert save_spectra_picture(rows[1:2], None, "nothing") is None  # no spectra: no picture


def run(overrides, name, **kwargs):
    cfg = load_config(None, overrides + [f"run.name={name}"])
    directory = RunDir.create(cfg)
    train(cfg, directory, progress=False, **kwargs)
    return directory


@pytest.fixture
def spectral_tiny(tiny):
    """The tiny 2-D run with a spectrally normalized D (its power-iteration vectors must stay as they were)."""
    return tiny + ["d.norm=spectral"]


def test_logging_spectra_changes_nothing_in_training_and_measures_the_checkpoint(spectral_tiny, capsys):
    """With log.spectra_every=20 the checkpoints are bit-identical to the run's without it and the log differs
    only by the spectra columns, at rows 20 and 40; at step 40 every value matches svdvals of the checkpoint's
    weights to TOLERANCE. ``ganscape plot spectra`` draws the run's picture, and refuses the run without."""
    plain = run(spectral_tiny, "plain")
    measured_run = run(spectral_tiny + ["log.spectra_every=20"], "measured")
    assert_same_state(final_state(plain), final_state(measured_run))
    rows = read_metrics(measured_run)
    assert [r["step"] for r in rows if "spectra/G/max_s0" in r] == [20, 40]
    strip = lambda rows: [{k: v for k, v in r.items() if not k.startswith("spectra/") and k != "steps_per_s"}
                          for r in rows]
    assert strip(read_metrics(plain)) == strip(rows)
    weights = load_checkpoint(dict(list_checkpoints(measured_run.checkpoints))[40])
    last = next(r for r in rows if r["step"] == 40 and "spectra/G/max_s0" in r)
    for net in ("G", "D"):
        for key, weight in weights[net].items():
            if key.endswith(".weight") and weight.dim() == 2:
                exact = torch.linalg.svdvals(weight.double())[:3]
                layer = key.removesuffix(".weight")
                got = [last[spectra_key(net, layer, i)] for i in range(len(exact))]
                assert relative_error(got, exact) < TOLERANCE, (net, layer)
    assert main(["plot", "spectra", str(measured_run)]) == 0
    assert measured_run.spectra_picture.stat().st_size > 0
    assert main(["plot", "spectra", str(plain)]) == 2
    assert "log.spectra_every" in capsys.readouterr().err
