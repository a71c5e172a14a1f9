"""Building blocks shared by every architecture, chosen by name when a network is built.

A normalization is a ``Normalization``: how to make each kind of weight layer (plain, or
reparametrised as in spectral and weight normalization), which feature normalization follows a
hidden weight layer (batch, layer, instance) and which activation comes after that. Architectures
ask ``NORMS[name]`` for all three and never branch on the name, so every normalization works with
every architecture that allows it.

The six entries follow the GAN Landscape study (Kurach et al., 2019): none, batch, layer, instance,
spectral (Miyato et al., 2018) and weight normalization as Xiang & Li (2017) apply it to GANs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ganscape.errors import ConfigError


def memory_format_of(x: torch.Tensor) -> torch.memory_format:
    """channels_last when ``x`` is stored NHWC (and not also NCHW, as 1-channel maps are), else contiguous."""
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


def _forward_with_weight(layer: nn.Module, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Run ``layer``'s own operation (linear, convolution or transposed convolution) with ``weight``."""
    if isinstance(layer, nn.Linear):
        return F.linear(x, weight, layer.bias)
    if isinstance(layer, nn.Embedding):
        return x.to(weight.dtype) @ weight if x.is_floating_point() else F.embedding(x, weight)
    if isinstance(layer, nn.ConvTranspose2d):
        return F.conv_transpose2d(x, weight, layer.bias, layer.stride, layer.padding, layer.output_padding,
                                  layer.groups, layer.dilation)
    return layer._conv_forward(x, weight, layer.bias)


class _ReparametrizedWeight:
    """Mixin for a torch weight layer whose forward uses ``normalized_weight()`` instead of ``weight``.

    The raw ``weight`` stays the trained parameter under its usual name (so optimizers, penalties
    and checkpoints see an ordinary layer); only the forward pass reads it through the subclass's
    reparametrisation, ``normalized_weight()``.
    """

    weight: nn.Parameter

    @property
    def out_dim(self) -> int:
        """The weight dimension that indexes output units: 1 for a transposed convolution, whose
        weight is (in, out, kh, kw), otherwise 0."""
        return 1 if getattr(self, "transposed", False) else 0

    def weight_matrix(self) -> torch.Tensor:
        """The weight as an (out_features, fan_in) matrix: row i holds every tap feeding output unit i."""
        return self.weight.movedim(self.out_dim, 0).flatten(1)

    def per_output(self, values: torch.Tensor) -> torch.Tensor:
        """Reshape one value per output unit so that it broadcasts against ``weight``."""
        shape = [1] * self.weight.dim()
        shape[self.out_dim] = -1
        return values.view(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _forward_with_weight(self, x, self.normalized_weight())


class SpectralNorm(_ReparametrizedWeight):
    """Spectral normalization (Miyato et al., 2018): the layer uses W / sigma(W).

    sigma(W) is the largest singular value of the weight matrix W (out_features x fan_in), so each
    layer is 1-Lipschitz in that matrix norm and D's Lipschitz constant is bounded. sigma is
    estimated by power iteration on a persistent left singular vector ``u`` (a buffer, so it is
    saved in checkpoints and resumes exactly). Every forward runs Algorithm 1 of the paper from the
    stored ``u`` (``n_power_iterations`` times, without gradient)::

        v = normalize(W^T u),  u' = normalize(W v),  sigma = u'^T W v

    and in training mode stores u' as the new ``u``; in eval mode ``u`` is left unchanged. This is
    also what compare_gan and BigGAN-PyTorch compute, in both modes, so their published weights give
    the same outputs here. Gradients flow through W only, with u' and v held constant, as in the
    paper. One iteration per step suffices because W changes little between steps, so ``u`` stays
    close to the top vector. ``eps`` guards the normalisations against a zero vector (BigGAN: 1e-6).
    """

    def __init__(self, *args, n_power_iterations: int = 1, eps: float = 1e-12, **kwargs):
        super().__init__(*args, **kwargs)
        self.n_power_iterations = n_power_iterations
        self.eps = eps
        u = self.weight.new_empty(self.weight.shape[self.out_dim]).normal_()
        self.register_buffer("u", F.normalize(u, dim=0, eps=self.eps))

    @torch.no_grad()
    def _singular_vectors(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(u', v) for sigma = u'^T W v, after storing u' as ``u`` in training mode.

        ``u'`` is a new tensor: the next forward overwrites the buffer in place, which must not
        disturb a graph that still needs this step's value for its backward pass.
        """
        u = self.u
        for _ in range(self.n_power_iterations):
            v = F.normalize(w.mT @ u, dim=0, eps=self.eps)
            u = F.normalize(w @ v, dim=0, eps=self.eps)
        if self.training:
            self.u.copy_(u)
        return u, v

    def normalized_weight(self) -> torch.Tensor:
        with torch.autocast(self.weight.device.type, enabled=False):  # sigma in the weight's precision
            w = self.weight_matrix()
            u, v = self._singular_vectors(w.detach())
            sigma = torch.dot(u, w @ v)
            return self.weight / sigma

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, sn_eps={self.eps:g}"


class SNLinear(SpectralNorm, nn.Linear):
    """nn.Linear with spectral normalization (parameters ``weight`` and ``bias``, buffer ``u``)."""


class SNConv2d(SpectralNorm, nn.Conv2d):
    """nn.Conv2d with spectral normalization of the weight reshaped to (out_ch, in_ch * kh * kw)."""


class SNConvTranspose2d(SpectralNorm, nn.ConvTranspose2d):
    """nn.ConvTranspose2d with spectral normalization of the weight as (out_ch, in_ch * kh * kw)."""


class SNEmbedding(SpectralNorm, nn.Embedding):
    """nn.Embedding with spectral normalization of its (classes, dim) table, as BigGAN's projection D uses.
    Float inputs (N, classes) are class mixtures: their weighted sum of rows."""


class WeightNorm(_ReparametrizedWeight):
    """Weight normalization as Xiang & Li (2017) use it in GANs: every output unit i computes

        strict (``affine=False``):  y_i = w_i^T x / ||w_i||
        affine (``affine=True``):   y_i = gamma_i * w_i^T x / ||w_i|| + beta_i

    where w_i is the row of the weight matrix (fan_in = in_ch * kh * kw taps) feeding unit i.
    Hidden layers are strict: they have no gain and no bias, because the translated ReLU that
    follows (``TranslatedReLU``) supplies the learnable offset and the next layer's normalization
    makes any gain redundant. Only a network's last layer is affine (gamma starts at 1, beta at 0),
    to set the scale and offset of the output.

    A transposed convolution with stride (s_h, s_w) multiplies its output by sqrt(s_h * s_w): each
    output pixel receives only 1 / (s_h * s_w) of the kernel taps, so without the factor the
    response of a unit-norm filter would shrink by that fraction of its energy (the authors' code
    does the same).

    ||w_i|| is clamped below at ``eps`` so that a unit whose weights collapse to zero does not
    divide by zero; above that the output is exactly invariant to rescaling w_i.

    The output does not depend on ||w_i||, but the size of an optimizer's step relative to w_i
    does (with RMSProp the angular step scales with lr / ||w_i||), so the initialisation sets the
    effective learning rate. The weights start as in the authors' code (``reset_weight``).
    """

    eps = 1e-6

    def __init__(self, *args, affine: bool = False, **kwargs):
        super().__init__(*args, bias=affine, **kwargs)
        self.affine = affine
        if affine:
            nn.init.zeros_(self.bias)
            self.gain = nn.Parameter(torch.ones_like(self.bias))
        else:
            self.register_parameter("gain", None)
        self.tap_scale = math.sqrt(math.prod(self.stride)) if getattr(self, "transposed", False) else 1.0
        self.reset_weight()

    @torch.no_grad()
    def reset_weight(self, init_factor: float = 1.0) -> None:
        """Weights ~ U(-b, b) with b = init_factor / sqrt(fan_in), fan_in = in_ch * kh * kw (in_features).

        As the authors' released code (GAN-weight-norm: ``torch/modules/WeightNormalized*.lua`` keep
        Torch's default U(+-1 / sqrt(fan_in)), also for transposed convolutions, where fan_in counts
        input channels; ``torch/model.lua`` starts G's first, linear layer with initWeightFactor 0.01).
        """
        bound = init_factor / math.sqrt(self.weight_matrix().shape[1])
        self.weight.uniform_(-bound, bound)

    def normalized_weight(self) -> torch.Tensor:
        scale = self.tap_scale / self.weight_matrix().norm(dim=1).clamp_min(self.eps)
        if self.gain is not None:
            scale = scale * self.gain
        return self.weight * self.per_output(scale)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, affine={self.affine}"


class WNLinear(WeightNorm, nn.Linear):
    """nn.Linear with Xiang & Li weight normalization (strict, or affine with ``affine=True``)."""


class WNConv2d(WeightNorm, nn.Conv2d):
    """nn.Conv2d with Xiang & Li weight normalization (strict, or affine with ``affine=True``)."""


class WNConvTranspose2d(WeightNorm, nn.ConvTranspose2d):
    """nn.ConvTranspose2d with Xiang & Li weight normalization and the sqrt(s_h * s_w) stride factor."""


class TranslatedReLU(nn.Module):
    """Translated ReLU of Xiang & Li (2017), with a learnable threshold alpha per channel (dim 1).

    TReLU  (``learnable_slope=False``): y = max(x, alpha) = relu(x - alpha) + alpha
    TPReLU (``learnable_slope=True``):  y = PReLU_a(x - alpha) + alpha, with a per-channel slope a

    Shifting the kink to alpha replaces the bias that strictly weight-normalized layers drop. alpha
    starts at 0 and a at 0.25 (PReLU's default). a must stay in [0, 1] so that the unit remains a
    monotone, non-expanding rectifier; ``constrain_()`` restores that after each optimizer step.
    """

    def __init__(self, num_features: int, learnable_slope: bool):
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(num_features))
        if learnable_slope:
            self.slope = nn.Parameter(torch.full((num_features,), 0.25))
        else:
            self.register_parameter("slope", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha.view(-1, *[1] * (x.dim() - 2))
        shifted = x - alpha
        rectified = F.relu(shifted) if self.slope is None else F.prelu(shifted, self.slope)
        return rectified + alpha

    @torch.no_grad()
    def constrain_(self) -> None:
        """Clamp the slope a into [0, 1] in place (nothing to do for TReLU)."""
        if self.slope is not None:
            self.slope.clamp_(0.0, 1.0)

    def extra_repr(self) -> str:
        return f"{len(self.alpha)}, learnable_slope={self.slope is not None}"


def apply_constraints(model: nn.Module) -> None:
    """Call constrain_() on every submodule that defines it (after an optimizer step)."""
    for module in model.modules():
        constrain = getattr(module, "constrain_", None)
        if callable(constrain):
            constrain()


def _layer_factories(linear: type, conv: type, conv_transpose: type, last_kwargs: Callable[[bool], dict]):
    """The three layer factories of a normalization; ``last_kwargs(last)`` adds constructor options."""

    def make_linear(in_features: int, out_features: int, last: bool = False) -> nn.Module:
        return linear(in_features, out_features, **last_kwargs(last))

    def make_conv(in_ch: int, out_ch: int, kernel_size, stride=1, padding=0, last: bool = False) -> nn.Module:
        return conv(in_ch, out_ch, kernel_size, stride, padding, **last_kwargs(last))

    def make_conv_transpose(in_ch: int, out_ch: int, kernel_size, stride=1, padding=0,
                            last: bool = False) -> nn.Module:
        return conv_transpose(in_ch, out_ch, kernel_size, stride, padding, **last_kwargs(last))

    return {"linear": make_linear, "conv": make_conv, "conv_transpose": make_conv_transpose}


def _same_for_last(last: bool) -> dict:
    return {}


def _affine_if_last(last: bool) -> dict:
    return {"affine": last}


PLAIN_LAYERS = _layer_factories(nn.Linear, nn.Conv2d, nn.ConvTranspose2d, _same_for_last)
SPECTRAL_LAYERS = _layer_factories(SNLinear, SNConv2d, SNConvTranspose2d, _same_for_last)
WEIGHT_NORM_LAYERS = _layer_factories(WNLinear, WNConv2d, WNConvTranspose2d, _affine_if_last)


def _check_spatial_dims(spatial_dims: int) -> None:
    if spatial_dims not in (0, 2):
        raise ValueError(f"feature norms support vectors (0) or 2-D feature maps (2), not {spatial_dims} spatial dims")


def no_feature_norm(num_features: int, spatial_dims: int) -> nn.Module:
    _check_spatial_dims(spatial_dims)
    return nn.Identity()


def batch_norm(num_features: int, spatial_dims: int) -> nn.Module:
    """Normalise each channel over the batch (and H, W): BatchNorm1d for vectors, 2d for maps."""
    _check_spatial_dims(spatial_dims)
    norm = nn.BatchNorm1d if spatial_dims == 0 else nn.BatchNorm2d
    return norm(num_features, eps=1e-5, momentum=0.1)


def layer_norm(num_features: int, spatial_dims: int) -> nn.Module:
    """Normalise each sample over all its features, then apply a per-channel gain and bias.

    For maps the statistics cover (C, H, W) while gain and bias are per channel, as in TensorFlow's
    layer_norm used by the GAN Landscape study; GroupNorm with a single group computes exactly that
    (nn.LayerNorm((C, H, W)) would instead learn a gain per pixel and fix the image size).
    """
    _check_spatial_dims(spatial_dims)
    return nn.LayerNorm(num_features) if spatial_dims == 0 else nn.GroupNorm(1, num_features)


def instance_norm(num_features: int, spatial_dims: int) -> nn.Module:
    """Normalise each channel of each sample over (H, W), then a per-channel gain and bias."""
    _check_spatial_dims(spatial_dims)
    if spatial_dims == 0:
        raise ConfigError("instance normalization needs spatial feature maps: it normalises each channel of "
                          "each sample over H x W, and this architecture has none (e.g. mlp works on vectors). "
                          "Use layer or batch normalization instead.")
    return nn.InstanceNorm2d(num_features, affine=True)


def default_activation(num_features: int, default_factory: Callable[[], nn.Module]) -> nn.Module:
    return default_factory()


def translated_prelu(num_features: int, default_factory: Callable[[], nn.Module]) -> nn.Module:
    """TPReLU in place of the architecture's activation: it restores the bias that strict WN drops."""
    return TranslatedReLU(num_features, learnable_slope=True)


@dataclass(frozen=True)
class Normalization:
    name: str
    description: str
    for_generator: bool  # allowed in G (none, batch, spectral, weight); D accepts every normalization
    linear: Callable[..., nn.Module]  # (in_features, out_features, last=False)
    conv: Callable[..., nn.Module]  # (in_ch, out_ch, kernel_size, stride=1, padding=0, last=False)
    conv_transpose: Callable[..., nn.Module]  # (in_ch, out_ch, kernel_size, stride=1, padding=0, last=False)
    feature_norm: Callable[[int, int], nn.Module]  # (num_features, spatial_dims: 0 for (N, C), 2 for (N, C, H, W))
    activation: Callable[[int, Callable[[], nn.Module]], nn.Module]  # (num_features, default_factory)


NORMS: dict[str, Normalization] = {
    norm.name: norm
    for norm in [
        Normalization("none", "no normalization", True, **PLAIN_LAYERS,
                      feature_norm=no_feature_norm, activation=default_activation),
        Normalization("batch", "batch normalization after each hidden layer", True, **PLAIN_LAYERS,
                      feature_norm=batch_norm, activation=default_activation),
        Normalization("layer", "layer normalization after each hidden layer (D only)", False, **PLAIN_LAYERS,
                      feature_norm=layer_norm, activation=default_activation),
        Normalization("instance", "instance normalization after each hidden conv layer (D only)", False,
                      **PLAIN_LAYERS, feature_norm=instance_norm, activation=default_activation),
        Normalization("spectral", "spectral normalization of every weight layer (in G too, as in BigGAN)", True,
                      **SPECTRAL_LAYERS, feature_norm=no_feature_norm, activation=default_activation),
        Normalization("weight", "Xiang & Li weight normalization with translated PReLUs", True,
                      **WEIGHT_NORM_LAYERS, feature_norm=no_feature_norm, activation=translated_prelu),
    ]
}
