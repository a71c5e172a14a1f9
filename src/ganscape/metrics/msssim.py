"""Multi-scale structural similarity (MS-SSIM, Wang et al. 2003) and the MS-SSIM diversity score.

SSIM compares two images through local Gaussian-weighted statistics (window 11, sigma 1.5):

    luminance l = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1),
    contrast-structure cs = (2 cov_xy + C2) / (var_x + var_y + C2),
    C1 = (0.01 L)^2, C2 = (0.03 L)^2, L the data range,

averaged over all positions where the window fits ('valid'). MS-SSIM evaluates cs at scales
1..S-1 and l * cs at the coarsest scale S, halving the resolution by 2x2 average pooling between
scales, and combines them as prod_s cs_s^{w_s} * ssim_S^{w_S} with Wang's weights
(0.0448, 0.2856, 0.3001, 0.2363, 0.1333). It is computed per channel and averaged over channels,
and negative factors are clamped to 0 before the fractional powers, as in the TF implementation
used by compare_gan (otherwise the power of an anticorrelated patch average is undefined).

Small images: as in that implementation, the window shrinks to the image side when a scale is
smaller than 11 px (at 128 x 128 the fifth scale is 8 x 8 and uses an 8-tap window). A scale is
used only if its side is at least 8 px, the smallest scale the Landscape protocol meets at
128 x 128; smaller images drop their coarsest scales (64 px: 4 scales, 32 px: 3) and the weights of
the scales kept are renormalised to sum to 1, so identical images still score exactly 1.

Data range: L is 2 for images in [-1, 1] (the default) and 1 for [0, 1]. The luminance term is not
shift invariant, so [-1, 1] input with L = 2 and the same images in [0, 1] with L = 1 differ
slightly (only through l at the coarsest scale); the reference feeds [0, 255] with L = 255, which
equals [0, 1] with L = 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
K1, K2 = 0.01, 0.03
WINDOW_SIZE, WINDOW_SIGMA = 11, 1.5
MIN_SCALE_SIDE = 8


def _as_images(images) -> torch.Tensor:
    """``N x C x H x W`` images as float64 if given in float64, float32 otherwise."""
    x = torch.as_tensor(images).detach()
    return x.to(torch.float64 if x.dtype == torch.float64 else torch.float32)


def gaussian_window(size: int, sigma: float, like: torch.Tensor) -> torch.Tensor:
    """Normalised 1-D Gaussian taps at offsets -(size-1)/2 .. (size-1)/2 (MATLAB ``fspecial``).

    The 2-D window is the outer product of this with itself, applied separably.
    """
    offsets = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    taps = torch.exp(-offsets ** 2 / (2 * sigma ** 2))
    return taps / taps.sum()


def _local_mean(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Gaussian-weighted mean of every 'valid' window position, per channel (depthwise)."""
    channels, size = x.shape[1], len(taps)
    x = F.conv2d(x, taps.view(1, 1, 1, size).expand(channels, 1, 1, size), groups=channels)
    return F.conv2d(x, taps.view(1, 1, size, 1).expand(channels, 1, size, 1), groups=channels)


def ssim_components(x: torch.Tensor, y: torch.Tensor,
                    data_range: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SSIM (l * cs) and mean cs over window positions, each ``N x C``.

    The window is ``min(11, H, W)`` taps with sigma 1.5. Variances and covariance are the biased
    (weights summing to 1) local estimates E[xy] - E[x]E[y], as in Wang's MATLAB code.
    """
    taps = gaussian_window(min(WINDOW_SIZE, *x.shape[-2:]), WINDOW_SIGMA, x)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    mu_x, mu_y = _local_mean(x, taps), _local_mean(y, taps)
    var_x = _local_mean(x * x, taps) - mu_x ** 2
    var_y = _local_mean(y * y, taps) - mu_y ** 2
    cov = _local_mean(x * y, taps) - mu_x * mu_y
    luminance = (2 * mu_x * mu_y + c1) / (mu_x ** 2 + mu_y ** 2 + c1)
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    return (luminance * cs).mean(dim=(2, 3)), cs.mean(dim=(2, 3))


def num_scales(height: int, width: int, max_scales: int = len(MSSSIM_WEIGHTS)) -> int:
    """Number of scales, at most ``max_scales``, whose smaller side is at least 8 px.

    Sides shrink as ceil(side / 2) per scale (odd sides are padded before pooling).
    """
    side, scales = min(height, width), 0
    while scales < max_scales and side >= MIN_SCALE_SIDE:
        scales, side = scales + 1, (side + 1) // 2
    return scales


def _downsample(x: torch.Tensor) -> torch.Tensor:
    """2x2 average pooling; an odd side first repeats its last row/column (TF's symmetric pad)."""
    x = F.pad(x, (0, x.shape[-1] % 2, 0, x.shape[-2] % 2), mode="replicate")
    return F.avg_pool2d(x, 2)


def ms_ssim(x, y, data_range: float = 2.0, weights=MSSSIM_WEIGHTS) -> torch.Tensor:
    """MS-SSIM of each image pair (x[i], y[i]); ``N x C x H x W`` in, ``N`` scores in [0, 1] out.

    Uses ``num_scales(H, W, len(weights))`` scales with the leading weights renormalised; with
    ``weights=(1.0,)`` it is plain single-scale SSIM (clamped at 0). Symmetric in x and y, and 1
    exactly for identical images.
    """
    x, y = _as_images(x), _as_images(y)
    scales = num_scales(*x.shape[-2:], len(weights))
    if scales == 0:
        raise ValueError(f"MS-SSIM needs images of at least {MIN_SCALE_SIDE} px, got {tuple(x.shape)}")
    powers = torch.tensor(weights[:scales], dtype=x.dtype, device=x.device)
    factors = []
    for scale in range(scales):
        if scale:
            x, y = _downsample(x), _downsample(y)
        ssim, cs = ssim_components(x, y, data_range)
        factors.append(ssim if scale == scales - 1 else cs)
    per_channel = (torch.stack(factors, dim=-1).clamp(min=0) ** (powers / powers.sum())).prod(dim=-1)
    return per_channel.mean(dim=1)


def mean_pairwise_msssim(images, data_range: float = 2.0) -> float:
    """Mean MS-SSIM over all pairs of distinct images of one batch (self-pairs excluded).

    MS-SSIM is symmetric, so the mean over the unordered pairs i < j equals the reference's mean
    over all ordered pairs i != j at half the cost. Image i is compared with images i+1.. in one
    call, which bounds memory by one batch.
    """
    images = _as_images(images)
    n = len(images)
    total = sum(float(ms_ssim(images[i].expand_as(images[i + 1:]), images[i + 1:], data_range).sum())
                for i in range(n - 1))
    return total / (n * (n - 1) / 2)


def msssim_diversity(images, batch_size: int = 64, batches: int = 5, data_range: float = 2.0,
                     seed: int = 0) -> float:
    """MS-SSIM diversity score of generated images: lower means more diverse.

    Protocol (AC-GAN section 5.3, compare_gan ``ms_ssim_score``; A.7): the mean pairwise MS-SSIM
    of a batch of 64 generated images, averaged over 5 batches. Each batch here is a uniformly
    random subset of ``min(batch_size, N)`` distinct images, drawn independently with ``seed``.
    A collapsed generator that repeats one image scores 1; unrelated images score near 0.
    """
    images = _as_images(images)
    size = min(batch_size, len(images))
    generator = torch.Generator().manual_seed(seed)
    scores = [mean_pairwise_msssim(images[torch.randperm(len(images), generator=generator)[:size]
                                          .to(images.device)], data_range)
              for _ in range(batches)]
    return sum(scores) / batches


@dataclass
class MSSSIMSettings:
    """``metrics.msssim.*``."""

    batch: int = field(default=64, metadata={"min": 2, "max": 4096,
                                             "help": "MS-SSIM: images per batch (all pairs compared)"})
    batches: int = field(default=5, metadata={"min": 1, "max": 1000, "help": "MS-SSIM: batches averaged"})


def msssim_metric(scoring, settings: MSSSIMSettings) -> dict[str, float]:
    """The registered metric ``msssim``, on ``batch * batches`` generated samples."""
    images = torch.cat(list(scoring.samples(settings.batch * settings.batches)))
    return {"msssim": msssim_diversity(images, settings.batch, settings.batches, seed=scoring.evaluator.seed)}


def msssim_protocol(evaluator, settings: MSSSIMSettings) -> dict:
    return {"batch": settings.batch, "batches": settings.batches, "pairs": "all pairs per batch"}
