"""BigGAN and BigGAN-deep (Brock, Donahue & Simonyan, 2019), as BigGAN-PyTorch builds them.

The layout follows the authors' PyTorch code (``BigGAN.py``, ``BigGANdeep.py``, ``layers.py`` in
ajbrock/BigGAN-PyTorch), so that parameter counts agree and its published weights load
(``ganscape.importers``). ``width`` is the channel multiplier ``ch``; the tables below give each
resolution's channels in multiples of it.

G: z (or its first chunk) -> linear -> (16 ch, 4, 4) -> up-blocks -> BN, ReLU, conv 3x3 -> tanh.
  A BigGAN G block: CBN, ReLU, nearest x2, conv 3x3, CBN, ReLU, conv 3x3, plus a 1x1 conv shortcut
  on the upsampled input. A BigGAN-deep G block: CBN, ReLU, conv 1x1 down to in/4 channels, CBN,
  ReLU, [x2], conv 3x3, CBN, ReLU, conv 3x3, CBN, ReLU, conv 1x1 to out, plus the input with its
  extra channels dropped (and upsampled): ``depth`` such blocks per resolution, the last one
  upsampling.
  Conditioning: every conditional batch norm (CBN) takes a condition vector per sample. With
  ``hierarchical`` z, BigGAN splits z into one chunk for the input and one per block, each block's
  condition being [shared class embedding, its chunk]; BigGAN-deep feeds [embedding, z] to the
  input and to every block. Without a shared embedding (``shared_dim=0``, BigGAN's CIFAR script)
  each CBN has its own per-class gains and biases and z is not split.
D: down-blocks -> ReLU -> global SUM pool -> linear, plus the projection <embed(y), h> with a
  spectrally normalised class embedding. A BigGAN D block: [ReLU], conv 3x3, ReLU, conv 3x3,
  [avg-pool 2], plus a 1x1 conv shortcut (the first block has no pre-activation and pools before its
  shortcut conv). A BigGAN-deep D starts with a conv 3x3 and each block is ReLU, conv 1x1 to out/4,
  ReLU, conv 3x3, ReLU, conv 3x3, ReLU, [avg-pool], conv 1x1 to out, plus the (pooled) input with
  extra channels from a 1x1 conv appended.
Self-attention (``attention``) follows the block whose output has that resolution, in G and in D.
Weight layers are spectrally normalised with ``norm=spectral`` (BigGAN: both nets; G's shared
embedding never), plain with ``norm=none``.

Differences from BigGAN-PyTorch: G's output has the data's channel count (not always 3); the D
resolution an attention block is placed at is the block's real output resolution (the reference's
32-pixel D labels all its blocks 16); BigGAN-deep requires a shared embedding when conditional (the
reference's non-shared variant does not run); and hierarchical z must split evenly (the reference
silently drops the remainder of z).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ganscape.errors import ConfigError
from ganscape.nets.attention import SelfAttention
from ganscape.nets.common import class_embedding
from ganscape.nets.conditional_norm import ConditionalBatchNorm2d
from ganscape.nets.layers import SNConv2d, SNEmbedding, SNLinear

# Channels (multiples of ``width``) along G: the input of each up-block, then the last block's output.
G_CHANNELS = {32: (4, 4, 4, 4), 64: (16, 16, 8, 4, 2), 128: (16, 16, 8, 4, 2, 1), 256: (16, 16, 8, 8, 4, 2, 1)}
# D's blocks as (output channels, downsample): BigGAN and BigGAN-deep (which starts with a conv to width).
D_BLOCKS = {32: ((4, True), (4, True), (4, False), (4, False)),
            64: ((1, True), (2, True), (4, True), (8, True), (16, False)),
            128: ((1, True), (2, True), (4, True), (8, True), (16, True), (16, False)),
            256: ((1, True), (2, True), (4, True), (8, True), (8, True), (16, True), (16, False))}
DEEP_D_BLOCKS = {32: (4, ((4, True), (4, True), (4, False))),
                 64: (1, ((2, True), (4, True), (8, True), (16, True))),
                 128: (1, ((2, True), (4, True), (8, True), (16, True), (16, True))),
                 256: (1, ((2, True), (4, True), (8, True), (8, True), (16, True), (16, True)))}
BOTTOM = 4  # G's first feature map is 4 x 4


BIGGAN_INITS = {"ortho": "orthogonal (BigGAN)", "N02": "N(0, 0.02) (BigGAN's CIFAR script)",
                "xavier": "Xavier/Glorot uniform"}


@dataclass
class BigGANSettings:
    """The settings of the ``biggan`` and ``biggan_deep`` architectures: keys ``g.settings.*`` and ``d.settings.*``.

    The defaults are BigGAN's ImageNet settings (BigGAN-PyTorch's ``launch_BigGAN_bs256x8.sh``).
    ``shared_dim``, ``hierarchical`` and ``bn_eps`` concern G only; ``sn_eps`` applies where
    ``norm=spectral``. Field metadata as in ``ganscape.config.schema``.
    """

    attention: list[int] = field(default_factory=lambda: [64], metadata={
        "min": 4, "max": 1024, "help": "the resolutions that get a self-attention block"})
    shared_dim: int = field(default=128, metadata={"min": 0, "max": 1 << 16,
                                                   "help": "G: the shared class embedding's size; 0: one per block"})
    hierarchical: bool = field(default=True, metadata={"help": "G: split z over its input and its blocks"})
    init: str = field(default="ortho", metadata={"choices": lambda: BIGGAN_INITS, "help": "weight initialization"})
    sn_eps: float = field(default=1e-6, metadata={"above": 0.0, "below": 1.0,
                                                  "help": "epsilon of spectral normalization"})
    bn_eps: float = field(default=1e-5, metadata={"above": 0.0, "below": 1.0, "help": "G: epsilon of batch norm"})


def settings_of(cfg) -> BigGANSettings:
    """A network config's BigGAN settings (the defaults where it has none, e.g. its arch was changed in place)."""
    return cfg.settings if isinstance(cfg.settings, BigGANSettings) else BigGANSettings()


class Layers:
    """The weight layers of one network: spectrally normalised (``norm=spectral``, with ``sn_eps``) or plain."""

    def __init__(self, cfg):
        if cfg.norm not in ("spectral", "none"):
            raise ConfigError(f"{cfg.arch} takes norm=spectral (BigGAN) or norm=none: its batch norms are part of "
                              f"the architecture; not norm={cfg.norm}.")
        spectral = cfg.norm == "spectral"
        eps = {"eps": settings_of(cfg).sn_eps} if spectral else {}
        self.linear = functools.partial(SNLinear if spectral else nn.Linear, **eps)
        self.conv = functools.partial(SNConv2d if spectral else nn.Conv2d, **eps)
        self.embedding = functools.partial(SNEmbedding if spectral else nn.Embedding, **eps)

    def conv3(self, in_ch: int, out_ch: int) -> nn.Module:
        return self.conv(in_ch, out_ch, kernel_size=3, padding=1)

    def conv1(self, in_ch: int, out_ch: int) -> nn.Module:
        return self.conv(in_ch, out_ch, kernel_size=1)


def initialize_(module: nn.Module, style: str) -> None:
    """BigGAN's ``init_weights``: every linear, conv and embedding weight orthogonal (``ortho``), N(0, 0.02)
    (``N02``) or Xavier-uniform (``xavier``); biases keep PyTorch's default initialisation."""
    init = {"ortho": nn.init.orthogonal_, "N02": functools.partial(nn.init.normal_, mean=0.0, std=0.02),
            "xavier": nn.init.xavier_uniform_}[style]
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d, nn.Embedding)):
            init(layer.weight)


def _resolution(shape: tuple[int, ...], arch: str, table: dict) -> int:
    if len(shape) != 3 or shape[1] != shape[2] or shape[1] not in table:
        raise ConfigError(f"{arch} makes square images of {', '.join(f'{r}x{r}' for r in table)} pixels, "
                          f"not samples of shape {tuple(shape)}; set data.resolution to one of them.")
    return shape[1]


class UnconditionalBatchNorm2d(nn.BatchNorm2d):
    """A plain batch norm (learned gain and bias) in a block that passes a condition, which it ignores:
    G's norms when G has no condition at all (unconditional, z not split)."""

    def forward(self, x: torch.Tensor, condition=None) -> torch.Tensor:
        return super().forward(x)


def generator_norm(channels: int, condition_dim: int, num_classes: int, eps: float, layers: Layers) -> nn.Module:
    """G's batch norm: conditional on a vector (linear maps without bias, spectrally normalised with G's
    layers), on a class (per-class embeddings) or, without either, a plain one."""
    if condition_dim or num_classes:
        linear = functools.partial(layers.linear, bias=False)
        return ConditionalBatchNorm2d(channels, condition_dim, 0 if condition_dim else num_classes, eps, linear=linear)
    return UnconditionalBatchNorm2d(channels, eps=eps)


class GBlock(nn.Module):
    """BigGAN's up-block: x -> CBN, ReLU, up, conv3 -> CBN, ReLU, conv3, plus conv1(up(x))."""

    def __init__(self, in_ch: int, out_ch: int, norm, layers: Layers):
        super().__init__()
        self.bn1, self.bn2 = norm(in_ch), norm(out_ch)
        self.conv1, self.conv2 = layers.conv3(in_ch, out_ch), layers.conv3(out_ch, out_ch)
        self.conv_sc = layers.conv1(in_ch, out_ch)

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, condition)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), condition)))
        return h + self.conv_sc(F.interpolate(x, scale_factor=2))


class DeepGBlock(nn.Module):
    """BigGAN-deep's bottleneck up-block (1x1 down to in/4 channels, two 3x3, 1x1 up); the shortcut drops
    channels beyond ``out_ch`` and upsamples as the branch does."""

    def __init__(self, in_ch: int, out_ch: int, upsample: bool, norm, layers: Layers):
        super().__init__()
        if out_ch > in_ch:
            raise ConfigError(f"a BigGAN-deep G block cannot widen its input ({in_ch} to {out_ch} channels)")
        hidden = in_ch // 4
        self.out_ch, self.upsample = out_ch, upsample
        self.bn1, self.bn2, self.bn3, self.bn4 = norm(in_ch), norm(hidden), norm(hidden), norm(hidden)
        self.conv1, self.conv4 = layers.conv1(in_ch, hidden), layers.conv1(hidden, out_ch)
        self.conv2, self.conv3 = layers.conv3(hidden, hidden), layers.conv3(hidden, hidden)

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        h = F.relu(self.bn2(self.conv1(F.relu(self.bn1(x, condition))), condition))
        x = x[:, :self.out_ch]
        if self.upsample:
            h, x = F.interpolate(h, scale_factor=2), F.interpolate(x, scale_factor=2)
        h = self.conv3(F.relu(self.bn3(self.conv2(h), condition)))
        return self.conv4(F.relu(self.bn4(h, condition))) + x


class DBlock(nn.Module):
    """BigGAN's down-block: [ReLU], conv3, ReLU, conv3, [pool], plus a 1x1 conv shortcut where the channels
    change or the block pools. The first block (``preactivation=False``) pools before its shortcut conv."""

    def __init__(self, in_ch: int, out_ch: int, downsample: bool, preactivation: bool, layers: Layers):
        super().__init__()
        self.downsample, self.preactivation = downsample, preactivation
        self.conv1, self.conv2 = layers.conv3(in_ch, out_ch), layers.conv3(out_ch, out_ch)
        self.conv_sc = layers.conv1(in_ch, out_ch) if in_ch != out_ch or downsample else None

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.downsample else x

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv_sc is None:
            return x
        # Pooling and a 1x1 conv commute; the reference's order is kept so that its weights give its floats.
        return self._pool(self.conv_sc(x)) if self.preactivation else self.conv_sc(self._pool(x))

    def forward(self, x: torch.Tensor, condition=None) -> torch.Tensor:
        h = F.relu(x) if self.preactivation else x
        h = self._pool(self.conv2(F.relu(self.conv1(h))))
        return h + self.shortcut(x)


class DeepDBlock(nn.Module):
    """BigGAN-deep's bottleneck down-block; the shortcut pools and appends ``out - in`` channels from a 1x1 conv."""

    def __init__(self, in_ch: int, out_ch: int, downsample: bool, layers: Layers):
        super().__init__()
        if out_ch < in_ch:
            raise ConfigError(f"a BigGAN-deep D block cannot narrow its input ({in_ch} to {out_ch} channels)")
        hidden = out_ch // 4
        self.downsample = downsample
        self.conv1, self.conv4 = layers.conv1(in_ch, hidden), layers.conv1(hidden, out_ch)
        self.conv2, self.conv3 = layers.conv3(hidden, hidden), layers.conv3(hidden, hidden)
        self.conv_sc = layers.conv1(in_ch, out_ch - in_ch) if out_ch != in_ch else None

    def forward(self, x: torch.Tensor, condition=None) -> torch.Tensor:
        h = F.relu(self.conv3(F.relu(self.conv2(F.relu(self.conv1(F.relu(x)))))))
        if self.downsample:
            h, x = F.avg_pool2d(h, 2), F.avg_pool2d(x, 2)
        if self.conv_sc is not None:
            x = torch.cat([x, self.conv_sc(x)], dim=1)
        return self.conv4(h) + x


def _attention(channels: int, size: int, layers: Layers, arch: str) -> SelfAttention:
    if channels % 8:
        raise ConfigError(f"{arch}: self-attention at {size}x{size} needs a multiple of 8 channels, and the block "
                          f"there has {channels}; raise width or remove {size} from settings.attention.")
    return SelfAttention(channels, conv=layers.conv)


def _stages(blocks: list[list[nn.Module]]) -> nn.ModuleList:
    """Blocks grouped per resolution as BigGAN-PyTorch nests them (``blocks.<stage>.<block>``)."""
    return nn.ModuleList(nn.ModuleList(stage) for stage in blocks)


class BigGANGenerator(nn.Module):
    """G(z, y): BigGAN (``deep=False``) or BigGAN-deep; ``y`` are labels or class mixtures (N, classes)."""

    def __init__(self, cfg, latent_dim: int, shape: tuple[int, ...], num_classes: int, deep: bool):
        super().__init__()
        arch = cfg.arch
        resolution = _resolution(shape, arch, G_CHANNELS)
        settings, layers = settings_of(cfg), Layers(cfg)
        channels = [m * cfg.width for m in G_CHANNELS[resolution]]
        num_blocks = len(channels) - 1
        shared_dim = settings.shared_dim if num_classes else 0
        if deep and num_classes and not shared_dim:
            raise ConfigError(f"{arch} needs a shared class embedding when conditional: set g.settings.shared_dim "
                              "(BigGAN-deep: 128).")
        if deep and not settings.hierarchical:
            raise ConfigError(f"{arch} feeds [class embedding, z] to its input and to every block; "
                              "g.settings.hierarchical=false is a BigGAN setting.")
        hierarchical = settings.hierarchical and not deep
        if hierarchical and num_classes and not shared_dim:
            raise ConfigError(f"{arch}: a hierarchical z joins each chunk to the shared class embedding; set "
                              "g.settings.shared_dim > 0 or g.settings.hierarchical=false.")
        if hierarchical and latent_dim % (num_blocks + 1):
            near = latent_dim // (num_blocks + 1) * (num_blocks + 1)
            raise ConfigError(f"{arch} at {resolution}x{resolution} splits z into {num_blocks + 1} equal chunks (one "
                              f"for the input, one per block): latent.dim must be a multiple of {num_blocks + 1}, "
                              f"e.g. {near or num_blocks + 1} or {near + num_blocks + 1}, not {latent_dim}.")
        self.deep, self.hierarchical, self.num_classes = deep, hierarchical, num_classes
        self.chunk = latent_dim // (num_blocks + 1) if hierarchical else 0
        # G's class embedding is never spectrally normalised (BigGAN-PyTorch: SN on it "cripples G").
        self.shared = nn.Embedding(num_classes, shared_dim) if shared_dim else None
        if deep:
            condition_dim = input_dim = shared_dim + latent_dim
        else:
            condition_dim = shared_dim + self.chunk
            input_dim = self.chunk or latent_dim
        per_class = num_classes if not shared_dim else 0
        norm = functools.partial(generator_norm, condition_dim=condition_dim, num_classes=per_class,
                                 eps=settings.bn_eps, layers=layers)
        self.linear = layers.linear(input_dim, channels[0] * BOTTOM * BOTTOM)
        stages = []  # BigGAN-deep's G nests each block alone, as BigGAN-PyTorch does (its D does not)
        for index, (c_in, c_out) in enumerate(zip(channels, channels[1:])):
            if deep:
                stages += [[DeepGBlock(c_in, c_out if j == cfg.depth - 1 else c_in, j == cfg.depth - 1, norm, layers)]
                           for j in range(cfg.depth)]
            else:
                stages.append([GBlock(c_in, c_out, norm, layers)])
            if BOTTOM << (index + 1) in settings.attention:
                stages[-1].append(_attention(c_out, BOTTOM << (index + 1), layers, cfg.arch))
        self.blocks = _stages(stages)
        self.output_layer = nn.Sequential(nn.BatchNorm2d(channels[-1], eps=1e-5), nn.ReLU(),
                                          layers.conv3(channels[-1], shape[0]))
        initialize_(self, settings.init)

    def conditions(self, z: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, list]:
        """G's input and each stage's condition: chunks of z joined to the shared embedding (hierarchical),
        [embedding, z] (BigGAN-deep), the embedding alone, or the labels for per-class norms."""
        if self.num_classes and y is None:
            raise ValueError("this network is class-conditional: pass the labels y")
        embedded = class_embedding(self.shared, y) if self.shared is not None else None
        stages = len(self.blocks)
        if self.deep:
            joined = torch.cat([embedded, z], dim=1) if embedded is not None else z
            return joined, [joined] * stages
        if self.hierarchical:
            chunks = z.split(self.chunk, dim=1)
            rest = [torch.cat([embedded, c], dim=1) if embedded is not None else c for c in chunks[1:]]
            return chunks[0], rest
        return z, [embedded if embedded is not None else y] * stages

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h, conditions = self.conditions(z, y)
        h = self.linear(h).view(len(z), -1, BOTTOM, BOTTOM)
        for stage, condition in zip(self.blocks, conditions):
            for block in stage:
                h = block(h, condition)
        return torch.tanh(self.output_layer(h))


class BigGANDiscriminator(nn.Module):
    """D(x, y): BigGAN or BigGAN-deep blocks, ReLU, sum pool, linear plus the projection of y's embedding."""

    def __init__(self, cfg, shape: tuple[int, ...], num_classes: int, deep: bool):
        super().__init__()
        resolution = _resolution(shape, cfg.arch, D_BLOCKS)
        settings, layers = settings_of(cfg), Layers(cfg)
        stages, size = [], resolution
        if deep:
            first, blocks = DEEP_D_BLOCKS[resolution]
            self.input_conv = layers.conv3(shape[0], first * cfg.width)
            c_in = first * cfg.width
        else:
            blocks, c_in = D_BLOCKS[resolution], shape[0]
        for index, (multiple, downsample) in enumerate(blocks):
            c_out = multiple * cfg.width
            if deep:
                stage = [DeepDBlock(c_in if j == 0 else c_out, c_out, downsample and j == 0, layers)
                         for j in range(cfg.depth)]
            else:
                stage = [DBlock(c_in, c_out, downsample, preactivation=index > 0, layers=layers)]
            size //= 2 if downsample else 1
            if size in settings.attention:
                stage.append(_attention(c_out, size, layers, cfg.arch))
            stages.append(stage)
            c_in = c_out
        self.deep = deep
        self.blocks = _stages(stages)
        self.linear = layers.linear(c_in, 1)
        self.embed = layers.embedding(num_classes, c_in) if num_classes else None
        initialize_(self, settings.init)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.input_conv(x) if self.deep else x
        for stage in self.blocks:
            for block in stage:
                h = block(h)
        h = F.relu(h).sum(dim=(2, 3))
        out = self.linear(h).view(len(x))
        if self.embed is None:
            return out
        if y is None:
            raise ValueError("this network is class-conditional: pass the labels y")
        return out + (self.embed(y) * h).sum(dim=1)


def generator(cfg, latent_dim: int, shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return BigGANGenerator(cfg, latent_dim, shape, num_classes, deep=False)


def discriminator(cfg, shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return BigGANDiscriminator(cfg, shape, num_classes, deep=False)


def deep_generator(cfg, latent_dim: int, shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return BigGANGenerator(cfg, latent_dim, shape, num_classes, deep=True)


def deep_discriminator(cfg, shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return BigGANDiscriminator(cfg, shape, num_classes, deep=True)
