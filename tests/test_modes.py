"""Mode coverage, high-quality percentage, KL to uniform and JS to the target on hand-built sample sets."""

import math

import pytest
import torch
from scipy.spatial.distance import jensenshannon

from ganscape.data.toy import grid25, ring8
from ganscape.metrics.modes import mode_statistics


def test_mixture_geometry():
    ring = ring8()
    assert ring.centers.shape == (8, 2) and ring.std == 0.02
    assert torch.allclose(ring.centers.norm(dim=1), torch.full((8,), 2.0))
    grid = grid25()
    assert grid.centers.shape == (25, 2) and grid.std == 0.05
    assert sorted(set(grid.centers[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]


def test_sampling_is_seeded_and_has_the_configured_std():
    ring = ring8()
    a, _ = ring.sample(20000, torch.Generator().manual_seed(0))
    b, _ = ring.sample(20000, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    offsets = a - ring.centers[torch.cdist(a, ring.centers).argmin(1)]
    assert offsets.std().item() == pytest.approx(0.02, rel=0.03)


def test_real_data_covers_every_mode_with_kl_near_zero():
    for data in (ring8(), grid25()):
        x, _ = data.sample(50000, torch.Generator().manual_seed(1))
        stats = mode_statistics(x, data.centers, data.std)
        assert stats["modes_covered"] == stats["num_modes"] == len(data.centers)
        # Within 3 std in 2-D: P(chi^2_2 <= 9) = 1 - exp(-4.5) = 98.89%.
        assert stats["high_quality_pct"] == pytest.approx(100 * (1 - math.exp(-4.5)), abs=0.3)
        assert stats["kl_to_uniform"] < 0.01


def test_hand_built_samples():
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    std = 0.1
    samples = torch.cat([
        torch.zeros(60, 2),                        # on mode 0
        torch.full((30, 2), 10.0),                 # on mode 3
        torch.tensor([[10.25, 0.0]]).repeat(9, 1),  # 2.5 std from mode 1: high quality
        torch.tensor([[5.0, 5.0]]),                # far from everything
    ])
    stats = mode_statistics(samples, centers, std)
    assert stats["num_modes"] == 4
    assert stats["modes_covered"] == 3  # mode 2 has no sample
    assert stats["high_quality_pct"] == pytest.approx(99.0)
    p = torch.tensor([60, 9, 30], dtype=torch.float64) / 99
    assert stats["kl_to_uniform"] == pytest.approx(float((p * (4 * p).log()).sum()))
    # scipy's Jensen-Shannon distance, squared, over (mode 0, mode 1, mode 2, mode 3, off every mode)
    where = [60 / 100, 9 / 100, 0, 30 / 100, 1 / 100]
    assert stats["js_to_target"] == pytest.approx(jensenshannon(where, [0.25, 0.25, 0.25, 0.25, 0]) ** 2, rel=1e-12)


def test_one_percent_threshold_counts_all_samples():
    centers = torch.tensor([[0.0, 0.0], [5.0, 0.0]])
    samples = torch.cat([torch.zeros(990, 2), torch.tensor([[5.0, 0.0]]).repeat(10, 1)])
    assert mode_statistics(samples, centers, 0.1)["modes_covered"] == 2  # 10 / 1000 = 1%
    samples = torch.cat([torch.zeros(991, 2), torch.tensor([[5.0, 0.0]]).repeat(9, 1)])
    assert mode_statistics(samples, centers, 0.1)["modes_covered"] == 1


def test_collapse_and_garbage():
    ring = ring8()
    collapsed = ring.centers[:1].repeat(1000, 1)
    stats = mode_statistics(collapsed, ring.centers, ring.std)
    assert stats["modes_covered"] == 1 and stats["kl_to_uniform"] == pytest.approx(math.log(8))
    garbage = torch.full((100, 2), 50.0)
    stats = mode_statistics(garbage, ring.centers, ring.std)
    assert stats["modes_covered"] == 0 and stats["high_quality_pct"] == 0 and stats["kl_to_uniform"] == math.inf
    assert stats["js_to_target"] == pytest.approx(math.log(2))  # no overlap at all: the bound
    perfect = ring.centers.repeat(125, 1)
    assert mode_statistics(perfect, ring.centers, ring.std)["js_to_target"] == pytest.approx(0, abs=1e-15)
