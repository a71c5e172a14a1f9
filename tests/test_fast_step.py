"""The fast training step: one D call for real and fake, no host synchronisation, precision, compilation,
channels_last. Each fast path is checked against the plain computation it replaces."""

from __future__ import annotations

import contextlib

import pytest
import torch

from float32_error import assert_float32_close, float32_bound
from ganscape.config import load_config
from ganscape.data import build_dataset
from ganscape.nets import ModelSpec, build_discriminator
from ganscape.objectives.objective import Objective
from ganscape.training.state import build_state
from ganscape.training.step import train_step

IMAGE = ["data.name=digits", "data.conditional=true", "g.arch=sndcgan", "d.arch=sndcgan", "g.width=8", "d.width=8",
         "latent.dim=16", "train.batch_size=6", "train.device=cpu", "train.ema=0.9"]


def discriminator(norm: str):
    cfg = load_config(None, IMAGE + [f"d.norm={norm}"])
    torch.manual_seed(0)
    return build_discriminator(cfg.d, ModelSpec((1, 32, 32), 10, latent_dim=16)).double()


@pytest.mark.parametrize("norm", ["none", "layer"])
def test_one_d_call_on_real_and_fake_gives_the_losses_and_gradients_of_two(norm):
    """For a D without batch statistics, the fused call's losses, logits and parameter gradients (and those
    of R1, which runs its own D calls) equal the two separate calls' (float64)."""
    D = discriminator(norm)
    real, fake = torch.randn(5, 1, 32, 32, dtype=torch.float64), torch.randn(5, 1, 32, 32, dtype=torch.float64)
    labels = torch.tensor([0, 3, 3, 9, 1])
    objective = Objective.of("hinge", {"r1": 2.0})
    results = []
    for fused in (False, True):
        D.zero_grad()
        d = objective.d_totals(D, real, fake, labels, None, fused=fused)
        d.total.backward()
        results.append((d, {n: p.grad.clone() for n, p in D.named_parameters()}))
    (separate, separate_grads), (fused, fused_grads) = results
    torch.testing.assert_close(fused.total, separate.total, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fused.real_logits, separate.real_logits, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fused.fake_logits, separate.fake_logits, rtol=1e-12, atol=1e-12)
    for name, grad in separate_grads.items():
        torch.testing.assert_close(fused_grads[name], grad, rtol=1e-10, atol=1e-12)


def test_a_spectral_d_refines_u_once_per_fused_update_and_twice_per_separate_one():
    D = discriminator("spectral")
    layer = D.head.final
    x = torch.randn(4, 1, 32, 32, dtype=torch.float64)
    w = layer.weight_matrix().detach()
    u0 = layer.u.clone()
    once = torch.nn.functional.normalize(w @ torch.nn.functional.normalize(w.T @ u0, dim=0), dim=0)
    Objective.of("hinge").d_totals(D, x, x, torch.zeros(4, dtype=torch.int64), None, fused=True)
    torch.testing.assert_close(layer.u, once)
    layer.u.copy_(u0)
    Objective.of("hinge").d_totals(D, x, x, torch.zeros(4, dtype=torch.int64), None, fused=False)
    twice = torch.nn.functional.normalize(w @ torch.nn.functional.normalize(w.T @ once, dim=0), dim=0)
    torch.testing.assert_close(layer.u, twice)


@pytest.mark.parametrize("overrides,fused", [(["d.norm=none"], True), (["d.norm=spectral"], True),
                                             (["d.norm=batch"], False), (["d.norm=none", "train.fused_d=false"], False)])
def test_the_fused_call_is_chosen_only_where_d_does_not_mix_samples(overrides, fused):
    cfg = load_config(None, IMAGE + overrides)
    assert build_state(cfg, build_dataset(cfg), torch.device("cpu")).fused_d is fused


@contextlib.contextmanager
def no_host_reads(monkeypatch, host_tensors=()):
    """Every Tensor method that copies a value to the host raises while active, except on ``host_tensors``:
    torch.optim's step counters, which it keeps on the host even when training on a GPU (unless
    ``capturable``), so that reading them never waits for the device."""
    allowed = {id(t) for t in host_tensors}

    def refuse(name):
        original = getattr(torch.Tensor, name)

        def method(self, *args, **kwargs):
            if id(self) in allowed:
                return original(self, *args, **kwargs)
            raise AssertionError(f"train_step called Tensor.{name}(), which waits for the device")
        return method

    with monkeypatch.context() as m:
        for name in ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__"):
            m.setattr(torch.Tensor, name, refuse(name))
        yield


def optimizer_steps(*optimizers) -> list[torch.Tensor]:
    return [slot["step"] for opt in optimizers for slot in opt.state.values() if "step" in slot]


@pytest.mark.parametrize("overrides", [
    [],  # the default 2-D job (MLP, ns)
    IMAGE + ["penalty=r1:1,instance_noise:0.1", "d.norm=spectral", "g.norm=batch", "train.n_disc=2"],
    IMAGE + ["loss=wgan", "penalty=wgan_gp:1,dragan:1", "d.norm=layer", "train.accumulate=2"],
    ["data.name=digits", "data.conditional=true", "g.arch=biggan", "d.arch=biggan", "g.width=2", "d.width=2",
     "g.norm=spectral", "d.norm=spectral", "g.biggan.attention=", "d.biggan.attention=", "latent.dim=16",
     "loss=hinge", "train.batch_size=4", "penalty=ortho:1e-4", "train.device=cpu"],
], ids=["mlp", "sndcgan-r1-noise", "wgan-gp-accumulate", "biggan-ortho"])
def test_train_step_never_waits_for_the_device(overrides, monkeypatch):
    """No .item(), .tolist(), bool(tensor), ... anywhere in a step: the loop reads values at log steps only."""
    cfg = load_config(None, overrides + ["train.ema_start=0"])
    data = build_dataset(cfg)
    state = build_state(cfg, data, torch.device("cpu"))
    objective = Objective.from_config(cfg)
    train_step(state, data, objective, cfg)  # warm-up outside the check: lazy optimizer state and the like
    with no_host_reads(monkeypatch, optimizer_steps(state.opt_g, state.opt_d)):
        for _ in range(2):
            stats = train_step(state, data, objective, cfg)
    assert all(isinstance(v, torch.Tensor) for v in stats.values())


def one_step(overrides, steps: int = 1):
    """A fresh state of the config, the stats of its last step and the state."""
    cfg = load_config(None, overrides)
    data = build_dataset(cfg)
    state = build_state(cfg, data, torch.device("cpu"))
    objective = Objective.from_config(cfg)
    for _ in range(steps):
        stats = train_step(state, data, objective, cfg)
    return state, stats


SPECTRAL_CONDITIONAL = IMAGE + ["d.norm=spectral", "g.norm=batch", "penalty=r1:1", "loss=hinge"]


@pytest.mark.numerics  # float32 u against float32 Algorithm 1
def test_bf16_keeps_losses_penalty_norms_and_spectral_norm_in_float32(monkeypatch):
    """Under train.precision=bf16 the networks run in bfloat16, but the logits reach the loss as float32, R1's
    value is float32, and spectral norm's u is float32 and equals Algorithm 1 computed in float32 from the
    weight before the step (the independent value)."""
    from ganscape.objectives import losses

    seen = []
    hinge = losses.LOSSES["hinge"]

    def recording(real_logits, fake_logits):
        seen.append((real_logits.dtype, fake_logits.dtype))
        return hinge.d_loss(real_logits, fake_logits)

    monkeypatch.setitem(losses.LOSSES, "hinge", losses.Loss("hinge", recording, hinge.g_loss, ""))
    # unconditional: a projection head would return float32 logits anyway (float32 embedding x bf16 features)
    cfg = load_config(None, SPECTRAL_CONDITIONAL + ["train.precision=bf16", "data.conditional=false"])
    data = build_dataset(cfg)
    state = build_state(cfg, data, torch.device("cpu"))
    layer = state.D.head.final
    w, u = layer.weight_matrix().detach().clone(), layer.u.clone()
    v = torch.nn.functional.normalize(w.T @ u, dim=0)
    expected_u = torch.nn.functional.normalize(w @ v, dim=0)
    stats = train_step(state, data, Objective.from_config(cfg), cfg)
    assert seen == [(torch.float32, torch.float32)]
    assert stats["penalty/r1"].dtype == torch.float32 and stats["d_loss"].dtype == torch.float32
    assert layer.u.dtype == torch.float32
    torch.testing.assert_close(layer.u, expected_u, rtol=1e-6, atol=1e-7)


@pytest.mark.numerics  # bf16 against float32
def test_bf16_gradients_follow_the_float32_gradients():
    """D's objective (hinge + R1) and G's, on the same batches and weights, in bf16 autocast and in fp32: the
    totals agree to bf16's precision and each network's gradient points the same way (cosine > 0.99)."""
    from ganscape.training.speed import autocast

    cfg = load_config(None, SPECTRAL_CONDITIONAL)
    data = build_dataset(cfg)
    state = build_state(cfg, data, torch.device("cpu"))
    objective = Objective.from_config(cfg)
    real, labels = data.sample(8, state.data_rng)
    z = torch.randn(8, 16, generator=torch.Generator().manual_seed(0))
    state.G.eval(), state.D.eval()  # the same batch-norm statistics and spectral-norm u in both runs
    results = {}
    for precision in ("fp32", "bf16"):
        state.G.zero_grad(), state.D.zero_grad()
        with autocast(precision, torch.device("cpu")):
            fake = state.G(z, labels).float()
            d = objective.d_totals(state.D, real, fake.detach(), labels, None)
            g = objective.g_totals(state.G, state.D(fake, labels))
        (d.total + g.total).backward()
        grads = [torch.cat([p.grad.flatten() for p in net.parameters() if p.grad is not None])
                 for net in (state.G, state.D)]
        results[precision] = (d.total.detach(), g.total.detach(), grads)
    (d32, g32, grads32), (d16, g16, grads16) = results["fp32"], results["bf16"]
    assert d16.dtype == g16.dtype == torch.float32
    torch.testing.assert_close(d16, d32, rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(g16, g32, rtol=2e-2, atol=2e-2)
    for low, full in zip(grads16, grads32):
        assert torch.nn.functional.cosine_similarity(low, full, dim=0) > 0.99


@pytest.mark.numerics  # float32 kernels against float32 kernels
@pytest.mark.parametrize("overrides", [SPECTRAL_CONDITIONAL, IMAGE + ["g.arch=resnet_cifar", "d.arch=resnet_cifar",
                                                                     "g.norm=batch", "d.norm=spectral"]],
                         ids=["sndcgan-r1", "resnet"])
def test_compiled_and_channels_last_steps_equal_the_plain_step(overrides):
    """A step compiled (torch.compile's graph capture, aot_eager), and a step in NHWC layout, give the plain
    eager step's losses and parameters to float tolerance; R1 runs through the eager D. (Over more steps the
    runs drift apart as any two float orders do: NHWC convolutions sum in another order.) Adam's eps is
    raised to 1e-3 so that it does not blow float noise up to full steps: the biases before batch norm have
    a true gradient of 0, and Adam with eps 1e-8 turns rounding-level gradients into steps of size lr."""
    overrides = overrides + ["g_opt.eps=1e-3", "d_opt.eps=1e-3"]
    plain, plain_stats = one_step(overrides)
    for extra in (["train.compile=aot_eager"], ["train.channels_last=true"]):
        state, stats = one_step(overrides + extra)
        for key in plain_stats:
            torch.testing.assert_close(stats[key], plain_stats[key], rtol=1e-4, atol=1e-5, msg=f"{extra} {key}")
        for (name, got), want in zip(state.G.state_dict().items(), plain.G.state_dict().values()):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5, msg=f"{extra} G.{name}")
        for (name, got), want in zip(state.D.state_dict().items(), plain.D.state_dict().values()):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5, msg=f"{extra} D.{name}")


def test_channels_last_reaches_the_resnet_unpool():
    from ganscape.nets.resnet import unpool

    x = torch.randn(2, 4, 3, 3).contiguous(memory_format=torch.channels_last)
    out = unpool(x)
    assert out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous()
    torch.testing.assert_close(out[:, :, ::2, ::2], x)
    assert out[:, :, 1::2].abs().sum() == 0 and out[:, :, :, 1::2].abs().sum() == 0
    cfg = load_config(None, IMAGE + ["g.arch=resnet_cifar", "d.arch=resnet_cifar", "train.channels_last=true"])
    state = build_state(cfg, build_dataset(cfg), torch.device("cpu"))
    assert state.G.blocks[0].conv1.weight.is_contiguous(memory_format=torch.channels_last)


def test_tf32_is_switched_on_for_the_run_and_restored_after():
    from ganscape.training.speed import precision_flags

    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        with precision_flags("tf32"):
            assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        with precision_flags("bf16"):
            assert not torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


@pytest.mark.parametrize("name", ["digits", "stacked_digits"])
def test_images_moved_to_the_device_give_the_same_draws_there(name):
    """After ``to_device`` the batches are made where the images are (here the meta device, which has shapes
    but no values) from the same CPU draws: the generator ends in the same state as for the host copy."""
    cfg = load_config(None, [f"data.name={name}", "data.flip=true", "data.resolution=16"])
    host, moved = build_dataset(cfg), build_dataset(cfg)
    moved.to_device(torch.device("meta"))
    g_host, g_moved = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    x_host, y_host = host.sample(5, g_host)
    x, y = moved.sample(5, g_moved)
    assert x.device.type == y.device.type == "meta" and x.shape == x_host.shape == (5, host.shape[0], 16, 16)
    assert torch.equal(g_host.get_state(), g_moved.get_state())
    fixed, _ = moved.take(torch.arange(3))
    assert fixed.device.type == "meta" and fixed.shape == (3, host.shape[0], 16, 16)


@pytest.mark.numerics  # float32 against float64
def test_a_sharded_update_follows_the_mean_of_its_shards_gradients():
    """With train.shards=2 (one process), D's update follows the mean of the two shards' hinge-loss gradients,
    each recomputed here in float64 from its own streams (``shard_streams``: shard s draws its batch and
    latents from generators seeded from the run's seed and s) with the networks as they were before the step;
    and the two shards draw different images. The step's float32 gradients may differ from these by float32
    rounding: 8 layers forward and 8 back, the longest sum a first-layer weight gradient's over a shard's
    3 real and 3 generated 32 x 32 images, so ``float32_bound(16, 6144)`` ~ 1.5e-4 of each gradient's norm
    (100 times the error seen), where a shard counted twice or a sum instead of the mean is off by 50% or more."""
    import copy

    from ganscape.nets import sample_latent
    from ganscape.objectives.losses import LOSSES
    from ganscape.training.state import shard_streams

    cfg = load_config(None, IMAGE + ["d.norm=layer", "g.norm=none", "train.shards=2", "loss=hinge", "penalty=none", "train.ema=0"])
    data = build_dataset(cfg)
    state = build_state(cfg, data, torch.device("cpu"))
    G, D = copy.deepcopy(state.G).double(), copy.deepcopy(state.D).double()
    train_step(state, data, Objective.from_config(cfg), cfg)
    expected = [torch.zeros_like(p) for p in D.parameters()]
    batches = []
    for shard in (0, 1):
        streams = shard_streams(cfg.train.seed, shard, torch.device("cpu"))
        real, labels = data.sample(3, streams.data)
        batches.append(real)
        z = sample_latent(3, cfg.latent.dim, cfg.latent.dist, streams.latent, torch.device("cpu"))
        with torch.no_grad():
            fake = G(z.double(), labels)
        loss = LOSSES["hinge"].d_loss(D(real.double(), labels), D(fake, labels))
        for total, grad in zip(expected, torch.autograd.grad(loss, list(D.parameters()))):
            total += grad / 2
    assert not torch.equal(*batches), "the shards must draw different images, or the batch is one part twice"
    for (name, got), want in zip(state.D.named_parameters(), expected):
        # scale: the last bias's gradient sums +-1/6 (a logit's share of the mean) to exactly 0
        assert_float32_close(got.grad, want, float32_bound(16, 6 * 32 * 32), name, scale=1.0)
