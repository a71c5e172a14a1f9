"""Every regularizer against hand-derived values, its gradient into D, and the registry."""

import math
import statistics
import weakref

import pytest
import torch
from torch import nn

from ganscape.errors import ConfigError
from ganscape.objectives.d_input import add_instance_noise, annealed
from ganscape.objectives.objective import Objective
from ganscape.objectives.penalties import (
    PENALTIES,
    PIXEL_SCALES,
    PenaltyInputs,
    clip_weights_,
    dragan,
    gradient_norm,
    l2,
    orthogonal,
    r1,
    r2,
    wgan_gp,
)

D_TERMS = ["wgan_gp", "dragan", "r1", "r2"]
UNIT = PIXEL_SCALES["unit"]


def d_penalty(name, D, real, fake, labels, generator, scale=PIXEL_SCALES["data"]):
    """Penalty ``name`` through its registry entry, as the objective calls it."""
    return PENALTIES[name].apply(PenaltyInputs(D, None, real, fake, labels, generator, scale))


def g_penalty(name, G):
    return PENALTIES[name].apply(PenaltyInputs(None, G, None, None, None, None))


class LinearD(nn.Module):
    """D(x) = x.flatten(1) @ w + b: its input gradient is w everywhere."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.b = nn.Parameter(torch.tensor(0.7, dtype=w.dtype))

    def forward(self, x, labels=None):
        return x.flatten(1) @ self.w + self.b


class QuadraticD(nn.Module):
    """D(x) = sum(x^2): its input gradient is 2x."""

    def forward(self, x, labels=None):
        return x.flatten(1).square().sum(dim=1)


class ProjectionD(nn.Module):
    """D(x, y) = x @ w + <embed(y), x>: its input gradient is w + embed(y)."""

    def __init__(self, dim, classes):
        super().__init__()
        gen = torch.Generator().manual_seed(3)
        self.w = nn.Parameter(torch.randn(dim, generator=gen, dtype=torch.float64))
        self.embed = nn.Embedding(classes, dim).double()
        with torch.no_grad():
            self.embed.weight.copy_(torch.randn(classes, dim, generator=gen, dtype=torch.float64))

    def forward(self, x, labels):
        return x @ self.w + (self.embed(labels) * x).sum(dim=1)


class TanhD(nn.Module):
    """A nonlinear D, so that its input gradient depends on the input (and could leak into G)."""

    def __init__(self, dim):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, 8), nn.Tanh(), nn.Linear(8, 1)).double()

    def forward(self, x, labels=None):
        return self.net(x).squeeze(1)


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def batch(shape, seed):
    return torch.randn(shape, generator=seeded(seed), dtype=torch.float64)


def weight_vectors():
    w = batch((6,), 1)
    return [w, w / w.norm(), 0.5 * w / w.norm(), torch.tensor([0.0, 0, 0, 0, 3, 4], dtype=torch.float64)]


@pytest.mark.parametrize("w", weight_vectors())
def test_linear_d_gradient_penalties_depend_only_on_w(w):
    D = LinearD(w)
    real, fake = batch((5, 2, 3), 2), 10 * batch((5, 2, 3), 3)
    norm = w.norm().item()
    assert gradient_norm(D, real, None).tolist() == pytest.approx([norm] * 5, abs=1e-10)
    expected = {"wgan_gp": (norm - 1) ** 2, "dragan": (norm - 1) ** 2, "r1": 0.5 * norm**2, "r2": 0.5 * norm**2}
    assert wgan_gp(D, real, fake, generator=seeded()).item() == pytest.approx(expected["wgan_gp"], abs=1e-10)
    assert dragan(D, real, generator=seeded()).item() == pytest.approx(expected["dragan"], abs=1e-10)
    assert r1(D, real).item() == pytest.approx(expected["r1"], abs=1e-10)
    assert r2(D, fake).item() == pytest.approx(expected["r2"], abs=1e-10)
    for name in D_TERMS:
        assert d_penalty(name, D, real, fake, None, seeded()).item() == pytest.approx(expected[name], abs=1e-10)


def test_unit_norm_linear_d_has_zero_wgan_gp_and_dragan():
    D = LinearD(torch.tensor([0.6, 0.0, 0.8, 0.0, 0.0, 0.0], dtype=torch.float64))
    real, fake = batch((4, 6), 4), batch((4, 6), 5)
    assert wgan_gp(D, real, fake, generator=seeded()).item() == pytest.approx(0.0, abs=1e-12)
    assert dragan(D, real, generator=seeded()).item() == pytest.approx(0.0, abs=1e-12)


def test_r1_of_a_quadratic_d_by_hand():
    x = torch.tensor([[1.0, 2.0], [-3.0, 0.5], [0.0, 0.0]], dtype=torch.float64)
    # grad = 2x, so ||grad||^2 = 4 ||x||^2: 4 * 5, 4 * 9.25, 0.
    expected = 0.5 * (20.0 + 37.0 + 0.0) / 3
    assert r1(QuadraticD(), x).item() == pytest.approx(expected, abs=1e-12)
    assert r2(QuadraticD(), x).item() == pytest.approx(expected, abs=1e-12)


def test_wgan_gp_of_a_quadratic_d_uses_the_generators_alphas():
    real, fake = batch((4, 3), 6), batch((4, 3), 7)
    alphas = torch.rand((4, 1), generator=seeded(11), dtype=torch.float64).flatten().tolist()
    expected = 0.0
    for i, alpha in enumerate(alphas):
        x_hat = [r + alpha * (f - r) for r, f in zip(real[i].tolist(), fake[i].tolist())]
        expected += (math.sqrt(sum((2 * v) ** 2 for v in x_hat)) - 1) ** 2 / 4
    assert wgan_gp(QuadraticD(), real, fake, generator=seeded(11)).item() == pytest.approx(expected, abs=1e-12)
    assert wgan_gp(QuadraticD(), real, fake, generator=seeded(12)).item() != pytest.approx(expected, abs=1e-6)


def test_dragan_of_a_quadratic_d_perturbs_by_the_batch_std():
    real = batch((3, 2, 2), 8)
    u = torch.rand((3, 2, 2), generator=seeded(5), dtype=torch.float64).flatten(1).tolist()
    values = real.flatten(1).tolist()
    std = statistics.pstdev([v for row in values for v in row])
    expected = 0.0
    for row, noise in zip(values, u):
        x_tilde = [v + std * (n - 0.5) for v, n in zip(row, noise)]
        expected += (math.sqrt(sum((2 * v) ** 2 for v in x_tilde)) - 1) ** 2 / 3
    assert dragan(QuadraticD(), real, generator=seeded(5)).item() == pytest.approx(expected, abs=1e-12)


def test_dragan_does_not_clip_on_the_data_scale():
    # Real data far outside [0, 1]: with clipping, x_tilde would be constant and the gradient 2 * 1.
    real = torch.full((4, 3), -5.0, dtype=torch.float64) + batch((4, 3), 9)
    clipped = (math.sqrt(3 * 4.0) - 1) ** 2
    assert dragan(QuadraticD(), real, generator=seeded()).item() > 10 * clipped


@pytest.mark.parametrize("w", weight_vectors())
def test_unit_scale_doubles_the_input_gradient_of_a_linear_d(w):
    """On [0, 1] images x01 = (x + 1) / 2, so dD/dx01 = 2 dD/dx = 2w: each gradient penalty equals its
    closed form with the norm 2|w| (compare_gan's GP on [0, 1] is 1/4 of ours on [-1, 1] at target 1/2)."""
    D = LinearD(w)
    real, fake = batch((5, 2, 3), 2).clamp(-1, 1), batch((5, 2, 3), 3).clamp(-1, 1)
    norm = 2 * w.norm().item()
    expected = {"wgan_gp": (norm - 1) ** 2, "dragan": (norm - 1) ** 2, "r1": 0.5 * norm**2, "r2": 0.5 * norm**2}
    for name in D_TERMS:
        value = d_penalty(name, D, real, fake, None, seeded(), UNIT).item()
        assert value == pytest.approx(expected[name], abs=1e-10), name


def test_unit_scale_r1_of_a_quadratic_d_by_hand():
    """D(x) = sum(x^2) = sum((2u - 1)^2) in u = (x + 1) / 2, so dD/du = 4 (2u - 1) = 4x: R1 = 1/2 E 16 ||x||^2."""
    x = torch.tensor([[0.5, -0.25], [1.0, 0.0]], dtype=torch.float64)
    expected = 0.5 * 16 * (0.3125 + 1.0) / 2
    assert r1(QuadraticD(), x, scale=UNIT).item() == pytest.approx(expected, abs=1e-12)


def test_unit_scale_dragan_perturbs_by_the_unit_std_and_clips_to_the_unit_interval():
    """As compare_gan: u = (x + 1) / 2, u_tilde = clip(u + std(u) (noise - 1/2), 0, 1), then
    dD/du at u_tilde for D(x) = sum(x^2) is 4 (2 u_tilde - 1); computed here element by element."""
    real = torch.tensor([[-1.0, 1.0, 0.2], [0.9, -0.95, -0.3]], dtype=torch.float64)
    noise = torch.rand((2, 3), generator=seeded(4), dtype=torch.float64).tolist()
    units = [[(v + 1) / 2 for v in row] for row in real.tolist()]
    std = statistics.pstdev([u for row in units for u in row])
    expected = 0.0
    for row, n in zip(units, noise):
        u_tilde = [min(1.0, max(0.0, u + std * (e - 0.5))) for u, e in zip(row, n)]
        expected += (math.sqrt(sum((4 * (2 * u - 1)) ** 2 for u in u_tilde)) - 1) ** 2 / 2
    assert dragan(QuadraticD(), real, generator=seeded(4), scale=UNIT).item() == pytest.approx(expected, abs=1e-12)
    # Some perturbed pixels of this batch leave [0, 1], so an unclipped DRAGAN would differ.
    unclipped = sum((math.sqrt(sum((4 * (2 * (u + std * (e - 0.5)) - 1)) ** 2 for u, e in zip(row, n))) - 1) ** 2
                    for row, n in zip(units, noise)) / 2
    assert unclipped != pytest.approx(expected, abs=1e-6)


def test_unit_scale_wgan_gp_of_a_quadratic_d_by_hand():
    """The interpolates are the same on both scales; the gradient in u is 4 x_hat for D(x) = sum(x^2)."""
    real, fake = batch((4, 3), 6).clamp(-1, 1), batch((4, 3), 7).clamp(-1, 1)
    alphas = torch.rand((4, 1), generator=seeded(11), dtype=torch.float64).flatten().tolist()
    expected = sum((math.sqrt(sum((4 * (r + a * (f - r))) ** 2 for r, f in zip(real[i].tolist(), fake[i].tolist())))
                    - 1) ** 2 for i, a in enumerate(alphas)) / 4
    assert wgan_gp(QuadraticD(), real, fake, generator=seeded(11), scale=UNIT).item() == pytest.approx(expected,
                                                                                                     abs=1e-12)


@pytest.mark.parametrize("w", weight_vectors()[:3])
def test_penalties_backpropagate_into_d(w):
    D = LinearD(w)
    real, fake = batch((5, 6), 2), batch((5, 6), 3)
    (grad_r1,) = torch.autograd.grad(r1(D, real), D.w)
    torch.testing.assert_close(grad_r1, w, atol=1e-10, rtol=0)
    (grad_gp,) = torch.autograd.grad(wgan_gp(D, real, fake, generator=seeded()), D.w)
    norm = w.norm()
    torch.testing.assert_close(grad_gp, 2 * (norm - 1) * w / norm, atol=1e-10, rtol=0)


def test_conditional_d_receives_the_labels():
    D = ProjectionD(dim=4, classes=3)
    real, fake = batch((6, 4), 10), batch((6, 4), 11)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    others = torch.tensor([1, 1, 1, 2, 2, 2])
    with torch.no_grad():
        grads = D.w + D.embed(labels)
    torch.testing.assert_close(gradient_norm(D, real, labels), grads.norm(dim=1), atol=1e-10, rtol=0)
    assert r1(D, real, labels).item() == pytest.approx(0.5 * grads.square().sum(dim=1).mean().item(), abs=1e-10)
    for name in D_TERMS:
        a = d_penalty(name, D, real, fake, labels, seeded()).item()
        b = d_penalty(name, D, real, fake, others, seeded()).item()
        assert a != pytest.approx(b, abs=1e-6), name


def test_penalties_do_not_leak_gradient_or_graph():
    G = nn.Linear(3, 6).double()
    torch.manual_seed(0)
    D = TanhD(6)
    real = batch((8, 6), 2)
    for name in D_TERMS:
        for _ in range(5):
            fake = G(batch((8, 3), 3))
            loss = d_penalty(name, D, real, fake, None, seeded())
            loss.backward()
            ref = weakref.ref(loss)
            del loss
            assert ref() is None, name
        assert G.weight.grad is None and G.bias.grad is None, name
        grads = [p.grad for p in D.parameters() if p.grad is not None]  # the last bias does not move grad D
        assert len(grads) == 3 and not any(g.requires_grad for g in grads), name
        D.zero_grad()


def test_l2_is_the_mean_half_squared_norm_of_weight_tensors_only():
    torch.manual_seed(0)
    D = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2), nn.BatchNorm1d(2)).double()  # a formula
    with torch.no_grad():
        D[3].weight.fill_(5.0)
        D[0].bias.fill_(3.0)
    expected = (0.5 * D[0].weight.square().sum() + 0.5 * D[2].weight.square().sum()) / 2
    assert l2(D).item() == pytest.approx(expected.item(), rel=1e-12)
    assert d_penalty("l2", D, None, None, None, None).item() == pytest.approx(expected.item(), rel=1e-12)


def off_diagonal_gram_by_loops(rows):
    return sum(
        sum(a * b for a, b in zip(rows[i], rows[j])) ** 2
        for i in range(len(rows)) for j in range(len(rows)) if i != j
    )


def linear_with(weight):
    layer = nn.Linear(weight.shape[1], weight.shape[0]).double()
    with torch.no_grad():
        layer.weight.copy_(weight)
    return layer


def test_orthogonal_is_zero_for_orthogonal_rows_whatever_their_norms():
    q, _ = torch.linalg.qr(batch((5, 5), 12))
    assert orthogonal(linear_with(q)).item() == pytest.approx(0.0, abs=1e-12)
    scaled = torch.diag(torch.tensor([0.1, 1.0, 2.0, 5.0, 30.0], dtype=torch.float64)) @ q
    assert orthogonal(linear_with(scaled)).item() == pytest.approx(0.0, abs=1e-9)


def test_orthogonal_matches_the_double_loop_and_skips_biases():
    w = batch((4, 3), 13)
    expected = off_diagonal_gram_by_loops(w.tolist())
    assert orthogonal(linear_with(w)).item() == pytest.approx(expected, abs=1e-10)
    assert g_penalty("ortho", linear_with(w)).item() == pytest.approx(expected, abs=1e-10)


def test_orthogonal_reshapes_conv_kernels_and_sums_over_layers():
    conv = nn.Conv2d(3, 4, kernel_size=2).double()
    G = nn.Sequential(conv, linear_with(batch((2, 5), 14)))
    filters = conv.weight.detach().reshape(4, -1).tolist()
    expected = off_diagonal_gram_by_loops(filters) + off_diagonal_gram_by_loops(G[1].weight.tolist())
    assert orthogonal(G).item() == pytest.approx(expected, abs=1e-10)


def test_orthogonal_excludes_embeddings():
    G = nn.ModuleDict({"embed": nn.Embedding(5, 3).double(), "linear": linear_with(batch((4, 3), 15))})
    assert off_diagonal_gram_by_loops(G["embed"].weight.tolist()) > 0.1
    assert orthogonal(G).item() == pytest.approx(orthogonal(G["linear"]).item(), abs=1e-12)


def test_orthogonal_gradient_is_twice_biggans_hand_written_update():
    layer = linear_with(batch((4, 3), 16))
    w = layer.weight.detach()
    biggan = 2 * (w @ w.T * (1 - torch.eye(4, dtype=w.dtype))) @ w  # BigGAN-PyTorch's update per unit beta
    (grad,) = torch.autograd.grad(orthogonal(layer), layer.weight)
    torch.testing.assert_close(grad, 2 * biggan, atol=1e-10, rtol=0)


def test_instance_noise_has_the_requested_std_and_is_reproducible():
    noisy = add_instance_noise(torch.zeros(100_000), 0.3, seeded(1))
    assert noisy.std().item() == pytest.approx(0.3, rel=0.01)
    x = batch((4, 2), 17)
    torch.testing.assert_close(add_instance_noise(x, 0.5, seeded(2)), add_instance_noise(x, 0.5, seeded(2)))
    assert not torch.equal(add_instance_noise(x, 0.5, seeded(2)), add_instance_noise(x, 0.5, seeded(3)))


def test_instance_noise_std_anneals_linearly_to_zero():
    assert [annealed(0.2, step, 100) for step in (0, 50, 100, 150)] == pytest.approx([0.2, 0.1, 0.0, 0.0])
    assert [annealed(0.2, step, 0) for step in (0, 50, 10_000)] == [0.2, 0.2, 0.2]


def test_clip_weights_clamps_outside_and_keeps_inside():
    layer = nn.Linear(3, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.005, -0.5, 0.02], [-0.009, 0.0, 1.0]]))
        layer.bias.copy_(torch.tensor([-3.0, 0.001]))
    clip_weights_(layer, 0.01)
    torch.testing.assert_close(layer.weight.data, torch.tensor([[0.005, -0.01, 0.01], [-0.009, 0.0, 0.01]]))
    torch.testing.assert_close(layer.bias.data, torch.tensor([-0.01, 0.001]))
    assert layer.weight.grad is None


def test_registry_names_kinds_weights_and_facts():
    facts = {name: (p.kind, p.default_weight, p.weight_meaning, p.gradient_penalty, p.lipschitz, p.dirac)
             for name, p in PENALTIES.items()}
    assert facts == {
        "wgan_gp": ("d_loss", 10.0, "lambda", True, True, True),
        "dragan": ("d_loss", 10.0, "lambda", True, True, True),
        "r1": ("d_loss", 10.0, "lambda", True, False, True),
        "r2": ("d_loss", 10.0, "lambda", True, False, True),
        "l2": ("d_loss", 0.01, "lambda", False, False, False),
        "ortho": ("g_loss", 1e-4, "lambda", False, False, False),
        "instance_noise": ("d_input", 0.1, "noise std", False, False, True),
        "wgan_clip": ("d_constraint", 0.01, "clip bound", False, True, True),
    }
    assert all(p.name == name and p.description for name, p in PENALTIES.items())


def test_unknown_penalty_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown penalty 'r3'.*Known: dragan, instance_noise"):
        Objective.of("ns", {"r3": 1.0})
    with pytest.raises(ConfigError, match="unknown loss 'nss'.*Known: hinge"):
        Objective.of("nss")


def test_l2_averages_over_the_landscape_weight_layers_of_a_conditional_discriminator():
    from ganscape.config import load_config
    from ganscape.nets import ARCHITECTURES, weight_layers
    from ganscape.objectives.penalties import l2

    cfg = load_config(None, ["d.width=8"])
    D = ARCHITECTURES["sndcgan"].discriminator(cfg.d, (3, 32, 32), 10)  # projection D with an embedding
    layers = weight_layers(D)
    assert len(layers) == 8
    expected = torch.stack([0.5 * m.weight.square().sum() for m in layers]).mean()
    assert torch.allclose(l2(D), expected)
