"""Differentiable augmentations of D's inputs: DiffAugment and ADA's blit, geometric and colour groups.

Pure functions of an image batch ``x`` ``(N, C, H, W)`` in [-1, 1]: the result has x's shape, dtype
and device, is differentiable in x (G's step trains through it), and every random number comes from
``generator`` (on x's device; None = torch's global RNG), so the same generator state gives the same
output and a resumed run continues exactly. Parameters are drawn in float32, per sample. Each
transform also exists with explicit parameters (``shift_brightness(x, shift)``, ``xflip(x, flip)``,
``rotation_matrix(theta)``...); the random wrappers only draw them. Per-sample pixel vectors (shifts,
corners, sizes) are (x, y) = (right, down); geometric matrices are 3x3 homogeneous maps of pixel
positions measured from the image centre, from the input image to the output image.

DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"), with
the parameters of the authors' DiffAugment_pytorch.py: ``color`` = brightness + U(-0.5, 0.5), then
saturation x U(0, 2) around each pixel's channel mean, then contrast x U(0.5, 1.5) around the image
mean; ``translation`` = integer shift of up to 1/8 of each side, zero fill; ``cutout`` = one zeroed
rectangle of half of each side at a random position (it may stick out of the image).

ADA (Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data"), the groups of
its default "bgc" pipeline, each transform applied to each sample with probability p times its
multiplier (``ADA_TRANSFORMS``; pre- and post-rotation each with 1 - sqrt(1 - p), so that a sample
is rotated at least once with probability p). Where this deliberately differs from
stylegan2-ada-pytorch's ``training/augment.py``:

* the blit group is done with exact integer operations (flip, rot90, reflected pixel moves) instead
  of being folded into the geometric matrix;
* the geometric group is one bilinear ``grid_sample`` mirrored about the edge pixels (the mirror of
  ADA's reflect padding), without ADA's 2x upsampling through its sym6 wavelet filter: simpler, a
  little blurrier and more aliased at fractional positions;
* the 90-degree rotations need square images (ganscape's image data sets are square);
* 1-channel images get brightness and contrast only (ADA's luma flip of a grey image is a plain
  negation and hue and saturation do not exist), applied as ADA does, through the mean over the
  RGB rows of the colour matrix; the colour group needs 1 or 3 channels;
* ADA's image-space filtering, noise and cutout groups are not provided, and the random streams
  differ from ADA's (the distributions are the same).

With p == 0 (or no groups, or an empty policy) the functions return ``x`` itself and draw nothing:
the pipeline that calls them knows p, and skipping the draws keeps a run without augmentation
bit-identical to one before augmentations existed.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, NamedTuple, Sequence

import torch
import torch.nn.functional as F

from ganscape.errors import ConfigError, lookup

Tensor = torch.Tensor
Generator = torch.Generator | None


# --------------------------------------------------------------------------------------------------
# Shared helpers


def _check_images(x: Tensor, what: str) -> None:
    if x.dim() != 4:
        raise ConfigError(f"{what} augments image batches (N, C, H, W), not data of shape {tuple(x.shape)}; "
                          "augmentations are for images: turn the augmentation off for 2-D toy data.")


def _uniform(x: Tensor, generator: Generator, *shape: int) -> Tensor:
    """U[0, 1) per sample of ``x`` (shape ``(N, *shape)``), float32 on ``x``'s device."""
    return torch.rand((x.shape[0], *shape), generator=generator, device=x.device, dtype=torch.float32)


def _normal(x: Tensor, generator: Generator, *shape: int) -> Tensor:
    return torch.randn((x.shape[0], *shape), generator=generator, device=x.device, dtype=torch.float32)


def _integers(x: Tensor, generator: Generator, low: int, high: int) -> Tensor:
    """Integers uniform in [low, high) per sample, int64."""
    return torch.randint(low, high, (x.shape[0],), generator=generator, device=x.device)


def _per_sample(values: Tensor, x: Tensor) -> Tensor:
    """``(N,)`` values shaped ``(N, 1, 1, 1)`` to broadcast over an image batch, in ``x``'s dtype."""
    return values.to(x.dtype).view(-1, 1, 1, 1)


def _check_names(names: Sequence[str] | str, registry: Mapping[str, object], what: str) -> tuple[str, ...]:
    """``names`` as a tuple (a comma-separated string is split, as DiffAugment writes its policies),
    each checked against ``registry`` with a ConfigError that lists the known names."""
    if isinstance(names, str):
        names = [name.strip() for name in names.split(",") if name.strip()]
    for name in names:
        lookup(registry, name, what)
    return tuple(names)


# --------------------------------------------------------------------------------------------------
# DiffAugment's transforms with explicit parameters


def shift_brightness(x: Tensor, shift: Tensor) -> Tensor:
    """x + shift, one shift ``(N,)`` per sample."""
    return x + _per_sample(shift, x)


def scale_saturation(x: Tensor, factor: Tensor) -> Tensor:
    """Each pixel's distance from its own channel mean times ``factor`` ``(N,)``."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * _per_sample(factor, x) + mean


def scale_contrast(x: Tensor, factor: Tensor) -> Tensor:
    """Each image's distance from its mean over channels and pixels times ``factor`` ``(N,)``."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * _per_sample(factor, x) + mean


def _source_index(size: int, shift: Tensor, padding: str) -> tuple[Tensor, Tensor]:
    """For content moved by ``shift`` ``(N,)`` along an axis of ``size`` pixels: the input index of each
    output index ``(N, size)`` and whether it lies inside the input. Outside, "zeros" points at any
    valid pixel (the caller zeroes it) and "reflect" mirrors about the edge pixels, which are not
    repeated (torch's reflect padding)."""
    index = torch.arange(size, device=shift.device) - shift.long()[:, None]
    inside = (index >= 0) & (index < size)
    if padding == "zeros":
        return index.clamp(0, size - 1), inside
    period = 2 * (size - 1)
    if period == 0:
        return torch.zeros_like(index), inside
    index = index.remainder(period)
    return torch.where(index >= size, period - index, index), inside


def translate(x: Tensor, shift: Tensor, padding: str = "zeros") -> Tensor:
    """Content moved by whole pixels, ``shift`` ``(N, 2)`` = (right, down) per sample: out[y, x] =
    in[y - dy, x - dx]. Pixels moved in from outside are zeros (``padding="zeros"``, DiffAugment) or
    mirrored (``"reflect"``, ADA). Exact: every output pixel is one input pixel or 0."""
    if padding not in ("zeros", "reflect"):
        raise ConfigError(f"unknown translation padding {padding!r}. Known: reflect, zeros.")
    n, _, h, w = x.shape
    rows, rows_inside = _source_index(h, shift[:, 1], padding)
    cols, cols_inside = _source_index(w, shift[:, 0], padding)
    batch = torch.arange(n, device=x.device)[:, None, None]
    # Advanced indices around a slice put the indexed dimensions first: (N, H, W, C).
    moved = x[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if padding == "reflect":
        return moved
    inside = rows_inside[:, :, None] & cols_inside[:, None, :]
    return moved * inside[:, None].to(x.dtype)


def cutout(x: Tensor, corner: Tensor, size: tuple[int, int]) -> Tensor:
    """x with the rectangle of ``size`` = (width, height) pixels whose top-left pixel is ``corner``
    ``(N, 2)`` (x, y; may lie outside the image, the rectangle is then clipped) set to 0."""
    _, _, h, w = x.shape
    cols = torch.arange(w, device=x.device)
    rows = torch.arange(h, device=x.device)
    left, top = corner.long()[:, 0:1], corner.long()[:, 1:2]
    in_cols = (cols >= left) & (cols < left + size[0])
    in_rows = (rows >= top) & (rows < top + size[1])
    keep = ~(in_rows[:, :, None] & in_cols[:, None, :])
    return x * keep[:, None].to(x.dtype)


# --------------------------------------------------------------------------------------------------
# DiffAugment's random policies


def random_color(x: Tensor, generator: Generator) -> Tensor:
    """DiffAugment's "color": brightness + U(-0.5, 0.5), saturation x U(0, 2), contrast x U(0.5, 1.5)."""
    x = shift_brightness(x, _uniform(x, generator) - 0.5)
    x = scale_saturation(x, _uniform(x, generator) * 2)
    return scale_contrast(x, _uniform(x, generator) + 0.5)


def random_translation(x: Tensor, generator: Generator) -> Tensor:
    """DiffAugment's "translation": shifts uniform in [-side // 8, side // 8] per axis, zero fill."""
    _, _, h, w = x.shape
    down = _integers(x, generator, -(h // 8), h // 8 + 1)
    right = _integers(x, generator, -(w // 8), w // 8 + 1)
    return translate(x, torch.stack([right, down], dim=1), padding="zeros")


def random_cutout(x: Tensor, generator: Generator) -> Tensor:
    """DiffAugment's "cutout": a (side // 2)-sized rectangle zeroed, its centre uniform over the image
    (for an even size, one pixel past the last row and column as in the authors' code)."""
    _, _, h, w = x.shape
    width, height = w // 2, h // 2
    top = _integers(x, generator, 0, h + 1 - height % 2) - height // 2
    left = _integers(x, generator, 0, w + 1 - width % 2) - width // 2
    return cutout(x, torch.stack([left, top], dim=1), (width, height))


DIFFAUGMENT: dict[str, Callable[[Tensor, Generator], Tensor]] = {
    "color": random_color,
    "translation": random_translation,
    "cutout": random_cutout,
}


def check_policy(policy: Sequence[str] | str) -> tuple[str, ...]:
    """The DiffAugment policy as a tuple of names of ``DIFFAUGMENT``, applied in this order;
    a ConfigError names an unknown one, suggests a close name and lists the valid ones."""
    return _check_names(policy, DIFFAUGMENT, "DiffAugment policy")


def diffaugment(x: Tensor, policy: Sequence[str] | str, generator: Generator) -> Tensor:
    """x through each DiffAugment transform of ``policy`` in order (x itself for an empty policy)."""
    _check_images(x, "DiffAugment")
    for name in check_policy(policy):
        x = DIFFAUGMENT[name](x, generator)
    return x


# --------------------------------------------------------------------------------------------------
# Homogeneous matrices (N, d + 1, d + 1) from a linear part (N, d, d) and an offset (N, d)


def _homogeneous(linear: Tensor, offset: Tensor | None = None) -> Tensor:
    n, d, _ = linear.shape
    matrix = torch.zeros(n, d + 1, d + 1, dtype=linear.dtype, device=linear.device)
    matrix[:, :d, :d] = linear
    if offset is not None:
        matrix[:, :d, d] = offset
    matrix[:, d, d] = 1
    return matrix


def _identity(values: Tensor, d: int) -> Tensor:
    """The d x d identity once per sample of ``values`` ``(N, ...)``, in their dtype and device."""
    return torch.eye(d, dtype=values.dtype, device=values.device).expand(values.shape[0], d, d)


# --------------------------------------------------------------------------------------------------
# ADA's blit group with explicit parameters: exact pixel moves


def xflip(x: Tensor, flip: Tensor) -> Tensor:
    """Samples where ``flip`` ``(N,)`` is true mirrored left-right."""
    return torch.where(flip.bool().view(-1, 1, 1, 1), x.flip(3), x)


def rotate90(x: Tensor, turns: Tensor) -> Tensor:
    """Each sample rotated by ``turns`` ``(N,)`` (0..3) quarter turns counterclockwise as displayed
    (``torch.rot90`` on (H, W)). Needs square images."""
    rotated = x
    for k in (1, 2, 3):
        rotated = torch.where((turns == k).view(-1, 1, 1, 1), x.rot90(k, dims=(2, 3)), rotated)
    return rotated


# --------------------------------------------------------------------------------------------------
# ADA's geometric group with explicit parameters: pixel-space matrices, applied once


def scale_matrix(sx: Tensor, sy: Tensor) -> Tensor:
    """Scaling by ``sx`` horizontally and ``sy`` vertically about the image centre, ``(N, 3, 3)``."""
    return _homogeneous(torch.diag_embed(torch.stack([sx, sy], dim=1)))


def rotation_matrix(theta: Tensor) -> Tensor:
    """Rotation by ``theta`` ``(N,)`` radians about the image centre, ``(N, 3, 3)``; with y pointing
    down the image, a positive angle turns clockwise as displayed."""
    cos, sin = torch.cos(theta), torch.sin(theta)
    linear = torch.stack([cos, -sin, sin, cos], dim=1).view(-1, 2, 2)
    return _homogeneous(linear)


def translation_matrix(shift: Tensor) -> Tensor:
    """Translation by ``shift`` ``(N, 2)`` = (right, down) pixels, ``(N, 3, 3)``."""
    return _homogeneous(_identity(shift, 2), shift)


def warp(x: Tensor, matrix: Tensor) -> Tensor:
    """x moved by the pixel-space matrices ``(N, 3, 3)`` in one bilinear resampling, mirrored about
    the edge pixels where the source lies outside the image; differentiable in x."""
    _, _, h, w = x.shape
    if min(h, w) < 2:
        raise ConfigError(f"ADA's geometric group needs images of at least 2x2 pixels, not {h}x{w}.")
    # affine_grid (align_corners=True) measures positions in [-1, 1] from the centres of the edge pixels.
    to_grid = torch.diag(torch.tensor([2 / (w - 1), 2 / (h - 1), 1.0], dtype=matrix.dtype, device=matrix.device))
    output_to_input = to_grid @ torch.linalg.inv(matrix) @ torch.linalg.inv(to_grid)
    grid = F.affine_grid(output_to_input[:, :2].to(x.dtype), list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=True)


# --------------------------------------------------------------------------------------------------
# ADA's colour group with explicit parameters: 4x4 homogeneous RGB matrices

_LUMA = torch.full((3, 3), 1 / 3, dtype=torch.float64)  # v v^T for the luma axis v = (1, 1, 1) / sqrt(3)


def _luma(values: Tensor) -> Tensor:
    return _LUMA.to(dtype=values.dtype, device=values.device).expand(values.shape[0], 3, 3)


def brightness_matrix(shift: Tensor) -> Tensor:
    """rgb + shift ``(N,)``."""
    return _homogeneous(_identity(shift, 3), shift[:, None].expand(-1, 3))


def contrast_matrix(factor: Tensor) -> Tensor:
    """rgb x factor ``(N,)`` (about 0, the middle grey of images in [-1, 1])."""
    return _homogeneous(_identity(factor, 3) * factor.view(-1, 1, 1))


def luma_flip_matrix(flip: Tensor) -> Tensor:
    """Where ``flip`` ``(N,)`` is 1: rgb mirrored through the plane orthogonal to the luma axis
    (the luma r + g + b changes sign, the chroma is kept)."""
    return _homogeneous(_identity(flip, 3) - 2 * _luma(flip) * flip.view(-1, 1, 1))


def hue_matrix(theta: Tensor) -> Tensor:
    """Rotation of rgb by ``theta`` ``(N,)`` radians about the luma axis (Rodrigues' formula)."""
    cos, sin = torch.cos(theta).view(-1, 1, 1), torch.sin(theta).view(-1, 1, 1)
    a = 1 / math.sqrt(3)
    cross = torch.tensor([[0, -a, a], [a, 0, -a], [-a, a, 0]], dtype=theta.dtype, device=theta.device)
    luma = _luma(theta)
    return _homogeneous(cos * _identity(theta, 3) + sin * cross + (1 - cos) * luma)


def saturation_matrix(factor: Tensor) -> Tensor:
    """rgb's distance from the grey of the same luma times ``factor`` ``(N,)``."""
    luma = _luma(factor)
    return _homogeneous(luma + (_identity(factor, 3) - luma) * factor.view(-1, 1, 1))


def recolor(x: Tensor, matrix: Tensor) -> Tensor:
    """x through the colour matrices ``(N, 4, 4)``: rgb -> M rgb for 3 channels; a grey image is
    taken as (g, g, g) and the mean of the three results is kept (ADA's rule)."""
    n, channels, h, w = x.shape
    linear, offset = matrix[:, :3, :3].to(x.dtype), matrix[:, :3, 3].to(x.dtype)
    if channels == 3:
        return torch.einsum("nij,njhw->nihw", linear, x) + offset.view(n, 3, 1, 1)
    _check_color_channels(channels)
    return x * _per_sample(linear.sum(dim=2).mean(dim=1), x) + _per_sample(offset.mean(dim=1), x)


def _check_color_channels(channels: int) -> None:
    if channels not in (1, 3):
        raise ConfigError(f"ADA's color group needs 1 or 3 channels, not {channels}.")


# --------------------------------------------------------------------------------------------------
# ADA's random draws

ADA_GROUPS: dict[str, str] = {
    "blit": "x-flip, quarter turns and integer translation (up to 1/8 of the side), exact pixel moves",
    "geom": "isotropic scale, rotation, anisotropic scale, fractional translation, one bilinear resampling",
    "color": "brightness, contrast, luma flip, hue rotation, saturation (1-channel: brightness and contrast)",
}

_XINT_MAX = 0.125  # integer translation: uniform up to this fraction of the side
_SCALE_STD = 0.2  # isotropic and anisotropic scale: standard deviation of log2(s)
_XFRAC_STD = 0.125  # fractional translation: standard deviation as a fraction of the side
_BRIGHTNESS_STD = 0.2
_CONTRAST_STD = 0.5  # standard deviation of log2(c)
_SATURATION_STD = 1.0  # standard deviation of log2(s)


def _choice(count: int) -> Callable[[Tensor, Generator], Tensor]:
    """Draws of 0, 1, ..., count - 1, equally likely."""
    return lambda x, generator: torch.floor(_uniform(x, generator) * count)


def _sides(x: Tensor) -> Tensor:
    """(width, height) of ``x``'s images, float32."""
    return torch.tensor([x.shape[3], x.shape[2]], dtype=torch.float32, device=x.device)


def _integer_shift(x: Tensor, generator: Generator) -> Tensor:
    return torch.round((_uniform(x, generator, 2) * 2 - 1) * _XINT_MAX * _sides(x))


def _fractional_shift(x: Tensor, generator: Generator) -> Tensor:
    return _normal(x, generator, 2) * _XFRAC_STD * _sides(x)


def _log2_normal(std: float) -> Callable[[Tensor, Generator], Tensor]:
    return lambda x, generator: torch.exp2(_normal(x, generator) * std)


def _angle(x: Tensor, generator: Generator) -> Tensor:
    """Uniform in [-pi, pi)."""
    return (_uniform(x, generator) * 2 - 1) * math.pi


class _AdaTransform(NamedTuple):
    key: str  # its entry in the draws
    name: str  # its probability multiplier (pre- and post-rotation share "rotate")
    group: str
    draw: Callable[[Tensor, Generator], Tensor]  # its parameter for every sample
    identity: float  # its parameter where it is not applied
    split: bool = False  # applied with 1 - sqrt(1 - p): two of them give p
    rgb_only: bool = False


# In ADA's order: within a group, each transform acts on the result of the previous one.
_ADA: tuple[_AdaTransform, ...] = (
    _AdaTransform("xflip", "xflip", "blit", _choice(2), 0.0),
    _AdaTransform("rotate90", "rotate90", "blit", _choice(4), 0.0),
    _AdaTransform("xint", "xint", "blit", _integer_shift, 0.0),
    _AdaTransform("scale", "scale", "geom", _log2_normal(_SCALE_STD), 1.0),
    _AdaTransform("rotate_pre", "rotate", "geom", _angle, 0.0, split=True),
    _AdaTransform("aniso", "aniso", "geom", _log2_normal(_SCALE_STD), 1.0),
    _AdaTransform("rotate_post", "rotate", "geom", _angle, 0.0, split=True),
    _AdaTransform("xfrac", "xfrac", "geom", _fractional_shift, 0.0),
    _AdaTransform("brightness", "brightness", "color", lambda x, g: _normal(x, g) * _BRIGHTNESS_STD, 0.0),
    _AdaTransform("contrast", "contrast", "color", _log2_normal(_CONTRAST_STD), 1.0),
    _AdaTransform("lumaflip", "lumaflip", "color", _choice(2), 0.0, rgb_only=True),
    _AdaTransform("hue", "hue", "color", _angle, 0.0, rgb_only=True),
    _AdaTransform("saturation", "saturation", "color", _log2_normal(_SATURATION_STD), 1.0, rgb_only=True),
)

ADA_TRANSFORMS: dict[str, str] = {t.name: t.group for t in _ADA}  # multiplier name -> its group


class AdaDraw(NamedTuple):
    """One ADA transform's draw: whether each sample gets it ``(N,)`` and its parameter per sample
    (the identity value where it does not)."""

    applied: Tensor
    value: Tensor


def check_groups(groups: Sequence[str] | str) -> tuple[str, ...]:
    """The ADA groups as a tuple of names of ``ADA_GROUPS``; a ConfigError lists the valid ones."""
    return _check_names(groups, ADA_GROUPS, "ADA group")


def _probabilities(p: float, multipliers: Mapping[str, float] | None) -> dict[str, float]:
    """Each transform's probability multiplier times p, clipped to 1."""
    if not 0 <= p <= 1:
        raise ConfigError(f"ADA's augmentation probability p must be in [0, 1], not {p}.")
    scaled = {name: p for name in ADA_TRANSFORMS}
    for name, multiplier in (multipliers or {}).items():
        lookup(ADA_TRANSFORMS, name, "ADA transform")
        if multiplier < 0:
            raise ConfigError(f"ADA's probability multiplier for {name!r} must be >= 0, not {multiplier}.")
        scaled[name] = p * multiplier
    return {name: min(value, 1.0) for name, value in scaled.items()}


def draw_ada_parameters(x: Tensor, p: float, groups: Sequence[str], generator: Generator,
                        multipliers: Mapping[str, float] | None = None) -> dict[str, AdaDraw]:
    """The parameters of every transform of ``groups`` for the samples of ``x``, by key (``xflip``,
    ``rotate90``, ``xint``, ``scale``, ``rotate_pre``, ``aniso``, ``rotate_post``, ``xfrac``,
    ``brightness``, ``contrast``, and for 3 channels ``lumaflip``, ``hue``, ``saturation``).
    Shifts are in pixels, angles in radians, flips 0/1, quarter turns 0..3, scales factors."""
    groups = check_groups(groups)
    probability = _probabilities(p, multipliers)
    draws = {}
    for transform in _ADA:
        if transform.group not in groups or (transform.rgb_only and x.shape[1] != 3):
            continue
        value = transform.draw(x, generator)
        chance = probability[transform.name]
        if transform.split:
            chance = 1 - math.sqrt(1 - chance)
        applied = _uniform(x, generator) < chance
        mask = applied.view(-1, *[1] * (value.dim() - 1))
        draws[transform.key] = AdaDraw(applied, torch.where(mask, value, torch.full_like(value, transform.identity)))
    return draws


def blit(x: Tensor, draws: Mapping[str, AdaDraw]) -> Tensor:
    """x flipped, then turned, then translated (mirrored fill), as drawn."""
    x = xflip(x, draws["xflip"].value)
    x = rotate90(x, draws["rotate90"].value.long())
    return translate(x, draws["xint"].value, padding="reflect")


def geometric_matrix(draws: Mapping[str, AdaDraw]) -> Tensor:
    """The pixel-space matrix ``(N, 3, 3)`` of the geometric group: isotropic scale, then pre-rotation,
    anisotropic scale (s, 1/s), post-rotation and fractional translation."""
    scale, aniso = draws["scale"].value, draws["aniso"].value
    return (translation_matrix(draws["xfrac"].value) @ rotation_matrix(draws["rotate_post"].value)
            @ scale_matrix(aniso, 1 / aniso) @ rotation_matrix(draws["rotate_pre"].value) @ scale_matrix(scale, scale))


_COLOR_MATRICES = {"brightness": brightness_matrix, "contrast": contrast_matrix, "lumaflip": luma_flip_matrix,
                   "hue": hue_matrix, "saturation": saturation_matrix}


def color_matrix(draws: Mapping[str, AdaDraw]) -> Tensor:
    """The colour matrix ``(N, 4, 4)`` of the drawn colour transforms, composed in ADA's order."""
    matrix = None
    for key, build in _COLOR_MATRICES.items():
        if key in draws:
            step = build(draws[key].value)
            matrix = step if matrix is None else step @ matrix
    return matrix


def _check_ada_images(x: Tensor, groups: tuple[str, ...]) -> None:
    _check_images(x, "ADA")
    _, channels, h, w = x.shape
    if "blit" in groups and h != w:
        raise ConfigError(f"ADA's blit group turns images by 90 degrees and needs square images, not {h}x{w}.")
    if "color" in groups:
        _check_color_channels(channels)


def ada_augment(x: Tensor, p: float, groups: Sequence[str], generator: Generator,
                multipliers: Mapping[str, float] | None = None) -> Tensor:
    """x through ADA's ``groups`` (in the order blit, geom, color), each transform applied to each
    sample with probability p times its multiplier (``ADA_TRANSFORMS``, 1 where not given).
    With p == 0 or no groups: x itself, nothing drawn."""
    groups = check_groups(groups)
    _check_ada_images(x, groups)
    _probabilities(p, multipliers)  # rejects a bad p or multiplier even where nothing is drawn
    if p == 0 or not groups:
        return x
    draws = draw_ada_parameters(x, p, groups, generator, multipliers)
    if "blit" in groups:
        x = blit(x, draws)
    if "geom" in groups:
        x = warp(x, geometric_matrix(draws))
    if "color" in groups:
        x = recolor(x, color_matrix(draws))
    return x


def adjusted_p(p: float, sign_mean: float, target: float, images: int, speed_images: float) -> float:
    """ADA's controller: p moved by images / speed_images up when D is overconfident on the reals
    (``sign_mean`` = E[sign(D(real))] since the last adjustment above ``target``, 0.6 in the paper),
    down when below, not at all when equal; clamped to [0, 1]. ``speed_images`` is the number of
    images over which p can go from 0 to 1 (500k in the paper)."""
    if speed_images <= 0:
        raise ConfigError(f"ADA's speed (images for p to go from 0 to 1) must be > 0, not {speed_images}.")
    direction = (sign_mean > target) - (sign_mean < target)
    return min(max(p + direction * images / speed_images, 0.0), 1.0)
