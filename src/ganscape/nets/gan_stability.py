"""The image networks of Mescheder, Geiger & Nowozin (2018), as their code builds them.

Four families of LMescheder/GAN_stability (``gan_training/models/``), each a generator and a
discriminator made of one residual block kind:

  block(x) = shortcut(x) + 0.1 * conv_1(lrelu(conv_0(lrelu(x))))

with 3x3 convs, ``conv_0`` to min(in, out) channels, leaky ReLU of slope 0.2 and a 1x1 conv without
bias as the shortcut when the channel count changes (else the identity). G: label embedding, linear
[z, embed(y)] -> (channels, b, b), blocks with nearest-neighbour x2 upsampling between them, lrelu,
conv to the image, tanh. D: conv from the image, blocks with 3x3 stride-2 average pooling (padding 1)
between them, lrelu, linear to one logit per label; D(x, y) is the logit of y's column.

| family | reference | sides | G's channels from z (multiples of nf) | D's from the image | image conv |
|---|---|---|---|---|---|
| ``gs_resnet`` | resnet.py | 4 * 2^n | nf * 2^n capped at ``nfilter_max``, one block per size | mirrored | 3x3 |
| ``gs_resnet2`` | resnet2.py | 32 k | 16 16 16 8 4 2 1, two blocks per size | 1 2 4 8 16 16 16 | 3x3 |
| ``gs_resnet3`` | resnet3.py | 64 k | 32 16 16 8 4 2 1, one block per size, x2 after | 1 2 4 8 16 16 32 | 7x7 |
| ``gs_resnet4`` | resnet4.py | 64 k | 16 16 16 8 4 2 1 1, one block per size | 1 1 2 4 8 16 16 16 | 7x7 |

``width`` is the reference's ``nfilter`` (nf); ``GANStabilitySettings`` holds ``nfilter_max`` (read by
``gs_resnet`` only) and ``embed_size``. ``gs_resnet`` and ``gs_resnet2`` scale G's label embedding to unit
L2 norm, ``gs_resnet3``/``gs_resnet4`` do not. The weights start as PyTorch initialises them, as in the
reference. The blocks are kept in a flat ``blocks`` list; ``reference_names`` gives each its name in
the reference's state dict (``resnet.4`` or ``resnet_2_1``), which ``ganscape.importers`` maps.

An unconditional network (``num_classes`` 0) is the reference's ``nlabels=1`` network: a one-row
embedding and one logit column, used for every sample, so that its parameters and weights are the
reference's unconditional configs'. Labels given to it are ignored.

Weight layers come from the ``Normalization``: ``norm=none`` gives exactly the reference's networks,
``spectral`` and ``weight`` swap the layers (under ``weight``, leaky ReLUs become translated PReLUs, and
G's image conv and D's linear layer are the affine last layers). Normalizations that add feature norms
(batch, layer, instance) are refused: the reference's networks have none.

Differences from the reference: the image has the data's channel count (the reference: always 3);
float labels (N, classes) are class mixtures, whose embedding is the weighted sum of the classes'
(the reference takes a float ``y`` as the embedding itself); D reads integer labels only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ganscape.errors import ConfigError
from ganscape.nets.common import class_embedding, norm_of
from ganscape.nets.layers import Normalization

RESIDUAL_SCALE = 0.1  # the residual branch's weight in every block
LEAK = 0.2  # the slope of the leaky ReLUs


@dataclass
class GANStabilitySettings:
    """The settings of the ``gs_resnet*`` architectures: keys ``g.settings.*`` and ``d.settings.*``.

    The reference's defaults are ``nfilter_max`` 512 in G and 1024 in D; its configs set both (512 for
    CelebA-HQ, 1024 for LSUN and ImageNet). ``embed_size`` is 1 in its unconditional configs.
    """

    nfilter_max: int = field(default=512, metadata={
        "min": 1, "max": 1 << 16, "help": "the most channels of any block, read by gs_resnet only (nfilter_max)"})
    embed_size: int = field(default=256, metadata={
        "min": 1, "max": 1 << 16, "help": "G: the label embedding's size (1 in unconditional nets; D has none)"})


def settings_of(cfg) -> GANStabilitySettings:
    """A network config's settings (the defaults where it has none, e.g. its arch was changed in place)."""
    settings = getattr(cfg, "settings", None)
    return settings if isinstance(settings, GANStabilitySettings) else GANStabilitySettings()


@dataclass(frozen=True)
class Stage:
    """Blocks at one map size: ``channels`` along them (in, out of the first, out of the second, ...);
    ``resized`` when the map is resized (doubled in G, halved in D) before them."""

    channels: tuple[int, ...]
    resized: bool


@dataclass(frozen=True)
class Layout:
    """One network of a family: its stages, and whether the map is resized once more after them (the
    ``gs_resnet3`` G). ``sequential`` names blocks as the reference's ``nn.Sequential`` does (``resnet.2k``
    for the k-th size), otherwise ``resnet_<size>_<block>``."""

    stages: tuple[Stage, ...]
    resized_after: bool = False
    sequential: bool = False

    @property
    def resizes(self) -> int:
        return sum(stage.resized for stage in self.stages) + self.resized_after

    def blocks(self) -> list[tuple[int, int, bool, str]]:
        """(in channels, out channels, resized before, reference name) of every block, in order."""
        found = []
        for i, stage in enumerate(self.stages):
            for j, (fin, fout) in enumerate(zip(stage.channels, stage.channels[1:])):
                name = f"resnet.{2 * i}" if self.sequential else f"resnet_{i}_{j}"
                found.append((fin, fout, stage.resized and j == 0, name))
        return found


def _stages(nf: int, paths: tuple[tuple[int, ...], ...], first_resized: bool = False) -> tuple[Stage, ...]:
    """Stages from channel multiples of ``nf``; each after the first is resized before."""
    return tuple(Stage(tuple(nf * m for m in path), i > 0 or first_resized) for i, path in enumerate(paths))


def _resnet_layouts(size: int, nf: int, nf_max: int) -> tuple[Layout, Layout]:
    """resnet.py: n = log2(size / 4) sizes, nf * 2^k channels (capped at ``nf_max``) at k halvings."""
    if nf > nf_max:
        raise ConfigError(f"gs_resnet: width (the reference's nfilter) {nf} exceeds settings.nfilter_max {nf_max}; "
                          "the reference's networks need nfilter <= nfilter_max.")
    levels = (size // 4).bit_length() - 1
    channels = [min(nf * 2 ** k, nf_max) for k in range(levels + 1)]
    g = [Stage((channels[levels - i], channels[levels - i - 1]), i > 0) for i in range(levels)]
    g.append(Stage((nf, nf), True))  # the last block, nf -> nf, after the last doubling
    d = [Stage((nf, nf), False)] + [Stage((channels[i], channels[i + 1]), True) for i in range(levels)]
    return Layout(tuple(g), sequential=True), Layout(tuple(d), sequential=True)


def _resnet2_layouts(nf: int) -> tuple[Layout, Layout]:
    g = ((16, 16, 16), (16, 16, 16), (16, 8, 8), (8, 4, 4), (4, 2, 2), (2, 1, 1))
    d = ((1, 1, 2), (2, 2, 4), (4, 4, 8), (8, 8, 16), (16, 16, 16), (16, 16, 16))
    return Layout(_stages(nf, g)), Layout(_stages(nf, d))


def _resnet3_layouts(nf: int) -> tuple[Layout, Layout]:
    g = ((32, 16), (16, 16), (16, 8), (8, 4), (4, 2), (2, 1))
    d = ((1, 2), (2, 4), (4, 8), (8, 16), (16, 16), (16, 32))
    return Layout(_stages(nf, g), resized_after=True), Layout(_stages(nf, d, first_resized=True))


def _resnet4_layouts(nf: int) -> tuple[Layout, Layout]:
    g = ((16, 16), (16, 16), (16, 8), (8, 4), (4, 2), (2, 1), (1, 1))
    d = ((1, 1), (1, 2), (2, 4), (4, 8), (8, 16), (16, 16), (16, 16))
    return Layout(_stages(nf, g)), Layout(_stages(nf, d))


@dataclass(frozen=True)
class Family:
    """A reference module: its image conv, whether G's embedding has unit norm, its layouts, its sides."""

    reference: str
    image_kernel: int
    unit_embedding: bool
    layouts: Callable[[int, int, int], tuple[Layout, Layout]]  # (side, nf, nfilter_max) -> G's, D's
    side_multiple: int = 0  # the sides must be multiples of this; 0: sides 4 * 2^n, n >= 1 (resnet.py)

    def side_ok(self, side: int) -> bool:
        if self.side_multiple:
            return side > 0 and side % self.side_multiple == 0
        return side >= 8 and side % 4 == 0 and (side // 4) & (side // 4 - 1) == 0

    @property
    def sides(self) -> str:
        """The supported sides, in words."""
        if self.side_multiple:
            examples = ", ".join(str(self.side_multiple * k) for k in (1, 2, 3, 4))
            return f"multiples of {self.side_multiple} ({examples}, ...)"
        return "4 * 2^n (8, 16, 32, ..., 1024, ...)"


FAMILIES = {
    "gs_resnet": Family("resnet.py", 3, True, _resnet_layouts),
    "gs_resnet2": Family("resnet2.py", 3, True, lambda side, nf, nf_max: _resnet2_layouts(nf), 32),
    "gs_resnet3": Family("resnet3.py", 7, False, lambda side, nf, nf_max: _resnet3_layouts(nf), 64),
    "gs_resnet4": Family("resnet4.py", 7, False, lambda side, nf, nf_max: _resnet4_layouts(nf), 64),
}


def _check_norm(norm: Normalization, arch: str) -> Normalization:
    if not isinstance(norm.feature_norm(1, 2), nn.Identity):
        raise ConfigError(f"{arch} has no feature normalization (GAN_stability's networks have none), so "
                          f"norm={norm.name} does not apply; use norm=none (the reference's networks), spectral "
                          "or weight.")
    return norm


def _layouts(cfg, arch: str, shape: tuple[int, ...]) -> tuple[Family, int, Layout, Layout]:
    """The family, the image side and G's and D's layouts for ``shape``, after checking it."""
    family = FAMILIES[arch]
    if len(shape) != 3 or shape[1] != shape[2] or not family.side_ok(shape[1]):
        raise ConfigError(f"{arch} makes square images with sides {family.sides} pixels, not samples of shape "
                          f"{tuple(shape)}; set data.resolution to one of them.")
    return (family, shape[1], *family.layouts(shape[1], cfg.width, settings_of(cfg).nfilter_max))


def _activation(norm: Normalization, features: int) -> nn.Module:
    return norm.activation(features, lambda: nn.LeakyReLU(LEAK))


def _without_bias(layer: nn.Module) -> nn.Module:
    """``layer`` with its bias removed: the reference's shortcut convs have none, and the ``Normalization``'s
    factories always make one (weight-normalized hidden layers have none already)."""
    if getattr(layer, "bias", None) is not None:
        layer.register_parameter("bias", None)
    return layer


class ResnetBlock(nn.Module):
    """x -> shortcut(x) + 0.1 * conv_1(act_1(conv_0(act_0(x)))); the shortcut a 1x1 conv when in != out."""

    def __init__(self, fin: int, fout: int, norm: Normalization):
        super().__init__()
        hidden = min(fin, fout)
        self.act_0 = _activation(norm, fin)
        self.conv_0 = norm.conv(fin, hidden, 3, 1, 1)
        self.act_1 = _activation(norm, hidden)
        self.conv_1 = norm.conv(hidden, fout, 3, 1, 1)
        self.conv_s = _without_bias(norm.conv(fin, fout, 1)) if fin != fout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.conv_s is None else self.conv_s(x)
        return shortcut + RESIDUAL_SCALE * self.conv_1(self.act_1(self.conv_0(self.act_0(x))))


class _Blocks(nn.Module):
    """The blocks of a layout, run with ``resize`` before those that the layout resizes before."""

    def __init__(self, layout: Layout, norm: Normalization):
        super().__init__()
        blocks = layout.blocks()
        self.blocks = nn.ModuleList(ResnetBlock(fin, fout, norm) for fin, fout, _, _ in blocks)
        self.resized_before = [resized for _, _, resized, _ in blocks]
        self.reference_names = [name for _, _, _, name in blocks]

    def run_blocks(self, h: torch.Tensor, resize) -> torch.Tensor:
        for block, resized in zip(self.blocks, self.resized_before):
            h = block(resize(h) if resized else h)
        return h


def _upsample(h: torch.Tensor) -> torch.Tensor:
    return F.interpolate(h, scale_factor=2, mode="nearest")


def _downsample(h: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(h, 3, stride=2, padding=1)


class GANStabilityGenerator(_Blocks):
    """G(z, y): the embedding of y (unit-norm in ``gs_resnet``/``gs_resnet2``), linear [z, e] -> (c, b, b),
    blocks with x2 upsampling, lrelu, image conv, tanh."""

    def __init__(self, cfg, arch: str, latent_dim: int, shape: tuple[int, ...], num_classes: int):
        norm = _check_norm(norm_of(cfg), arch)
        family, side, layout, _ = _layouts(cfg, arch, shape)
        super().__init__(layout, norm)
        embed_size = settings_of(cfg).embed_size
        self.num_classes = num_classes
        self.unit_embedding = family.unit_embedding
        self.resized_after = layout.resized_after
        self.bottom = side >> layout.resizes
        top = layout.stages[0].channels[0]
        self.embedding = nn.Embedding(max(num_classes, 1), embed_size)  # one row when unconditional
        self.fc = norm.linear(latent_dim + embed_size, top * self.bottom ** 2)
        nf = layout.stages[-1].channels[-1]
        self.act_img = _activation(norm, nf)
        self.conv_img = norm.conv(nf, shape[0], family.image_kernel, 1, family.image_kernel // 2, last=True)

    def embed(self, y: torch.Tensor | None, n: int, device) -> torch.Tensor:
        """The label embedding of each sample (row 0 for every sample when unconditional)."""
        if not self.num_classes:
            y = torch.zeros(n, dtype=torch.long, device=device)
        elif y is None:
            raise ValueError("this network is class-conditional: pass the labels y")
        e = class_embedding(self.embedding, y)
        return e / e.norm(dim=1, keepdim=True) if self.unit_embedding else e

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.fc(torch.cat([z, self.embed(y, len(z), z.device)], dim=1))
        h = self.run_blocks(h.view(len(z), -1, self.bottom, self.bottom), _upsample)
        if self.resized_after:
            h = _upsample(h)
        return torch.tanh(self.conv_img(self.act_img(h)))


class GANStabilityDiscriminator(_Blocks):
    """D(x, y): image conv, blocks with 3x3 stride-2 average pooling, lrelu, linear to one logit per label;
    the logit of y's label (of label 0 when unconditional)."""

    def __init__(self, cfg, arch: str, shape: tuple[int, ...], num_classes: int):
        norm = _check_norm(norm_of(cfg), arch)
        family, side, _, layout = _layouts(cfg, arch, shape)
        super().__init__(layout, norm)
        self.num_classes = num_classes
        nf = layout.stages[0].channels[0]
        self.conv_img = norm.conv(shape[0], nf, family.image_kernel, 1, family.image_kernel // 2)
        features = layout.stages[-1].channels[-1] * (side >> layout.resizes) ** 2
        self.act_fc = _activation(norm, features)
        self.fc = norm.linear(features, max(num_classes, 1), last=True)

    def all_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, labels): the logit of every label (one column when unconditional)."""
        h = self.run_blocks(self.conv_img(x), _downsample)
        return self.fc(self.act_fc(h.flatten(1)))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.all_logits(x)
        if not self.num_classes:
            return logits[:, 0]
        if y is None:
            raise ValueError("this network is class-conditional: pass the labels y")
        return logits.gather(1, y.view(-1, 1)).view(len(x))


def _builders(arch: str):
    def generator(cfg, latent_dim: int, shape: tuple[int, ...], num_classes: int) -> nn.Module:
        return GANStabilityGenerator(cfg, arch, latent_dim, shape, num_classes)

    def discriminator(cfg, shape: tuple[int, ...], num_classes: int) -> nn.Module:
        return GANStabilityDiscriminator(cfg, arch, shape, num_classes)

    return generator, discriminator


BUILDERS = {arch: _builders(arch) for arch in FAMILIES}  # arch -> (generator, discriminator) builders
