"""The top singular values of every weight of G and D through training, logged with ``log.spectra_every``.

BigGAN (Brock et al., 2019, Section 4) watches the largest singular values sigma_0, sigma_1, sigma_2 of each
weight matrix of G and D: G's first-layer sigma_0 grows and explodes when training collapses, D's spectra
grow noisily and spike. The values are those of the trained weight itself (the "unnormalized" one: before
spectral or weight normalization rescales it in the forward pass).

What is measured
    Every layer of G and D with a weight matrix: linear layers, convolutions and embeddings, in the order
    the networks register them. A convolution's kernel is the matrix (out, in * kh * kw), as BigGAN-PyTorch
    reshapes it (``W.view(W.size(0), -1)``); a transposed convolution's (in, out, kh, kw) kernel has its
    output dimension moved first, as spectral normalization here does. Embeddings are included: an
    embedding is the linear map from a one-hot class to a feature vector, so its singular values are its
    gains like any layer's, and BigGAN spectrally normalizes D's projection embedding (BigGAN-PyTorch logs its
    sigma_0 as well). Biases and normalization gains (vectors) have no spectrum and are left out. The trained
    G is measured, not its EMA.
How
    Subspace (block power) iteration on each matrix W (m x n) with ``k + OVERSAMPLE`` left vectors U:
    ``V = orth(W^T U)``, ``U = orth(W V)``, then the Rayleigh-Ritz step: the singular values of the small
    matrix ``U^T W V`` (W restricted to the two subspaces) estimate W's largest ones. The extra vectors make
    the top k converge at the rate of the gap to the (k + OVERSAMPLE)-th value rather than to the (k+1)-th.
    The vectors are kept between measurements: W moves little between them, so a few iterations from the
    previous vectors (warm start) suffice, and the first measurement of a layer (cold start) runs more from
    random vectors. Cheap: an iteration is two products of W with k + 8 columns (one CPU thread: 0.02 s a
    measurement of biggan_digits' G and D, 0.8 s of biggan_cifar10's, whose training step takes far longer).
    Where the layer is spectrally normalized, the cold start's first vector is the layer's own power-iteration
    vector ``u``, which training keeps converged to W's top left singular vector: sigma_0 is then accurate
    from the first measurement (and again after a resume, which checkpoints ``u``).
Logged
    At the first log row at or after each multiple of ``log.spectra_every`` (every row whose step is a
    multiple when ``spectra_every`` is a multiple of ``log.every``), into metrics.jsonl and TensorBoard:
    ``spectra/<G|D>/<layer>/s<i>`` for i < ``log.spectra_k`` (fewer when the matrix has fewer singular
    values), and the summaries ``spectra/<G|D>/first_s0`` (the first weight layer other than an embedding:
    BigGAN's G.linear, which takes z) and ``spectra/<G|D>/max_s0`` (the largest sigma_0 over the net's
    layers). ``layer`` is the module's name in the network (``blocks.0.0.conv1``).
Invisible to training
    Computed without gradients from detached weights, in the process that logs, with random start vectors
    from a generator of its own (``derived_seed(seed, "spectra")``): no buffer, parameter or random stream
    of the run changes, so a run checkpoints the same tensors with the key on or off.
Resuming
    The vectors are not checkpointed: a resumed run starts them cold again (more iterations at its first
    measurement, sigma_0 of spectrally normalized layers warm from their checkpointed ``u``); its values
    agree with a straight run's to the iterations' accuracy, not bit for bit.
"""

from __future__ import annotations

import torch
from torch import nn

from ganscape.config import Experiment
from ganscape.nets.layers import SpectralNorm
from ganscape.training.state import GANState, derived_seed

PREFIX = "spectra"
NETS = ("G", "D")
OVERSAMPLE = 8  # vectors iterated beyond the k reported: the top k converge at the gap to the (k+8)-th
COLD_ITERATIONS = 40  # the first measurement of a layer, from random vectors
WARM_ITERATIONS = 10  # later ones, from the previous measurement's vectors
WEIGHT_LAYERS = (nn.Linear, nn.modules.conv._ConvNd, nn.Embedding)
ROOT_NAME = "net"  # the layer name of a network that is itself one weight layer (its module name is empty)


def spectra_key(net: str, layer: str, index: int) -> str:
    """The metrics key of sigma_index of ``layer`` in ``net`` ("G" or "D")."""
    return f"{PREFIX}/{net}/{layer}/s{index}"


def weight_layers(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every layer of ``net`` with a weight matrix, in registration order."""
    return [(name or ROOT_NAME, module) for name, module in net.named_modules()
            if isinstance(module, WEIGHT_LAYERS) and module.weight.dim() >= 2]


def weight_matrix(layer: nn.Module) -> torch.Tensor:
    """The layer's trained weight as a detached (out, fan_in) matrix in float32 or float64: a convolution's
    (out, in, kh, kw) kernel as (out, in * kh * kw), a transposed one's (in, out, kh, kw) with out first."""
    weight = layer.weight.detach()
    if isinstance(layer, nn.modules.conv._ConvTransposeNd):
        weight = weight.movedim(1, 0)
    matrix = weight.flatten(1)
    return matrix if matrix.dtype in (torch.float32, torch.float64) else matrix.float()


def orthonormal(columns: torch.Tensor) -> torch.Tensor:
    """An orthonormal basis of the span of ``columns`` (the Q of their reduced QR factorization)."""
    return torch.linalg.qr(columns).Q


def top_singular_values(w: torch.Tensor, k: int, start: torch.Tensor,
                        iterations: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` largest singular values of ``w`` (m x n), in decreasing order, by ``iterations`` (>= 1) steps
    of subspace iteration from the left vectors ``start`` (m x b, k <= b <= min(m, n)), and the left vectors
    to start the next measurement from (an orthonormal m x b basis of the subspace reached)."""
    if iterations < 1:
        raise ValueError(f"subspace iteration needs at least one iteration, got {iterations}")
    u = orthonormal(start)
    for _ in range(iterations):
        v = orthonormal(w.mT @ u)
        u = orthonormal(w @ v)
    values = torch.linalg.svdvals(u.mT @ w @ v)  # Rayleigh-Ritz on the two subspaces
    return values[:k], u


class SpectraMonitor:
    """The singular values of the module docstring for one run: its random generator and, per layer, the
    left vectors of the last measurement (the warm start of the next one)."""

    def __init__(self, k: int, every: int, seed: int, start_step: int = 0,
                 iterations: int = WARM_ITERATIONS, cold_iterations: int = COLD_ITERATIONS):
        self.k, self.every = k, every
        self.iterations, self.cold_iterations = iterations, cold_iterations
        self.generator = torch.Generator().manual_seed(seed)
        self.vectors: dict[str, torch.Tensor] = {}
        self.previous_step = start_step

    @classmethod
    def for_run(cls, cfg: Experiment, state: GANState) -> SpectraMonitor:
        """The monitor of a run whose ``state`` is at the step it starts (or resumes) from."""
        return cls(cfg.log.spectra_k, cfg.log.spectra_every, derived_seed(cfg.train.seed, "spectra"), state.step)

    def logged(self, state: GANState) -> dict[str, float]:
        """This log row's values when it is the first at or after a multiple of ``every``, else none."""
        due = state.step // self.every > self.previous_step // self.every
        self.previous_step = state.step
        return self.measure({"G": state.G, "D": state.D}) if due else {}

    @torch.no_grad()
    def measure(self, nets: dict[str, nn.Module]) -> dict[str, float]:
        """Every layer's top singular values and the summaries, for the networks by name ("G", "D")."""
        values = {}
        for net_name, net in nets.items():
            layers = weight_layers(net)
            for name, layer in layers:
                for i, value in enumerate(self.singular_values(f"{net_name}/{name}", layer)):
                    values[spectra_key(net_name, name, i)] = value
            values |= summaries(net_name, layers, values)
        return values

    def singular_values(self, key: str, layer: nn.Module) -> list[float]:
        """The top ``k`` singular values of ``layer``'s weight, from (and updating) the vectors kept for ``key``."""
        w = weight_matrix(layer)
        m, n = w.shape
        k = min(self.k, m, n)
        block = min(k + OVERSAMPLE, m, n)
        start = self.vectors.get(key)
        warm = start is not None and start.shape == (m, block)
        start = start.to(w) if warm else self.cold_start(layer, w, block)
        iterations = self.iterations if warm else self.cold_iterations
        values, self.vectors[key] = top_singular_values(w, k, start, iterations)
        return values.tolist()

    def cold_start(self, layer: nn.Module, w: torch.Tensor, block: int) -> torch.Tensor:
        """Random left vectors from the monitor's own generator; a spectrally normalized layer's first one is
        its power-iteration vector ``u`` (already close to W's top left singular vector)."""
        start = torch.randn(w.shape[0], block, generator=self.generator, dtype=torch.float64).to(w)
        if isinstance(layer, SpectralNorm):
            start[:, 0] = layer.u.to(w)
        return start


def summaries(net: str, layers: list[tuple[str, nn.Module]], values: dict[str, float]) -> dict[str, float]:
    """``first_s0`` (sigma_0 of the first layer that is not an embedding) and ``max_s0`` of ``net``'s measured
    ``layers``; none for a net without weight layers."""
    sigma0 = {name: values[spectra_key(net, name, 0)] for name, _ in layers}
    first = next((sigma0[name] for name, layer in layers if not isinstance(layer, nn.Embedding)), None)
    return ({f"{PREFIX}/{net}/max_s0": max(sigma0.values())} if sigma0 else {}) | (
        {f"{PREFIX}/{net}/first_s0": first} if first is not None else {})


def sigma0_curves(rows: list[dict]) -> dict[str, dict[str, tuple[list[int], list[float]]]]:
    """sigma_0 of each layer over the steps, from metrics.jsonl's records: {net: {layer: (steps, values)}} for
    G and D, layers in the order they were logged."""
    curves: dict[str, dict[str, tuple[list[int], list[float]]]] = {net: {} for net in NETS}
    for row in rows:
        for key, value in row.items():
            parts = key.split("/")
            if len(parts) == 4 and parts[0] == PREFIX and parts[1] in curves and parts[3] == "s0":
                steps, values = curves[parts[1]].setdefault(parts[2], ([], []))
                steps.append(row["step"])
                values.append(value)
    return curves
