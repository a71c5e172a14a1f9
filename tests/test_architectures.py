"""Convolutional architectures: SNDCGAN, the Xiang & Li DCGAN-like nets, the Landscape ResNets and the
weight-normalized ResNet, built through every normalization they allow, with and without classes."""

from itertools import chain
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganscape.errors import ConfigError
from ganscape.nets import ARCHITECTURES, count_parameters, weight_layers
from ganscape.nets.layers import NORMS, SNConv2d, SNLinear, TranslatedReLU, WeightNorm
from ganscape.nets.resnet import DBlock, GBlock, unpool
from ganscape.nets.wn_resnet import WNAddition

LATENT = 16
RESOLUTIONS = {"sndcgan": [32, 64, 128], "dcgan": [32, 64], "resnet_cifar": [32], "resnet19": [128],
               "wn_resnet": [32, 64]}
SMALLEST = {arch: sizes[0] for arch, sizes in RESOLUTIONS.items()}
CASES = [(arch, size) for arch, sizes in RESOLUTIONS.items() for size in sizes]
G_NORMS = [name for name, norm in NORMS.items() if norm.for_generator]
D_NORMS = list(NORMS)


def net_cfg(norm="none", width=4, depth=1):
    return SimpleNamespace(width=width, depth=depth, norm=norm)


def build(arch, size, channels=3, num_classes=0, g_norm="none", d_norm="none", width=4, depth=1, latent=LATENT):
    shape = (channels, size, size)
    G = ARCHITECTURES[arch].generator(net_cfg(g_norm, width, depth), latent, shape, num_classes)
    D = ARCHITECTURES[arch].discriminator(net_cfg(d_norm, width, depth), shape, num_classes)
    return G, D


def labels(num_classes, n=2):
    return torch.arange(n) % num_classes if num_classes else None


def check_forward_backward(G, D, channels, size, num_classes, n=2):
    """G's samples have the image shape and lie in [-1, 1], D gives one logit each, and one backward
    pass through D(G(z)) gives every parameter of both a finite gradient."""
    torch.manual_seed(0)
    y = labels(num_classes, n)
    x = G(torch.randn(n, LATENT), y)
    assert x.shape == (n, channels, size, size)
    assert x.abs().max() <= 1
    logits = D(x, y)
    assert logits.shape == (n,)
    logits.sum().backward()
    for name, p in chain(G.named_parameters(prefix="G"), D.named_parameters(prefix="D")):
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name


# ---------------------------------------------------------------- shapes, ranges, gradients


@pytest.mark.parametrize("num_classes", [0, 10])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("arch,size", CASES)
def test_shapes_range_and_finite_gradients(arch, size, channels, num_classes):
    G, D = build(arch, size, channels, num_classes)
    check_forward_backward(G, D, channels, size, num_classes)


@pytest.mark.parametrize("norm", G_NORMS)
@pytest.mark.parametrize("arch", SMALLEST)
def test_generator_builds_and_trains_with_every_generator_norm(arch, norm):
    G, D = build(arch, SMALLEST[arch], g_norm=norm)
    check_forward_backward(G, D, 3, SMALLEST[arch], 0)


@pytest.mark.parametrize("norm", D_NORMS)
@pytest.mark.parametrize("arch", SMALLEST)
def test_discriminator_builds_and_trains_with_every_norm(arch, norm):
    G, D = build(arch, SMALLEST[arch], d_norm=norm)
    check_forward_backward(G, D, 3, SMALLEST[arch], 0)


@pytest.mark.parametrize("arch", SMALLEST)
def test_weight_norm_nets_use_strict_layers_and_tprelus_with_affine_output_layers(arch):
    channels = 3
    G, D = build(arch, SMALLEST[arch], channels, g_norm="weight", d_norm="weight")
    for net, out_units in ((G, channels), (D, 1)):
        layers = weight_layers(net)
        assert all(isinstance(layer, WeightNorm) for layer in layers)
        affine = [layer for layer in layers if layer.affine]
        assert affine and all(layer.weight.shape[layer.out_dim] == out_units for layer in affine)
        assert not any(isinstance(m, (nn.ReLU, nn.LeakyReLU)) for m in net.modules())
        assert any(isinstance(m, TranslatedReLU) for m in net.modules())
    assert len([layer for layer in weight_layers(D) if layer.affine]) == 1


def test_spectral_sndcgan_discriminator_normalizes_every_weight_layer():
    _, D = build("sndcgan", 32, d_norm="spectral")
    layers = weight_layers(D)
    assert len(layers) == 8
    assert all(isinstance(layer, (SNConv2d, SNLinear)) for layer in layers)
    assert len([key for key in D.state_dict() if key.endswith(".u")]) == 8


# ---------------------------------------------------------------- class conditioning


@pytest.mark.parametrize("arch", SMALLEST)
def test_conditional_nets_depend_on_the_class(arch):
    torch.manual_seed(0)
    G, D = build(arch, SMALLEST[arch], num_classes=5)
    z, x = torch.randn(2, LATENT), torch.rand(2, 3, SMALLEST[arch], SMALLEST[arch]) * 2 - 1
    y0, y1 = torch.tensor([0, 1]), torch.tensor([2, 3])

    def differ(a, b):  # relative: N(0, 0.02) weights make the outputs of an untrained narrow net tiny
        return not torch.allclose(a, b, rtol=1e-3, atol=0.0)

    with torch.no_grad():
        assert differ(G(z, y0), G(z, y1))
        assert differ(D(x, y0), D(x, y1))
    with pytest.raises(ValueError, match="labels"):
        G(z)


def test_projection_adds_the_embedding_dot_the_features():
    torch.manual_seed(0)
    _, D = build("resnet_cifar", 32, num_classes=4)
    _, D0 = build("resnet_cifar", 32)
    D0.load_state_dict({k: v for k, v in D.state_dict().items() if not k.startswith("head.embed")})
    D, D0 = D.double(), D0.double()  # a formula: checked in float64
    x, y = torch.rand(2, 3, 32, 32, dtype=torch.float64) * 2 - 1, torch.tensor([1, 3])
    phi = D.post(D.blocks((x + 1) / 2)).mean(dim=(2, 3))
    with torch.no_grad():
        expected = D0(x) + (D.head.embed.weight[y] * phi).sum(1)
        assert torch.allclose(D(x, y), expected, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- layer and parameter counts


@pytest.mark.parametrize("arch,size,count", [("sndcgan", 32, 8), ("sndcgan", 128, 8), ("resnet_cifar", 32, 13),
                                             ("resnet19", 128, 19)])
def test_discriminator_weight_layer_counts_match_the_landscape_l2_penalty(arch, size, count):
    _, D = build(arch, size)
    assert len(weight_layers(D)) == count


def test_wn_resnet_depth_adds_blocks_per_level():
    # 32x32 has three levels; each level's first block has conv, conv and a 1x1 shortcut conv, every
    # further block two convs, and the full-map conv ends D.
    for depth in (1, 2, 3):
        _, D = build("wn_resnet", 32, depth=depth)
        assert len(weight_layers(D)) == 3 * 3 + 3 * 2 * (depth - 1) + 1


def test_sndcgan_parameter_counts_at_the_landscape_width():
    # w = 64, z in R^128, 32x32x3; G with batch norm (the Landscape G), D without normalization.
    G, D = build("sndcgan", 32, g_norm="batch", d_norm="none", width=64, latent=128)

    def conv(cin, cout, k):  # kernel and bias
        return cin * cout * k * k + cout

    g = ((128 * 4 * 4 * 512 + 4 * 4 * 512) + 2 * 4 * 4 * 512  # linear, batch norm over its 8192 units
         + conv(512, 256, 4) + 2 * 256 + conv(256, 128, 4) + 2 * 128 + conv(128, 64, 4) + 2 * 64
         + conv(64, 3, 3))
    d = (conv(3, 64, 3) + conv(64, 128, 4) + conv(128, 128, 3) + conv(128, 256, 4) + conv(256, 256, 3)
         + conv(256, 512, 4) + conv(512, 512, 3) + (4 * 4 * 512 + 1))
    assert g == 3_828_739 and d == 5_860_865
    assert count_parameters(G) == g
    assert count_parameters(D) == d


def test_resnet_cifar_parameter_counts_at_the_landscape_widths():
    # G width 256 with batch norm, D width 128 without normalization, z in R^128, 32x32x3.
    shape = (3, 32, 32)
    G = ARCHITECTURES["resnet_cifar"].generator(net_cfg("batch", 256), 128, shape, 0)
    D = ARCHITECTURES["resnet_cifar"].discriminator(net_cfg("none", 128), shape, 0)
    conv3 = 256 * 256 * 9 + 256
    g_block = 2 * 256 + conv3 + 2 * 256 + conv3 + conv3  # bn, conv1, bn, conv2, 3x3 shortcut
    g = (128 * 4 * 4 * 256 + 4 * 4 * 256) + 3 * g_block + 2 * 256 + (256 * 3 * 9 + 3)
    first_d_block = (3 * 128 * 9 + 128) + (128 * 128 * 9 + 128) + (3 * 128 * 9 + 128)
    d_block = 3 * (128 * 128 * 9 + 128)
    d = first_d_block + 3 * d_block + (128 + 1)
    assert g == 5_849_603 and d == 1_483_137
    assert count_parameters(G) == g
    assert count_parameters(D) == d


# ---------------------------------------------------------------- Landscape ResNet blocks


def test_unpool_inserts_zeros_and_keeps_values_at_the_top_left():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)
    expected = torch.tensor([[1.0, 0.0, 2.0, 0.0],
                             [0.0, 0.0, 0.0, 0.0],
                             [3.0, 0.0, 4.0, 0.0],
                             [0.0, 0.0, 0.0, 0.0]]).view(1, 1, 4, 4)
    assert torch.equal(unpool(x), expected)


def test_resnet_shortcuts_are_3x3_convs_even_when_channels_stay():
    G, D = build("resnet_cifar", 32, width=8)
    blocks = [m for m in chain(G.modules(), D.modules()) if isinstance(m, (GBlock, DBlock))]
    assert len(blocks) == 7
    same = [b for b in blocks if b.shortcut.in_channels == b.shortcut.out_channels]
    assert len(same) == 6  # all but D's first block, which reads the 3-channel image
    assert all(isinstance(b.shortcut, nn.Conv2d) and b.shortcut.kernel_size == (3, 3) for b in blocks)


def test_resnet_blocks_without_their_residual_branch_are_the_shortcut_conv():
    # With conv2 zeroed a G block is conv3x3(unpool(x)) (not x, not nearest upsampling) and a
    # downsampling D block is avgpool(conv3x3(x)).
    torch.manual_seed(0)
    norm = NORMS["none"]
    x = torch.randn(2, 4, 6, 6, dtype=torch.float64)  # a formula: checked in float64
    for block, expected in (
        (GBlock(4, 4, norm).double(), lambda b: F.conv2d(unpool(x), b.shortcut.weight, b.shortcut.bias, padding=1)),
        (DBlock(4, 4, True, norm).double(), lambda b: F.avg_pool2d(F.conv2d(x, b.shortcut.weight, b.shortcut.bias,
                                                                            padding=1), 2)),
    ):
        with torch.no_grad():
            block.conv2.weight.zero_()
            block.conv2.bias.zero_()
            assert torch.allclose(block(x), expected(block), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- weight-normalized ResNet


def test_wn_addition_starts_as_the_shortcut_and_mixes_with_normalized_weights():
    add = WNAddition(3)
    r, s = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    assert torch.equal(add(r, s), s)
    add(r, s).sum().backward()
    assert add.residual_weight.grad.abs().sum() > 0
    with torch.no_grad():
        add.residual_weight.fill_(3.0)
        add.shortcut_weight.fill_(4.0)
    assert torch.allclose(add(r, s), 0.6 * r + 0.8 * s)
    assert all(p.dim() == 1 for p in add.parameters())  # never taken for kernels by weight penalties


# ---------------------------------------------------------------- size checks


@pytest.mark.parametrize("arch,shape", [("sndcgan", (3, 30, 30)), ("resnet_cifar", (3, 18, 18)),
                                        ("resnet19", (3, 96, 96)), ("dcgan", (3, 4, 4)), ("wn_resnet", (3, 18, 18)),
                                        ("sndcgan", (2,))])
def test_unsupported_sizes_are_config_errors(arch, shape):
    with pytest.raises(ConfigError, match=arch):
        ARCHITECTURES[arch].discriminator(net_cfg(), shape, 0)
