"""The GAN_stability network families (``ganscape.nets.gan_stability``): sizes, parameter counts against the
reference's configs, the conditional output, the label embedding, the normalizations they take.

The reference's parameter counts are in ``tests/data/gan_stability/reference_configs.json``, counted by
LMescheder/GAN_stability's own classes as its configs build them (see the folder's README).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from ganscape.config import load_config
from ganscape.errors import ConfigError
from ganscape.nets import ARCHITECTURES, ModelSpec, build_discriminator, build_generator, count_parameters
from ganscape.nets.gan_stability import GANStabilitySettings, ResnetBlock
from ganscape.nets.layers import NORMS, TranslatedReLU, WNConv2d

FIXTURES = Path(__file__).parent / "data" / "gan_stability"
REFERENCE_CONFIGS = json.loads((FIXTURES / "reference_configs.json").read_text())
FAMILIES = ("gs_resnet", "gs_resnet2", "gs_resnet3", "gs_resnet4")
# sizes run on the CPU (tiny widths), and larger ones built and run on the meta device (shapes only)
SIDES = {"gs_resnet": ([8, 32], [16, 256, 1024]), "gs_resnet2": ([32], [96, 512]),
         "gs_resnet3": ([64], [192, 1024]), "gs_resnet4": ([64], [128, 256])}
LATENT = 8


def config(arch: str, width: int = 1, nfilter_max: int = 4, embed_size: int = 3, norm: str = "none", latent=LATENT):
    return load_config(None, [f"{side}.{key}" for side in "gd" for key in (
        f"arch={arch}", f"width={width}", f"norm={norm}", f"settings.nfilter_max={nfilter_max}",
        f"settings.embed_size={embed_size}")] + [f"latent.dim={latent}"])


def networks(arch: str, side: int, classes: int = 0, channels: int = 3, **settings):
    cfg = config(arch, **settings)
    spec = ModelSpec((channels, side, side), classes, latent_dim=cfg.latent.dim)
    return build_generator(cfg.g, spec), build_discriminator(cfg.d, spec)


def reference_config(name: str):
    """The ganscape config and spec that state a reference config's networks (from the fixture's settings)."""
    entry = REFERENCE_CONFIGS[name]
    overrides = [f"latent.dim={entry['z_dim']}"]
    for key, side in (("generator", "g"), ("discriminator", "d")):
        kwargs = entry[key]["kwargs"]
        overrides += [f"{side}.arch=gs_{entry[key]['family']}", f"{side}.width={kwargs['nfilter']}",
                      f"{side}.settings.embed_size={kwargs['embed_size']}"]
        overrides += [f"{side}.settings.nfilter_max={kwargs['nfilter_max']}"] if "nfilter_max" in kwargs else []
    classes = entry["nlabels"] if entry["nlabels"] > 1 else 0  # nlabels 1: the reference's unconditional nets
    return load_config(None, overrides), ModelSpec((3, entry["size"], entry["size"]), classes,
                                                   latent_dim=entry["z_dim"])


def test_the_families_are_registered_with_their_settings():
    cfg = config("gs_resnet", nfilter_max=64, embed_size=1)
    assert isinstance(cfg.g.settings, GANStabilitySettings) and cfg.g.settings.nfilter_max == 64
    assert cfg.d.settings.embed_size == 1
    assert all(ARCHITECTURES[arch].settings is GANStabilitySettings for arch in FAMILIES)


@pytest.mark.parametrize("name", REFERENCE_CONFIGS)
def test_parameter_counts_equal_the_reference_configs(name):
    """count_parameters of G and D equal what GAN_stability's classes count for each of its configs (CelebA-HQ
    1024 px, LSUN 256 px, ImageNet 128 px conditional, the pretrained configs' resnet3/resnet4)."""
    cfg, spec = reference_config(name)
    with torch.device("meta"):
        G, D = build_generator(cfg.g, spec), build_discriminator(cfg.d, spec)
    entry = REFERENCE_CONFIGS[name]
    assert (count_parameters(G), count_parameters(D)) == (entry["generator"]["parameters"],
                                                          entry["discriminator"]["parameters"])


@pytest.mark.parametrize("arch", FAMILIES)
def test_each_family_runs_at_each_supported_size(arch):
    """At small sides a conditional G gives images of the data's shape (1 or 3 channels) in [-1, 1] and D one
    logit each, and a backward pass reaches every parameter; at large sides (meta device) the shapes are right,
    without and with classes in turn."""
    small, large = SIDES[arch]
    y = torch.tensor([0, 2])
    for side in small:
        channels = 1 if side == small[0] else 3
        G, D = networks(arch, side, classes=3, channels=channels)
        x = G(torch.randn(2, LATENT), y)
        assert x.shape == (2, channels, side, side) and x.abs().max() <= 1
        D(x, y).sum().backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in [*G.parameters(), *D.parameters()])
    with torch.device("meta"):
        for i, side in enumerate(large):
            labels = y if i % 2 else None  # unconditional and conditional in turn
            G, D = networks(arch, side, 3 if i % 2 else 0)
            x = G(torch.randn(2, LATENT), labels)
            assert x.shape == (2, 3, side, side) and D(x, labels).shape == (2,)


@pytest.mark.parametrize("arch,shape,sides", [
    ("gs_resnet", (3, 12, 12), r"4 \* 2\^n"), ("gs_resnet", (3, 4, 4), r"4 \* 2\^n"),
    ("gs_resnet", (3, 16, 32), r"4 \* 2\^n"), ("gs_resnet2", (3, 48, 48), "multiples of 32"),
    ("gs_resnet3", (3, 96, 96), "multiples of 64"), ("gs_resnet4", (3, 32, 32), "multiples of 64"),
    ("gs_resnet2", (2,), "multiples of 32")])
def test_unsupported_sizes_are_config_errors_naming_the_supported_ones(arch, shape, sides):
    cfg = config(arch)
    with pytest.raises(ConfigError, match=rf"{arch} makes square images with sides {sides}.*set data.resolution"):
        build_discriminator(cfg.d, ModelSpec(shape))
    with pytest.raises(ConfigError, match=rf"{arch} makes square images"):
        build_generator(cfg.g, ModelSpec(shape, latent_dim=LATENT))


def test_gs_resnet_needs_nfilter_at_most_nfilter_max():
    with pytest.raises(ConfigError, match=r"width \(the reference's nfilter\) 8 exceeds settings.nfilter_max 4"):
        networks("gs_resnet", 16, width=8, nfilter_max=4)


def test_gs_resnet_channels_double_per_halving_up_to_nfilter_max():
    """resnet.py's schedule at 32 px, nf 2, nfilter_max 8: D blocks 2->2, 2->4, 4->8, 8->8 (nf * 2^k capped),
    G the reverse, ending with a block nf -> nf; each block's hidden width min(in, out)."""
    G, D = networks("gs_resnet", 32, width=2, nfilter_max=8)
    assert [(b.conv_0.in_channels, b.conv_1.out_channels) for b in D.blocks] == [(2, 2), (2, 4), (4, 8), (8, 8)]
    assert [(b.conv_0.in_channels, b.conv_1.out_channels) for b in G.blocks] == [(8, 8), (8, 4), (4, 2), (2, 2)]
    assert [b.conv_0.out_channels for b in G.blocks] == [8, 4, 2, 2]
    assert G.fc.out_features == 8 * 4 * 4 and D.fc.in_features == 8 * 4 * 4
    assert G.reference_names == ["resnet.0", "resnet.2", "resnet.4", "resnet.6"]


def test_a_block_adds_a_tenth_of_its_residual_to_its_shortcut():
    """block(x) = conv_s(x) + 0.1 * conv_1(lrelu_0.2(conv_0(lrelu_0.2(x)))), computed with F.conv2d."""
    torch.manual_seed(0)
    block = ResnetBlock(3, 5, NORMS["none"])
    x = torch.randn(2, 3, 6, 6)
    residual = F.conv2d(F.leaky_relu(x, 0.2), block.conv_0.weight, block.conv_0.bias, padding=1)
    residual = F.conv2d(F.leaky_relu(residual, 0.2), block.conv_1.weight, block.conv_1.bias, padding=1)
    expected = F.conv2d(x, block.conv_s.weight) + 0.1 * residual
    assert block.conv_s.bias is None and block.conv_0.out_channels == 3
    assert torch.allclose(block(x), expected, atol=1e-6)
    same = ResnetBlock(3, 3, NORMS["none"])
    assert same.conv_s is None and torch.allclose(same(x) - x, 0.1 * same.conv_1(F.leaky_relu(
        same.conv_0(F.leaky_relu(x, 0.2)), 0.2)), atol=1e-6)


@pytest.mark.parametrize("arch", FAMILIES)
def test_conditional_D_gives_the_logit_of_each_samples_label(arch):
    """D(x, y)_i is column y_i of lrelu(features) @ fc.weight^T + fc.bias, computed here from D's features."""
    torch.manual_seed(1)
    side = SIDES[arch][0][0]
    _, D = networks(arch, side, classes=4)
    x = torch.rand(4, 3, side, side) * 2 - 1
    features = D.run_blocks(D.conv_img(x), lambda h: F.avg_pool2d(h, 3, stride=2, padding=1)).flatten(1)
    columns = F.leaky_relu(features, 0.2) @ D.fc.weight.T + D.fc.bias
    assert columns.shape == (4, 4)
    y = torch.tensor([3, 0, 2, 1])
    assert torch.allclose(D(x, y), columns[torch.arange(4), y], atol=1e-6)
    for label in range(4):
        assert torch.allclose(D(x, torch.full((4,), label)), columns[:, label], atol=1e-6)
    with pytest.raises(ValueError, match="pass the labels"):
        D(x)


def test_unconditional_nets_are_the_reference_one_label_nets():
    """num_classes 0: a one-row embedding and one logit column, used whatever labels are given."""
    G, D = networks("gs_resnet2", 32, classes=0, embed_size=1)
    assert G.embedding.weight.shape == (1, 1) and D.fc.out_features == 1
    z, x = torch.randn(2, LATENT), torch.rand(2, 3, 32, 32)
    assert torch.equal(G(z), G(z, torch.tensor([4, 7])))
    assert torch.equal(D(x), D(x, torch.tensor([4, 7])))


@pytest.mark.parametrize("arch,unit", [("gs_resnet", True), ("gs_resnet2", True), ("gs_resnet3", False),
                                       ("gs_resnet4", False)])
def test_the_label_embedding_is_unit_norm_in_resnet_and_resnet2_only(arch, unit):
    """resnet.py and resnet2.py divide G's embedding by its L2 norm, resnet3.py and resnet4.py do not; class
    mixtures (float labels) embed as the weighted sum of their classes' rows."""
    G, _ = networks(arch, SIDES[arch][0][0], classes=3, embed_size=5)
    y = torch.tensor([0, 2])
    rows = G.embedding.weight[y]
    assert torch.allclose(G.embed(y, 2, "cpu"), rows / rows.norm(dim=1, keepdim=True) if unit else rows)
    mixture = torch.tensor([[0.25, 0.0, 0.75], [0.0, 1.0, 0.0]])
    mixed = 0.25 * G.embedding.weight[0] + 0.75 * G.embedding.weight[2]
    expected = torch.stack([mixed, G.embedding.weight[1]])
    assert torch.allclose(G.embed(mixture, 2, "cpu"), expected / expected.norm(dim=1, keepdim=True) if unit
                          else expected, atol=1e-6)


def test_feature_norms_are_refused_and_weight_layers_follow_the_normalization():
    with pytest.raises(ConfigError, match=r"no feature normalization.*norm=batch does not apply"):
        networks("gs_resnet", 16, norm="batch")
    G, D = networks("gs_resnet", 16, norm="weight")
    assert isinstance(G.blocks[0].conv_0, WNConv2d) and isinstance(G.blocks[0].act_0, TranslatedReLU)
    assert G.conv_img.affine and D.fc.affine and not D.blocks[0].conv_0.affine
    G, D = networks("gs_resnet", 16, norm="spectral")
    x = G(torch.randn(2, LATENT))
    assert torch.isfinite(D(x)).all() and hasattr(D.fc, "u")
