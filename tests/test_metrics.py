"""FID, KID, Inception Score, improved precision/recall and MS-SSIM against hand-computed values
and independent float64 reference implementations."""

import math

import numpy as np
import pytest
import torch

from ganscape.metrics.fid import feature_statistics, fid_from_features, frechet_distance
from ganscape.metrics.inception_score import inception_score
from ganscape.metrics.kid import kernel_inception_distance
from ganscape.metrics.msssim import ms_ssim, msssim_diversity, num_scales
from ganscape.metrics.precision_recall import precision_recall


def _scipy_fid(f1, f2):
    """The TF FID code's formula: sqrtm of the non-symmetric product S1 S2, real part."""
    linalg = pytest.importorskip("scipy.linalg")
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    root = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(root))


def test_fid_matches_scipy_sqrtm_reference():
    rng = np.random.default_rng(0)
    f1 = rng.normal(size=(500, 64))
    f2 = rng.normal(size=(500, 64)) @ rng.normal(size=(64, 64)) * 0.3 + 0.5
    assert fid_from_features(f1, f2) == pytest.approx(_scipy_fid(f1, f2), rel=1e-6)
    # Low rank (8 of 64 dimensions) plus tiny noise: near-singular covariances.
    low1 = rng.normal(size=(500, 8)) @ rng.normal(size=(8, 64)) + 1e-3 * rng.normal(size=(500, 64))
    low2 = rng.normal(size=(500, 8)) @ rng.normal(size=(8, 64)) + 1e-3 * rng.normal(size=(500, 64))
    assert fid_from_features(low1, low2) == pytest.approx(_scipy_fid(low1, low2), rel=1e-6)


@pytest.mark.numerics  # float32 features against float64
def test_fid_of_a_set_with_itself_is_zero_and_fid_is_symmetric():
    rng = np.random.default_rng(1)
    f1, f2 = rng.normal(size=(300, 32)), rng.normal(size=(200, 32)) + 0.2
    assert abs(fid_from_features(f1, f1)) < 1e-6
    assert fid_from_features(f1, f2) == pytest.approx(fid_from_features(f2, f1), rel=1e-10)
    assert fid_from_features(torch.from_numpy(f1).float(), f2) == pytest.approx(
        fid_from_features(f1, f2), rel=1e-5)


def test_fid_closed_form_for_diagonal_gaussians():
    # Diagonal covariances commute: FID = |mu1 - mu2|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2.
    a, b = torch.tensor([1.0, 4.0, 0.0]), torch.tensor([9.0, 1.0, 2.0])
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([3.0, 1.0, 0.0])
    expected = 9 + 4 + (1 - 3) ** 2 + (2 - 1) ** 2 + (0 - math.sqrt(2)) ** 2
    assert frechet_distance(mu1, torch.diag(a), mu2, torch.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_feature_statistics_are_float64_unbiased_covariance():
    x = np.random.default_rng(2).normal(size=(50, 5)).astype(np.float32)
    mu, sigma = feature_statistics(x)
    assert mu.dtype == sigma.dtype == torch.float64
    np.testing.assert_allclose(sigma.numpy(), np.cov(x.astype(np.float64), rowvar=False), rtol=1e-12)


def _mmd2_loops(x, y):
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3 written out with explicit loops."""
    d, m, n = x.shape[1], len(x), len(y)
    k = lambda a, b: (float(np.dot(a, b)) / d + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_kid_matches_the_unbiased_mmd_formula():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(12, 4)), rng.normal(size=(12, 4)) + 0.5
    mean, std = kernel_inception_distance(x, y, num_subsets=1, subset_size=12)
    assert mean == pytest.approx(_mmd2_loops(x, y), rel=1e-10)
    assert std == 0.0
    capped, _ = kernel_inception_distance(x, y, num_subsets=1, subset_size=1000)
    assert capped == pytest.approx(mean, rel=1e-10)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_a_shift():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
    same, _ = kernel_inception_distance(a, b, num_subsets=10, subset_size=200)
    shifted, shifted_std = kernel_inception_distance(a, b + 1.0, num_subsets=10, subset_size=200)
    assert shifted > 10 * shifted_std > 0
    assert abs(same) < 0.02 * shifted
    assert kernel_inception_distance(a, b, 3, 100, seed=5) == kernel_inception_distance(a, b, 3, 100, seed=5)


def test_inception_score_by_hand():
    # Uniform p(y|x): p(y|x) = p(y), KL = 0, IS = 1.
    assert inception_score(torch.zeros(20, 1008), splits=2) == pytest.approx((1.0, 0.0))
    # One-hot predictions spread evenly over k classes: KL = log k, IS = k, in every split.
    k = 5
    logits = torch.full((40, 1008), -1e4)
    logits[torch.arange(40), torch.arange(40) % k] = 0
    assert inception_score(logits, splits=4) == pytest.approx((k, 0.0))
    # Splits are scored separately: first half 2 classes, second half 4 -> mean 3, std 1.
    logits = torch.full((16, 10), -1e4)
    logits[torch.arange(8), torch.arange(8) % 2] = 0
    logits[torch.arange(8, 16), torch.arange(8) % 4] = 0
    assert inception_score(logits, splits=2) == pytest.approx((3.0, 1.0))
    # One split: p(y) = (6, 6, 2, 2) / 16 and every p(y|x) is one-hot, so IS = exp(H(p(y))).
    marginal = np.array([6, 6, 2, 2]) / 16
    assert inception_score(logits, splits=1)[0] == pytest.approx(np.exp(-(marginal * np.log(marginal)).sum()))


def test_inception_score_matches_the_formula_on_random_logits():
    logits = np.random.default_rng(6).normal(size=(30, 7)) * 2
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    scores = []
    for part in (p[:10], p[10:20], p[20:]):
        py = part.mean(0)
        scores.append(np.exp(np.mean([np.sum(q * np.log(q / py)) for q in part])))
    assert inception_score(logits, splits=3) == pytest.approx((np.mean(scores), np.std(scores)), rel=1e-10)


def test_precision_recall_on_hand_built_sets():
    line = torch.arange(20, dtype=torch.float64).unsqueeze(1)  # 1-D points 0..19, 3-NN radius 2..3
    assert precision_recall(line, line) == {"precision": 1.0, "recall": 1.0}
    assert precision_recall(line, line + 1000)["precision"] == 0.0
    # Fakes packed into [0, 1.9] (spacing 0.1, 3-NN radii <= 0.3): all inside the real support,
    # while only the reals 0, 1 and 2 lie inside a fake hypersphere.
    fake = torch.linspace(0, 1.9, 20, dtype=torch.float64).unsqueeze(1)
    result = precision_recall(line, fake)
    assert result["precision"] == 1.0
    assert result["recall"] == pytest.approx(3 / 20)


def test_precision_recall_knn_excludes_self_and_uses_k():
    # Points at 0, 1, 3, 7, 15. With k=1 the radii are 1, 1, 2, 4, 8 (0 if self counted): a fake
    # at 11.5 is 3.5 from 15 (inside), one at 24 is 9 from 15 (outside). With k=3 the radius of 0
    # is 7 and no other sphere reaches below 0: a fake at -6.5 is inside, one at -7.5 outside.
    real = torch.tensor([[0.0], [1.0], [3.0], [7.0], [15.0]])
    assert precision_recall(real, torch.tensor([[11.5], [24.0]]), k=1)["precision"] == 0.5
    assert precision_recall(real, torch.tensor([[-6.5]] * 4), k=3)["precision"] == 1.0
    assert precision_recall(real, torch.tensor([[-7.5]] * 4), k=3)["precision"] == 0.0


def test_precision_recall_blocked_equals_unblocked():
    gen = torch.Generator().manual_seed(7)
    real, fake = torch.randn(300, 8, generator=gen), torch.randn(250, 8, generator=gen) * 1.3 + 0.3
    whole = precision_recall(real, fake, block_size=10_000)
    assert precision_recall(real, fake, block_size=7) == whole
    assert 0 < whole["precision"] < 1 and 0 < whole["recall"] < 1
    assert precision_recall(real.numpy(), fake.numpy()) == whole


def _ssim_reference(x, y, data_range):
    """Mean SSIM and cs of one 2-D float64 image pair, window by window with explicit loops."""
    size = min(11, *x.shape)
    offsets = np.arange(size) - (size - 1) / 2
    w = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * 1.5 ** 2))
    w /= w.sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    ssims, css = [], []
    for i in range(x.shape[0] - size + 1):
        for j in range(x.shape[1] - size + 1):
            px, py = x[i:i + size, j:j + size], y[i:i + size, j:j + size]
            mx, my = (w * px).sum(), (w * py).sum()
            vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
            cov = (w * (px - mx) * (py - my)).sum()
            cs = (2 * cov + c2) / (vx + vy + c2)
            css.append(cs)
            ssims.append((2 * mx * my + c1) / (mx ** 2 + my ** 2 + c1) * cs)
    return np.mean(ssims), np.mean(css)


def _msssim_reference(x, y, data_range, scales):
    weights = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333][:scales])
    weights /= weights.sum()
    value = 1.0
    for s in range(scales):
        if s:
            x = x.reshape(x.shape[0] // 2, 2, x.shape[1] // 2, 2).mean((1, 3))
            y = y.reshape(y.shape[0] // 2, 2, y.shape[1] // 2, 2).mean((1, 3))
        ssim, cs = _ssim_reference(x, y, data_range)
        value *= max(ssim if s == scales - 1 else cs, 0) ** weights[s]
    return value


def _smooth_images(n, size, seed):
    gen = torch.Generator().manual_seed(seed)
    base = torch.nn.functional.interpolate(torch.rand(n, 3, size // 4, size // 4, generator=gen,
                                                      dtype=torch.float64) * 2 - 1,
                                           size=(size, size), mode="bilinear")
    return base.clamp(-1, 1)


def test_ms_ssim_matches_an_independent_float64_implementation():
    try:
        from skimage.metrics import structural_similarity
    except ImportError:
        structural_similarity = None
    x = _smooth_images(2, 32, 0)
    y = (x + 0.2 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1),
                               dtype=torch.float64)).clamp(-1, 1)
    assert num_scales(32, 32) == 3 and num_scales(64, 64) == 4 and num_scales(128, 128) == 5
    single = ms_ssim(x, y, weights=(1.0,))
    multi = ms_ssim(x, y)
    for n in range(2):
        pairs = [(x[n, c].numpy(), y[n, c].numpy()) for c in range(3)]
        expected_single = np.mean([_ssim_reference(a, b, 2.0)[0] for a, b in pairs])
        assert float(single[n]) == pytest.approx(expected_single, rel=1e-10)
        expected_multi = np.mean([_msssim_reference(a, b, 2.0, 3) for a, b in pairs])
        assert float(multi[n]) == pytest.approx(expected_multi, rel=1e-10)
        if structural_similarity is not None:
            sk = np.mean([structural_similarity(a, b, data_range=2.0, gaussian_weights=True, sigma=1.5,
                                                use_sample_covariance=False) for a, b in pairs])
            assert float(single[n]) == pytest.approx(sk, abs=0.05)  # skimage also averages borders


@pytest.mark.numerics  # float32 images against float64
def test_ms_ssim_identity_symmetry_and_noise():
    x = _smooth_images(3, 64, 2)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    y = x + 0.1 * noise
    assert torch.allclose(ms_ssim(x, x), torch.ones(3, dtype=torch.float64), atol=1e-12)
    assert torch.equal(ms_ssim(x, y), ms_ssim(y, x))
    scores = [ms_ssim(x, x + s * noise) for s in (0.05, 0.2, 0.8)]
    assert torch.all(scores[0] > scores[1]) and torch.all(scores[1] > scores[2])
    assert torch.allclose(ms_ssim(x.float(), y.float()).double(), ms_ssim(x, y), atol=1e-4)
    with pytest.raises(ValueError):
        ms_ssim(x[..., :6, :6], y[..., :6, :6])


def test_msssim_diversity():
    same = _smooth_images(1, 32, 4).expand(10, -1, -1, -1)
    assert msssim_diversity(same, batch_size=6, batches=2) == pytest.approx(1.0, abs=1e-6)
    noise = torch.rand(10, 3, 32, 32, generator=torch.Generator().manual_seed(5)) * 2 - 1
    assert msssim_diversity(noise, batch_size=6, batches=2) < 0.1
    noise = noise.to(torch.float64)
    near_copies = same + 0.1 * noise
    assert 0.1 < msssim_diversity(near_copies, batch_size=6, batches=2) < 1
    assert msssim_diversity(near_copies, batch_size=6, batches=2) > msssim_diversity(same + 0.3 * noise, 6, 2)
