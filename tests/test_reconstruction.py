"""Test-set reconstruction error (Xiang & Li 2017) on tiny hand-built generators."""

import hashlib
import json

import numpy as np
import pytest
import torch
from torch import nn

from ganscape.config import DataConfig, MetricsConfig, from_dict
from ganscape.data.images import InMemoryImages
from ganscape.metrics.evaluate import evaluate
from ganscape.metrics.reconstruction import reconstruction_error

DIM = 6
pytestmark = pytest.mark.numerics  # float32 optimisations against thresholds: CI reruns these under AVX2 kernels


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: extra intra-op threads only add synchronisation, which stalls on a busy core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class TinyG(nn.Module):
    """z (DIM) -> linear -> tanh -> (N, C, S, S) image in [-1, 1]; optional label-dependent offset."""

    def __init__(self, channels=1, size=8, num_classes=0):
        super().__init__()
        self.shape = (channels, size, size)
        self.fc = nn.Linear(DIM, channels * size * size)
        # A BatchNorm with running stats: its mode matters, and eval mode must be used and restored.
        self.bn = nn.BatchNorm1d(channels * size * size)
        self.offset = nn.Embedding(num_classes, channels * size * size) if num_classes else None

    def forward(self, z, labels=None):
        h = self.bn(self.fc(z))
        if self.offset is not None:
            h = h + 3 * self.offset(labels)
        return torch.tanh(h).view(len(z), *self.shape)


def _generator(seed=0, dtype=torch.float32, **kwargs):
    torch.manual_seed(seed)
    G = TinyG(**kwargs)
    # Non-trivial running statistics, so train and eval mode give different outputs.
    G.bn.running_mean.uniform_(-0.2, 0.2)
    G.bn.running_var.uniform_(0.8, 1.2)
    return G.to(dtype)


def _planted(G, n, seed=1):
    """Images G(z*) for z* ~ N(0, I), in G's dtype."""
    torch.manual_seed(seed)
    z = torch.randn(n, DIM, dtype=G.fc.weight.dtype)
    G.eval()
    with torch.no_grad():
        return G(z)


def test_planted_latents_are_recovered_and_noise_is_not():
    G = _generator()
    torch.manual_seed(2)
    planted = _planted(G, 4)
    noise = torch.rand_like(planted) * 2 - 1  # U(-1, 1) noise is far from the 6-d image manifold
    # One call for both (per-image errors do not depend on the batch, see below).
    result = reconstruction_error(G, torch.cat([planted, noise]), DIM, steps=300)
    errors = result["per_image"]
    assert errors.dtype == torch.float64 and errors.shape == (8,)
    assert errors[:4].max() < 1e-4
    assert errors[4:].min() > 100 * errors[:4].max() and errors[4:].min() > 0.03
    assert result["num_images"] == 8 and result["steps"] == 300 and result["restarts"] == 1
    assert result["mse"] == pytest.approx(float(errors.mean()))
    assert result["mse_std"] == pytest.approx(float(errors.std(correction=0)))


def test_zero_steps_is_the_error_of_g_at_zero():
    G = _generator(channels=3, size=4)
    torch.manual_seed(3)
    x = torch.rand(5, 3, 4, 4) * 2 - 1
    result = reconstruction_error(G, x, DIM, steps=0)
    G.eval()
    with torch.no_grad():
        g0 = G(torch.zeros(1, DIM)).double()
    expected = ((g0 + 1) / 2 - (x.double() + 1) / 2).square().flatten(1).mean(dim=1)  # both mapped to [0, 1]
    torch.testing.assert_close(result["per_image"], expected, rtol=1e-12, atol=1e-12)
    assert result["mse"] == pytest.approx(float(expected.mean()), rel=1e-12)


def test_one_step_is_one_rmsprop_step_from_zero():
    # RMSProp(alpha=0.9, eps=1e-6) from zero state: v = 0.1 g^2, z1 = -lr g / (sqrt(v) + eps); the
    # reported error must be that of z1 (the returned latent), not of the z before the update.
    G = _generator(dtype=torch.float64).eval()
    torch.manual_seed(3)
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64) * 2 - 1
    z = torch.zeros(3, DIM, dtype=torch.float64, requires_grad=True)
    (((G(z) - x) / 2) ** 2).flatten(1).mean(dim=1).sum().backward()
    g = z.grad
    z1 = -0.05 * g / ((0.1 * g**2).sqrt() + 1e-6)
    with torch.no_grad():
        expected = (((G(z1) - x) / 2) ** 2).flatten(1).mean(dim=1)
    result = reconstruction_error(G, x, DIM, steps=1, lr=0.05)
    torch.testing.assert_close(result["per_image"], expected, rtol=1e-10, atol=0)
    assert result["lr"] == 0.05 and result["optimizer"] == "rmsprop(alpha=0.9, eps=1e-6)"


def test_per_image_errors_do_not_depend_on_the_batch_size():
    # float64 and few steps: RMSProp amplifies round-off (BLAS sums differ with the batch shape)
    # chaotically after ~50 steps on some images, which would hide the property under test.
    G = _generator(dtype=torch.float64)
    torch.manual_seed(4)
    x = torch.cat([_planted(G, 3), torch.rand(3, 1, 8, 8, dtype=torch.float64) * 2 - 1])
    # Two restarts: the z = 0 rows and the drawn starts must both be unaffected by batching.
    one = reconstruction_error(G, x, DIM, steps=30, restarts=2, batch_size=1)["per_image"]
    odd = reconstruction_error(G, x, DIM, steps=30, restarts=2, batch_size=4)["per_image"]
    full = reconstruction_error(G, x, DIM, steps=30, restarts=2, batch_size=len(x))["per_image"]
    torch.testing.assert_close(one, full, rtol=1e-9, atol=0)
    torch.testing.assert_close(odd, full, rtol=1e-9, atol=0)


@pytest.mark.parametrize("dist", ["normal", "uniform"])
def test_restarts_never_hurt_and_are_reproducible(dist):
    G = _generator(dtype=torch.float64).eval()
    torch.manual_seed(5)
    with torch.no_grad():  # latents far from 0, so in 30 steps random starts can beat z = 0
        x = G(2 * torch.randn(6, DIM, dtype=torch.float64))
    single = reconstruction_error(G, x, DIM, dist, steps=30, restarts=1, seed=7)["per_image"]
    multi = reconstruction_error(G, x, DIM, dist, steps=30, restarts=3, seed=7)
    again = reconstruction_error(G, x, DIM, dist, steps=30, restarts=3, seed=7)
    other = reconstruction_error(G, x, DIM, dist, steps=30, restarts=3, seed=8)
    assert multi["restarts"] == 3
    assert torch.all(multi["per_image"] <= single * (1 + 1e-9))  # restart 0 is the z = 0 run
    assert torch.any(multi["per_image"] < single * 0.95)  # the extra starts do get used
    assert torch.equal(multi["per_image"], again["per_image"])
    assert not torch.equal(multi["per_image"], other["per_image"])


def test_generator_is_left_untouched():
    G = _generator()
    G.train()
    G.fc.bias.requires_grad_(False)  # a mixed set of flags must come back as it was
    before = {k: v.clone() for k, v in G.state_dict().items()}
    flags = {k: p.requires_grad for k, p in G.named_parameters()}
    reconstruction_error(G, _planted(G, 4), DIM, steps=20)
    G.train()  # _planted put G in eval; set the mode under test again
    G.bn.eval()  # and a mixed one: per-module modes must be restored
    reconstruction_error(G, torch.zeros(4, 1, 8, 8), DIM, steps=20)
    assert G.training and not G.bn.training and G.fc.training
    assert {k: p.requires_grad for k, p in G.named_parameters()} == flags
    assert all(p.grad is None for p in G.parameters())
    after = G.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BN running stats


def test_conditional_generator_receives_the_labels():
    G = _generator(num_classes=3).eval()
    torch.manual_seed(6)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    with torch.no_grad():
        x = G(torch.randn(6, DIM), labels)
    # Each image twice in one call: first with its own label, then with a wrong one.
    result = reconstruction_error(G, torch.cat([x, x]), DIM, labels=torch.cat([labels, (labels + 1) % 3]),
                                  steps=300)
    right, wrong = result["per_image"][:6], result["per_image"][6:]
    assert right.max() < 1e-3
    assert torch.all(wrong > 10 * right)


def test_works_under_no_grad_and_inference_mode():
    G = _generator()
    x = _planted(G, 3)
    expected = reconstruction_error(G, x, DIM, steps=10)["per_image"]
    with torch.no_grad():
        assert torch.equal(reconstruction_error(G, x, DIM, steps=10)["per_image"], expected)
    with torch.inference_mode():
        assert torch.equal(reconstruction_error(G, x, DIM, steps=10, progress=True)["per_image"], expected)


def test_shape_mismatch_and_bad_arguments_raise():
    G = _generator()
    with pytest.raises(ValueError, match=r"generator output shape \(1, 8, 8\) does not match .*\(3, 8, 8\)"):
        reconstruction_error(G, torch.zeros(2, 3, 8, 8), DIM, steps=0)
    with pytest.raises(ValueError, match="steps"):
        reconstruction_error(G, torch.zeros(2, 1, 8, 8), DIM, steps=-1)
    with pytest.raises(ValueError, match="restarts"):
        reconstruction_error(G, torch.zeros(2, 1, 8, 8), DIM, restarts=0)
    with pytest.raises(ValueError, match="labels"):
        reconstruction_error(G, torch.zeros(2, 1, 8, 8), DIM, labels=torch.zeros(3, dtype=torch.long))
    G.train()
    with pytest.raises(ValueError):
        reconstruction_error(G, torch.zeros(2, 3, 8, 8), DIM, steps=5)
    assert G.training and all(p.requires_grad for p in G.parameters())  # restored even on error


class AffineG(nn.Module):
    """G(z) = A z + b as images of shape (1, 2, 3), no tanh: min_z ||G(z) - x||^2 is a least-squares problem."""

    def __init__(self, A, b):
        super().__init__()
        self.A, self.b = nn.Parameter(torch.as_tensor(A)), nn.Parameter(torch.as_tensor(b))

    def forward(self, z, labels=None):
        return (z @ self.A.T + self.b).view(len(z), 1, 2, 3)


def _affine_case(seed=0, n=4, latent=3):
    """A (6 x latent), b and images x (n x 6) in [-1, 1] as float64 numpy arrays."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(6, latent)) * 0.5, rng.uniform(-0.3, 0.3, size=6), rng.uniform(-1, 1, size=(n, 6))


def test_affine_generator_reaches_the_least_squares_error():
    """Closed form: z* = lstsq(A, x - b), error = mean over pixels of ((A z* + b - x) / 2)^2 (the [0, 1]
    scale halves differences). RMSProp at lr 3e-3 settles within 1e-4 of it in 1500 steps, never below it."""
    A, b, x = _affine_case()
    z_star, *_ = np.linalg.lstsq(A, (x - b).T, rcond=None)
    expected = torch.from_numpy((((A @ z_star).T + b - x) / 2) ** 2).mean(dim=1)
    result = reconstruction_error(AffineG(A, b), torch.from_numpy(x).view(-1, 1, 2, 3), 3, steps=1500, lr=3e-3)
    torch.testing.assert_close(result["per_image"], expected, rtol=1e-4, atol=0)
    assert torch.all(result["per_image"] >= expected * (1 - 1e-12))  # the least-squares error is the minimum
    assert result["steps"] == 1500 and result["lr"] == 3e-3 and result["num_images"] == 4


def test_affine_generator_with_zero_steps_is_the_error_at_z_zero():
    """By hand: G(0) = b, so each image's error is mean over pixels of ((b - x) / 2)^2."""
    A, b, x = _affine_case(seed=1)
    result = reconstruction_error(AffineG(A, b), torch.from_numpy(x).view(-1, 1, 2, 3), 3, steps=0)
    torch.testing.assert_close(result["per_image"], torch.from_numpy(((b - x) / 2) ** 2).mean(dim=1),
                               rtol=1e-12, atol=0)


def _hand_subset(count, n):
    """The documented rule, written out: the n positions first in SHA-256(salt + index) order, sorted."""
    order = sorted(range(count), key=lambda i: hashlib.sha256(b"ganscape-reference-0:" + str(i).encode()).digest())
    return sorted(order[:n])


def test_the_metric_scores_the_same_documented_subset_at_every_evaluation_and_records_its_protocol():
    """Two generators (two checkpoints of a run) scored with steps 0: each value is the hand error at z = 0
    over the hand-computed subset of 5 of the 12 split images (not the 4 of the other metrics' reference set),
    and the protocol records the settings, the subset's digest and the restarts' seed."""
    A, b, _ = _affine_case()
    pixels = torch.from_numpy(np.random.default_rng(2).integers(0, 256, size=(12, 1, 2, 3), dtype=np.uint8))
    data = InMemoryImages(pixels, name="tiny")
    settings = from_dict({"recon": {"images": 5, "steps": 0, "lr": 0.02}}, MetricsConfig)
    chosen = _hand_subset(12, 5)
    x = pixels[chosen].double().view(5, 6) / 127.5 - 1  # uint8 to [-1, 1]
    for offset in (0.0, 0.25):  # the second "checkpoint" moved b
        result = evaluate(AffineG(A, b + offset), data, ["recon"], num_samples=4, num_reference=4, latent_dim=3,
                          dataset_cfg=DataConfig(name="tiny", split="test"), settings=settings, seed=3)
        expected = ((torch.from_numpy(b + offset) - x) / 2).square().mean(dim=1)
        assert result["values"]["recon_mse"] == pytest.approx(float(expected.mean()), rel=1e-6)
    protocol = result["protocol"]["recon"]
    assert protocol["images"] == 5 and protocol["steps"] == 0 and protocol["lr"] == 0.02
    assert protocol["subset_sha256"] == hashlib.sha256(json.dumps(chosen).encode()).hexdigest()
    assert protocol["optimizer"] == "rmsprop(alpha=0.9, eps=1e-6)" and protocol["init"].startswith("z = 0")
    assert protocol["restarts"] == 1 and protocol["restart_seed"] == 3
