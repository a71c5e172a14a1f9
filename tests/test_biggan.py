"""BigGAN and BigGAN-deep networks (``ganscape.nets.biggan``): sizes, conditioning paths, initialisation.

The parameter counts are the reference implementation's: BigGAN-PyTorch's ``Generator`` and
``Discriminator`` built from the arguments of its launch scripts (``launch_cifar_ema.sh``,
``launch_BigGAN_bs256x8.sh``, ``launch_BigGAN_deep.sh``) by ``tests/data/biggan_pytorch/make_fixtures.py``,
``sum(p.numel() for p in model.parameters())``.
"""

from __future__ import annotations

import math

import pytest
import torch

from float32_error import assert_float32_close, float32_bound
from ganscape.config import load_config
from ganscape.errors import ConfigError
from ganscape.nets import ModelSpec, build_discriminator, build_generator, count_parameters
from ganscape.nets.attention import SelfAttention
from ganscape.nets.layers import SNConv2d, SNEmbedding, SNLinear

# launch script: (overrides, spec, G count, D count), the counts from BigGAN-PyTorch itself
LAUNCH_SCRIPTS = {
    "launch_cifar_ema.sh": (["arch=biggan", "width=64", "biggan.attention=", "biggan.shared_dim=0",
                             "biggan.hierarchical=false", "biggan.init=N02", "biggan.sn_eps=1e-8"],
                            ModelSpec((3, 32, 32), 10, latent_dim=128), 4_304_387, 4_207_361),
    "launch_BigGAN_bs256x8.sh": (["arch=biggan", "width=96"], ModelSpec((3, 128, 128), 1000, latent_dim=120),
                                 70_433_988, 87_982_370),
    "launch_BigGAN_deep.sh": (["arch=biggan_deep", "width=128", "depth=2"],
                              ModelSpec((3, 128, 128), 1000, latent_dim=128), 50_244_484, 34_590_210),
}


def configure(overrides: list[str], d_overrides: list[str] | None = None):
    """An experiment whose g and d both take ``overrides`` (keys without the net prefix), spectral norm."""
    d_overrides = overrides if d_overrides is None else d_overrides
    keys = ([f"g.{o}" for o in ["norm=spectral", *overrides]]
            + [f"d.{o}" for o in ["norm=spectral", *d_overrides] if not o.startswith(("biggan.shared_dim",
                                                                                   "biggan.hierarchical"))])
    return load_config(None, keys)


def networks(overrides: list[str], spec: ModelSpec):
    cfg = configure(overrides)
    return build_generator(cfg.g, spec), build_discriminator(cfg.d, spec)


@pytest.mark.parametrize("script", LAUNCH_SCRIPTS)
def test_parameter_counts_equal_biggan_pytorch_for_its_launch_scripts(script):
    overrides, spec, g_count, d_count = LAUNCH_SCRIPTS[script]
    with torch.device("meta"):  # the 128-pixel nets are large; their sizes need no memory
        G, D = networks(overrides, spec)
    assert (count_parameters(G), count_parameters(D)) == (g_count, d_count)


@pytest.mark.parametrize("arch", ["biggan", "biggan_deep"])
@pytest.mark.parametrize("size,attention", [(32, [16]), (64, []), (64, [16]), (128, [32]), (256, [])])
def test_every_resolution_builds_and_runs_forward_and_backward_conditionally(arch, size, attention):
    width = 2 if size == 256 else 4
    overrides = [f"arch={arch}", f"width={width}", f"biggan.attention={','.join(map(str, attention))}",
                 "biggan.shared_dim=8", "depth=2"]
    slots = {32: 4, 64: 5, 128: 6, 256: 7}[size]
    spec = ModelSpec((3, size, size), 5, latent_dim=2 * slots)
    torch.manual_seed(0)
    G, D = networks(overrides, spec)
    z, y = torch.randn(2, spec.latent_dim), torch.tensor([1, 4])
    x = G(z, y)
    assert x.shape == (2, 3, size, size) and x.abs().max() <= 1
    logits = D(x, y)
    assert logits.shape == (2,)
    logits.sum().backward()
    assert all(p.grad is not None for p in G.parameters() if p.requires_grad and p.dim() > 0)
    blocks = [m for m in [*G.modules(), *D.modules()] if isinstance(m, SelfAttention)]
    assert len(blocks) == (2 if attention else 0)  # one in G, one in D


def attention_resolutions(net, x_or_z, *args) -> list[int]:
    """The spatial sizes at which ``net``'s self-attention blocks run, in order."""
    seen = []
    hooks = [m.register_forward_hook(lambda m, inp, out: seen.append(inp[0].shape[-1]))
             for m in net.modules() if isinstance(m, SelfAttention)]
    net(x_or_z, *args)
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize("arch", ["biggan", "biggan_deep"])
def test_attention_runs_at_the_configured_resolutions_in_g_and_d(arch):
    """Attention at 16 and 32 in a 64-pixel net: in G after the blocks that output 16 and 32 pixels,
    in D after the blocks that output 32 and 16 pixels."""
    spec = ModelSpec((3, 64, 64), 0, latent_dim=20)
    G, D = networks([f"arch={arch}", "width=8", "biggan.attention=16,32"], spec)
    z = torch.randn(2, 20)
    x = G(z)
    assert attention_resolutions(G, z) == [16, 32]
    assert attention_resolutions(D, x) == [32, 16]


def test_hierarchical_z_reaches_every_block_and_each_chunk_only_its_own():
    """z is cut into 1 + blocks chunks: chunk 0 feeds the linear input, chunk k block k. The condition each
    block's batch norms receive is [shared(y), z chunk k] (recorded by a hook), and changing chunk k alters
    no stage before k."""
    spec = ModelSpec((3, 64, 64), 5, latent_dim=20)  # 4 blocks: 5 chunks of 4
    G, _ = networks(["arch=biggan", "width=4", "biggan.shared_dim=6", "biggan.attention="], spec)
    G.eval()
    z, y = torch.randn(3, 20), torch.tensor([0, 2, 4])
    conditions, outputs = [], []
    hooks = [stage[0].bn1.register_forward_hook(lambda m, inp, out: conditions.append(inp[1])) for stage in G.blocks]
    hooks += [stage[-1].register_forward_hook(lambda m, inp, out: outputs.append(out)) for stage in G.blocks]
    G(z, y)
    for k, condition in enumerate(conditions, start=1):
        torch.testing.assert_close(condition, torch.cat([G.shared.weight[y], z[:, 4 * k:4 * k + 4]], dim=1))
    assert G.linear.in_features == 4
    reference = [o.clone() for o in outputs]
    for k in range(5):
        changed = z.clone()
        changed[:, 4 * k:4 * k + 4] += 1.0
        outputs.clear()
        G(changed, y)
        for stage, (new, old) in enumerate(zip(outputs, reference), start=1):
            assert torch.equal(new, old) == (stage < k), (k, stage)
    for h in hooks:
        h.remove()


def test_deep_generator_feeds_embedding_and_whole_z_to_input_and_every_block():
    spec = ModelSpec((3, 32, 32), 5, latent_dim=12)
    G, _ = networks(["arch=biggan_deep", "width=8", "depth=2", "biggan.shared_dim=8", "biggan.attention="], spec)
    z, y = torch.randn(3, 12), torch.tensor([0, 2, 4])
    seen = []
    hooks = [G.linear.register_forward_hook(lambda m, inp, out: seen.append(inp[0]))]
    hooks += [block.bn3.register_forward_hook(lambda m, inp, out: seen.append(inp[1]))
              for stage in G.blocks for block in stage]
    G(z, y)
    expected = torch.cat([G.shared.weight[y], z], dim=1)
    assert len(seen) == 1 + 3 * 2
    for got in seen:
        torch.testing.assert_close(got, expected)


@pytest.mark.usefixtures("float64")  # a formula: checked in float64
def test_per_class_norms_without_shared_embedding_take_the_labels():
    """BigGAN's CIFAR setting: every conditional batch norm has its own class embeddings for gain and bias."""
    spec = ModelSpec((3, 32, 32), 10, latent_dim=16)
    G, _ = networks(["arch=biggan", "width=4", "biggan.shared_dim=0", "biggan.hierarchical=false",
                     "biggan.attention="], spec)
    assert G.shared is None and G.linear.in_features == 16
    norm = G.blocks[0][0].bn1
    assert isinstance(norm.gain, torch.nn.Embedding) and norm.gain.num_embeddings == 10
    G.eval()
    x = torch.randn(2, 16, 4, 4)
    y = torch.tensor([3, 7])
    expected = (x - norm.norm.running_mean[:, None, None]) / torch.sqrt(norm.norm.running_var[:, None, None] + 1e-5)
    expected = expected * (1 + norm.gain.weight[y][:, :, None, None]) + norm.bias.weight[y][:, :, None, None]
    torch.testing.assert_close(G.blocks[0][0].bn1(x, y), expected)


def test_spectral_norm_covers_g_and_d_but_not_gs_shared_embedding():
    spec = ModelSpec((3, 32, 32), 5, latent_dim=16)
    G, D = networks(["arch=biggan", "width=4", "biggan.attention=16"], spec)
    g_layers = [m for m in G.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    assert g_layers and all(isinstance(m, (SNLinear, SNConv2d)) for m in g_layers)
    assert type(G.shared) is torch.nn.Embedding
    assert isinstance(D.embed, SNEmbedding) and D.embed.eps == 1e-6
    assert all(m.eps == 1e-6 for m in G.modules() if isinstance(m, SNConv2d))
    plain_G, plain_D = networks(["arch=biggan", "width=4", "norm=none"], spec)
    assert not any(isinstance(m, (SNLinear, SNConv2d, SNEmbedding)) for m in [*plain_G.modules(), *plain_D.modules()])


@pytest.mark.usefixtures("float64")  # a formula: checked in float64
def test_projection_head_adds_the_class_embedding_dot_the_pooled_features():
    """D(x, y) = linear(h) + <embed(y), h> with h the ReLU'd features SUM-pooled over positions."""
    spec = ModelSpec((3, 32, 32), 5, latent_dim=16)
    _, D = networks(["arch=biggan", "width=4", "biggan.attention="], spec)
    D.eval()
    x, y = torch.randn(3, 3, 32, 32), torch.tensor([0, 1, 4])
    h = x
    for stage in D.blocks:
        for block in stage:
            h = block(h)
    pooled = torch.relu(h).sum(dim=(2, 3))
    embed = D.embed.weight / torch.dot(*_sn_pair(D.embed))  # the spectrally normalised table
    expected = D.linear(pooled).squeeze(1) + (embed[y] * pooled).sum(dim=1)
    torch.testing.assert_close(D(x, y), expected)


def _sn_pair(layer):
    """(u', W v) of one eval-mode power iteration, so that sigma = u' . W v."""
    w = layer.weight_matrix().detach()
    v = torch.nn.functional.normalize(w.T @ layer.u, dim=0, eps=layer.eps)
    u = torch.nn.functional.normalize(w @ v, dim=0, eps=layer.eps)
    return u, w @ v


@pytest.mark.parametrize("init", ["ortho", "N02", "xavier"])
def test_initialisation_styles(init):
    """ortho: each weight, as (out, fan_in), has orthonormal rows or columns (whichever are fewer);
    N02: std 0.02; xavier: uniform within sqrt(6 / (fan_in + fan_out))."""
    spec = ModelSpec((3, 32, 32), 5, latent_dim=16)
    G, _ = networks(["arch=biggan", "width=8", f"biggan.init={init}", "norm=none"], spec)
    conv = G.blocks[0][0].conv1  # 32 -> 32 channels, 3x3: a 32 x 288 matrix
    w = conv.weight.detach().flatten(1)
    if init == "ortho":
        # a float32 QR: 32 Householder reflections, each a sum over the 288 columns; a non-orthogonal init is off by ~1
        w = w.double()
        assert_float32_close(w @ w.T, torch.eye(32, dtype=torch.float64), float32_bound(32, 288), "W W^T")
    elif init == "N02":
        assert abs(w.std().item() - 0.02) < 0.002 and abs(w.mean().item()) < 0.002
    else:
        bound = math.sqrt(6 / (32 * 9 + 32 * 9))
        assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound


@pytest.mark.parametrize("overrides,message", [
    (["g.arch=biggan", "latent.dim=21", "data.name=digits", "data.resolution=32", "data.conditional=true"],
     r"latent.dim must be a multiple of 4, e.g. 20 or 24, not 21"),
    (["g.arch=biggan", "g.norm=batch"], r"biggan takes norm=spectral \(BigGAN\) or norm=none"),
    (["g.arch=resnet_cifar", "g.settings.attention=32"], r"g.settings: resnet_cifar has no settings; remove "
                                                         r"g.settings.\* \(architectures with settings: biggan, "
                                                         r"biggan_deep, gs_resnet, gs_resnet2, gs_resnet3, gs_resnet4\)"),
    (["g.arch=biggan", "g.width=1", "g.settings.attention=16"], r"self-attention at 16x16 needs a multiple of 8 "
                                                             r"channels, and the block there has 4"),
    (["g.arch=biggan", "g.settings.init=glorot"], r"g.settings.init: unknown choice 'glorot'.*Valid: N02, ortho, "
                                                  r"xavier"),
    (["g.arch=biggan", "data.resolution=48"], r"biggan makes square images of 32x32, 64x64, 128x128, 256x256 pixels"),
    (["g.arch=biggan_deep", "g.settings.hierarchical=false"], r"g.settings.hierarchical=false is a BigGAN setting"),
    (["g.arch=biggan", "g.settings.shared_dim=0", "data.conditional=true"], r"set g.settings.shared_dim > 0 or "
                                                                            r"g.settings.hierarchical=false"),
])
def test_bad_biggan_settings_are_refused_with_the_fix(overrides, message):
    base = ["data.name=digits", "data.resolution=32", "g.norm=spectral", "latent.dim=20"]
    with pytest.raises(ConfigError, match=message):
        cfg = load_config(None, base + overrides)
        spec = ModelSpec((1, cfg.data.resolution, cfg.data.resolution), 10 if cfg.data.conditional else 0,
                         latent_dim=cfg.latent.dim)
        build_generator(cfg.g, spec)


def test_orthogonal_regularization_covers_what_biggan_pytorch_covers():
    """For a BigGAN G with a shared embedding, the ortho penalty equals the sum, over every parameter with at
    least 2 dimensions except ``shared.weight`` (BigGAN-PyTorch's ``utils.ortho`` blacklist), of
    ||W W^T (1 - I)||_F^2 computed in float64 NumPy from the raw weights."""
    import numpy as np

    from ganscape.objectives.penalties import orthogonal

    spec = ModelSpec((3, 32, 32), 5, latent_dim=16)
    G, _ = networks(["arch=biggan", "width=4", "biggan.attention=16", "biggan.shared_dim=8"], spec)
    expected = 0.0
    for name, param in G.named_parameters():
        if param.dim() < 2 or name == "shared.weight":
            continue
        w = param.detach().double().numpy().reshape(param.shape[0], -1)
        gram = w @ w.T
        expected += float(((gram * (1 - np.eye(len(gram)))) ** 2).sum())
    assert orthogonal(G.double()).item() == pytest.approx(expected, rel=1e-12)  # a formula: both in float64
