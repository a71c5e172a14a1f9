"""Every loss against its formula on hand-computed values, and stability at large logits."""

import math

import pytest
import torch

from ganscape.objectives.losses import LOSSES

REAL = torch.tensor([2.0, -1.0], dtype=torch.float64)  # formulas: checked in float64, to 1e-12
FAKE = torch.tensor([0.5, -3.0], dtype=torch.float64)


def sig(t):
    return 1 / (1 + math.exp(-t))


def mean(values):
    return sum(values) / len(values)


# Hand-written formulas in plain Python floats (the definitions, not the softplus rewrite).
EXPECTED_D = {
    "minimax": mean([-math.log(sig(t)) for t in REAL.tolist()]) + mean([-math.log(1 - sig(t)) for t in FAKE.tolist()]),
    "ns": mean([-math.log(sig(t)) for t in REAL.tolist()]) + mean([-math.log(1 - sig(t)) for t in FAKE.tolist()]),
    "wgan": mean(FAKE.tolist()) - mean(REAL.tolist()),
    "ls": 0.5 * mean([(sig(t) - 1) ** 2 for t in REAL.tolist()]) + 0.5 * mean([sig(t) ** 2 for t in FAKE.tolist()]),
    "hinge": mean([max(0, 1 - t) for t in REAL.tolist()]) + mean([max(0, 1 + t) for t in FAKE.tolist()]),
}
EXPECTED_G = {
    "minimax": mean([math.log(1 - sig(t)) for t in FAKE.tolist()]),
    "ns": mean([-math.log(sig(t)) for t in FAKE.tolist()]),
    "wgan": -mean(FAKE.tolist()),
    "ls": 0.5 * mean([(sig(t) - 1) ** 2 for t in FAKE.tolist()]),
    "hinge": -mean(FAKE.tolist()),
}


def test_registry_has_the_landscape_losses():
    assert set(LOSSES) == {"minimax", "ns", "wgan", "ls", "hinge"}


@pytest.mark.parametrize("name", sorted(EXPECTED_D))
def test_d_loss_matches_formula(name):
    assert LOSSES[name].d_loss(REAL, FAKE).item() == pytest.approx(EXPECTED_D[name], rel=1e-12)


@pytest.mark.parametrize("name", sorted(EXPECTED_G))
def test_g_loss_matches_formula(name):
    assert LOSSES[name].g_loss(FAKE).item() == pytest.approx(EXPECTED_G[name], rel=1e-12)


def test_hand_computed_values():
    # Worked by hand: softplus(0) = log 2, so with all logits 0 the BCE losses are 2 log 2 and log 2.
    zeros = torch.zeros(4)
    assert LOSSES["ns"].d_loss(zeros, zeros).item() == pytest.approx(2 * math.log(2))
    assert LOSSES["ns"].g_loss(zeros).item() == pytest.approx(math.log(2))
    assert LOSSES["minimax"].g_loss(zeros).item() == pytest.approx(-math.log(2))
    # Hinge at logits (real 0.5, fake -0.25): relu(0.5) + relu(0.75) = 1.25.
    assert LOSSES["hinge"].d_loss(torch.tensor([0.5]), torch.tensor([-0.25])).item() == pytest.approx(1.25)
    # LS with logits 0: sigmoid = 1/2, so 1/2 * 1/4 + 1/2 * 1/4 = 1/4 for D and 1/8 for G.
    assert LOSSES["ls"].d_loss(zeros, zeros).item() == pytest.approx(0.25)
    assert LOSSES["ls"].g_loss(zeros).item() == pytest.approx(0.125)


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("magnitude", [100.0, 1000.0])
def test_finite_values_and_gradients_at_large_logits(name, magnitude):
    real = torch.tensor([magnitude, -magnitude], requires_grad=True)
    fake = torch.tensor([-magnitude, magnitude], requires_grad=True)
    loss = LOSSES[name]
    total = loss.d_loss(real, fake) + loss.g_loss(fake)
    total.backward()
    assert torch.isfinite(total)
    assert torch.isfinite(real.grad).all() and torch.isfinite(fake.grad).all()


@pytest.mark.parametrize("name", ["minimax", "ns"])
def test_bce_losses_match_float64_reference(name):
    torch.manual_seed(0)
    real, fake = torch.randn(64, dtype=torch.float64) * 5, torch.randn(64, dtype=torch.float64) * 5
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    ref_d = bce(real, torch.ones_like(real)) + bce(fake, torch.zeros_like(fake))
    assert LOSSES[name].d_loss(real, fake).item() == pytest.approx(ref_d.item(), rel=1e-12)


def test_ns_generator_gradient_does_not_vanish_where_minimax_saturates():
    # The reason for the non-saturating loss: when D confidently rejects fakes (logit -10),
    # minimax's gradient is ~sigmoid(-10) ~ 4.5e-5 while NS's is ~1.
    fake = torch.tensor([-10.0], requires_grad=True)
    (g_mm,) = torch.autograd.grad(LOSSES["minimax"].g_loss(fake), fake)
    (g_ns,) = torch.autograd.grad(LOSSES["ns"].g_loss(fake), fake)
    assert abs(g_mm.item()) < 1e-4 and abs(g_ns.item()) > 0.99
