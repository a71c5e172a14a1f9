"""The D-input pipeline (``objectives.d_input``): where the step applies it, ADA's controller and state,
the migration of instance noise, and the pictures a run writes of it.

Expected values are independent of the code under test: batches replayed from copies of the run's
random streams, ADA's p worked out by hand from the signs fed to it, the first losses written out with
``softplus`` on hand-made noisy batches, and the migration's results written out literally.
"""

from __future__ import annotations

import copy
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from ganscape.config import load_config
from ganscape.config.migrate import migrate
from ganscape.config.values import describe_keys
from ganscape.data import build_dataset
from ganscape.errors import ConfigError, ConfigWarning
from ganscape.nets import sample_latent
from ganscape.objectives.d_input import AugmentConfig, DInput, instance_noise_to_augment
from ganscape.objectives.objective import Objective
from ganscape.runs import RunDir
from ganscape.store.checkpoint import checkpoint_name, load_checkpoint
from ganscape.store.rundir import read_metrics
from ganscape.training.loop import train
from ganscape.training.state import build_state
from ganscape.training.step import train_step
from run_states import assert_same_state, final_state

SHIFT = 100.0  # what the spy pipeline adds: far from every 2-D data point and sample


class ShiftingSpy(DInput):
    """A pipeline that records every batch it transforms and what D's real logits it observes, and shows D
    each batch shifted by ``SHIFT``."""

    def __init__(self, settings):
        super().__init__(settings)
        self.inputs, self.observed = [], []

    def _seen(self, x, step, p, generator):
        self.inputs.append(x)
        return x + SHIFT

    def observe(self, real_logits):
        self.observed.append(torch.cat(list(real_logits)).detach().clone())


def copied(generator: torch.Generator) -> torch.Generator:
    twin = torch.Generator(generator.device)
    twin.set_state(generator.get_state())
    return twin


def two_d_run(overrides=()):
    cfg = load_config(None, ["train.batch_size=16", "g.width=8", "d.width=8", "penalty=none", *overrides])
    data = build_dataset(cfg)
    return cfg, data, build_state(cfg, data, torch.device("cpu"))


def test_the_step_shows_d_real_and_fake_through_the_pipeline_and_g_trains_through_it():
    """D's two updates each see the real batch (replayed from a copy of the data stream) and the fake batch
    through the pipeline, in that order, and G's update the fake; D receives exactly what the pipeline returns,
    G's batch still carries G's graph (so G's gradient passes through), and ``observe`` gets D's logits on the
    reals it saw, once per D update."""
    cfg, data, state = two_d_run(["train.n_disc=2"])
    state.d_input = spy = ShiftingSpy(cfg.augment)
    d_inputs = []
    D = state.D

    def recording_D(x, labels=None):
        out = D(x, labels)
        d_inputs.append((x.detach().clone(), out.detach().clone()))
        return out

    state.D_forward = recording_D
    data_copy = copied(state.data_rng)
    expected_real = [data.sample(16, data_copy)[0] for _ in range(2)]
    train_step(state, data, Objective.from_config(cfg), cfg)

    assert len(spy.inputs) == 5  # real, fake per D update; fake in G's
    for update in range(2):
        real, fake = spy.inputs[2 * update], spy.inputs[2 * update + 1]
        torch.testing.assert_close(real, expected_real[update], rtol=0, atol=0)
        seen, logits = d_inputs[update]  # one fused call of D on both batches
        torch.testing.assert_close(seen, torch.cat([real, fake]) + SHIFT, rtol=0, atol=0)
        torch.testing.assert_close(spy.observed[update], logits[:16], rtol=0, atol=0)
    g_fake = spy.inputs[4]
    assert g_fake.requires_grad and g_fake.grad_fn is not None
    torch.testing.assert_close(d_inputs[2][0], g_fake.detach() + SHIFT, rtol=0, atol=0)
    assert len(spy.observed) == 2
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in state.G.parameters())


@pytest.mark.parametrize("settings", [AugmentConfig(method="diffaugment"),
                                      AugmentConfig(method="ada", ada_p=1.0),
                                      AugmentConfig(method="ada", ada_p=0.6, noise=0.2)],
                         ids=["diffaugment", "ada p=1", "ada p=0.6 and noise"])
def test_the_g_step_gradient_is_that_of_the_transform(settings, float64):
    """Given its draws, each augmentation is affine in the images, so for any v the change of the output,
    seen(x + v) - seen(x) with the same draws, is J v exactly; autograd's J^T w must satisfy
    <J^T w, v> = <w, J v>, and J^T w must not be zero (the gradient reaches G's output)."""
    pipeline = DInput(settings)
    x = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    v = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    w = torch.randn(x.shape, generator=torch.Generator().manual_seed(2))
    fake = x.clone().requires_grad_(True)
    seen = pipeline.g_step(fake, 0, torch.Generator().manual_seed(3))
    (grad,) = torch.autograd.grad((w * seen).sum(), fake)
    moved = pipeline.g_step(x + v, 0, torch.Generator().manual_seed(3)) - seen.detach()
    assert grad.abs().sum() > 0
    torch.testing.assert_close((grad * v).sum(), (w * moved).sum(), rtol=1e-9, atol=1e-9)


def by_hand(p, signs, images, speed):
    """ADA's rule: p + sign(E[sign D(real)] - 0.6) * images / speed, clipped to [0, 1]."""
    mean = signs / images
    direction = 1 if mean > 0.6 else -1 if mean < 0.6 else 0
    return min(1.0, max(0.0, p + direction * images / speed))


def test_ada_p_moves_every_interval_by_the_rule_worked_out_by_hand():
    """Interval 2, speed 100 images, target 0.6, p from 0.5. Logits of any size count by their sign; p stays
    put between adjustments."""
    pipeline = DInput(AugmentConfig(method="ada", ada_p=0.5, ada_interval=2, ada_speed_images=100))
    batches = [[3.0, 0.2, -1.5, 7.0], [0.1, -2.0, -0.3, -9.0],  # signs 2, -2: mean 0 < 0.6 -> p - 8/100
               [1.0, 2.0, 3.0, 4.0], [5.0, 0.5, 0.25, 9.0],  # mean 1 > 0.6 -> p + 8/100
               [1.0, 1.0, 1.0, -1.0], [1.0, 1.0, 1.0, 1.0, 1.0, -1.0]]  # signs 2, 4 over 10: mean 0.6 -> unchanged
    seen = []
    for logits in batches:
        pipeline.observe(torch.tensor(logits))
        seen.append(pipeline.p)
    first = by_hand(0.5, 0, 8, 100)
    second = by_hand(first, 8, 8, 100)
    assert seen == pytest.approx([0.5, 0.42, 0.42, 0.5, 0.5, 0.5], abs=1e-12)
    assert seen[1] == pytest.approx(first) and seen[3] == pytest.approx(second)
    assert pipeline.logged() == {"augment/p": seen[-1]}


def test_ada_p_saturates_at_0_and_1():
    down = DInput(AugmentConfig(method="ada", ada_p=0.01, ada_interval=1, ada_speed_images=10))
    down.observe(torch.full((4,), -1.0))
    up = DInput(AugmentConfig(method="ada", ada_p=0.99, ada_interval=1, ada_speed_images=10))
    up.observe(torch.full((4,), 1.0))
    assert (down.p, up.p) == (0.0, 1.0)


def test_ada_state_round_trips_mid_interval():
    """A pipeline restored from another's state three updates into an interval of four adjusts p exactly as
    the original does at the fourth."""
    settings = AugmentConfig(method="ada", ada_p=0.3, ada_interval=4, ada_speed_images=1000)
    original = DInput(settings)
    for logits in ([1.0, -2.0], [3.0, 4.0], [-1.0, 5.0]):
        original.observe(torch.tensor(logits))
    restored = DInput(settings)
    restored.load_state_dict(copy.deepcopy(original.state_dict()))
    for pipeline in (original, restored):
        pipeline.observe(torch.tensor([6.0, 7.0]))
    assert restored.p == original.p == pytest.approx(by_hand(0.3, 4, 8, 1000))


def test_the_pipeline_is_the_identity_when_off_and_draws_nothing():
    pipeline = DInput()
    generator = torch.Generator().manual_seed(5)
    state = generator.get_state()
    x = torch.randn(4, 3, 8, 8)
    real, fake = pipeline.d_step(x, x + 1, 0, generator)
    assert real is x and torch.equal(fake, x + 1) and torch.equal(generator.get_state(), state)
    assert not pipeline.active and pipeline.logged() == {}


def test_the_preview_shows_ada_at_half_when_the_run_starts_at_0():
    """At p = 0 ADA would show nothing: the picture uses p = 0.5 and says so; a run started at p > 0 is shown
    at its own p. DiffAugment is shown with its policy."""
    x = torch.rand(8, 3, 8, 8) * 2 - 1
    seen, what = DInput(AugmentConfig(method="ada")).preview(x, torch.Generator().manual_seed(0))
    assert not torch.equal(seen, x) and "p = 0.5 (the run starts at p = 0)" in what
    assert "p = 0.3" in DInput(AugmentConfig(method="ada", ada_p=0.3)).preview(x, torch.Generator())[1]
    _, what = DInput(AugmentConfig(method="diffaugment:cutout", noise=0.2)).preview(x, torch.Generator())
    assert what == "DiffAugment (cutout) and instance noise of std 0.2"


# ---------------------------------------------------------------- instance noise moved from the penalties

OLD_AND_NEW = [
    ({"penalty": {"use": ["r1:1", "instance_noise:0.3"], "noise_anneal_steps": 5}},
     {"penalty": {"use": ["r1:1"]}, "augment": {"noise": 0.3, "noise_anneal_steps": 5}}),
    ({"penalty": "r1,instance_noise"}, {"penalty": {"use": "r1"}, "augment": {"noise": 0.1}}),
    ({"penalty": {"use": {"instance_noise": 0.2, "l2": 0.01}}},
     {"penalty": {"use": {"l2": 0.01}}, "augment": {"noise": 0.2}}),
    ({"penalty": {"use": [{"name": "instance_noise", "weight": 0.4}]}},
     {"penalty": {"use": []}, "augment": {"noise": 0.4}}),
    ({"penalty": {"use": ["instance_noise:0.3"]}, "augment": {"noise": 0.5}},  # a key given in both: the new one
     {"penalty": {"use": []}, "augment": {"noise": 0.5}}),
    ({"penalty": {"use": ["r1"]}, "loss": "ns"}, {"penalty": {"use": ["r1"]}, "loss": "ns"}),
]


@pytest.mark.parametrize("old, new", OLD_AND_NEW)
def test_instance_noise_migrates_to_augment_noise(old, new):
    before = copy.deepcopy(old)
    assert instance_noise_to_augment(old) == new
    assert old == before  # the input is left as it was
    assert instance_noise_to_augment(new) == new  # idempotent


def test_instance_noise_is_refused_as_a_term_of_the_objective():
    with pytest.raises(ConfigError, match=r"instance_noise transforms D's inputs.*augment.noise=0.2"):
        Objective.of("ns", {"r1": 1.0, "instance_noise": 0.2})


def test_an_old_config_file_loads_with_its_noise_in_augment(tmp_path):
    (tmp_path / "old.yaml").write_text("penalty:\n  use: [wgan_gp:1, instance_noise:0.25]\n"
                                       "  noise_anneal_steps: 50\nloss: wgan\n")
    cfg = load_config(tmp_path / "old.yaml")
    assert [(t.name, t.weight) for t in cfg.penalty.use] == [("wgan_gp", 1.0)]
    assert (cfg.augment.noise, cfg.augment.noise_anneal_steps) == (0.25, 50)
    assert migrate({"penalty": {"use": ["instance_noise"]}}) == {"penalty": {"use": []}, "augment": {"noise": 0.1}}


def test_the_first_step_with_old_instance_noise_sees_real_then_fake_noise_from_the_noise_stream():
    """``penalty=instance_noise:0.3`` (the old key): D's first loss is the ns loss on real + 0.3 n1 and
    G(z1) + 0.3 n2, and G's on G(z2) + 0.3 n3 after D's update, with the batches, latents and n1, n2, n3
    drawn in that order from copies of the run's data, latent and noise streams."""
    cfg, data, state = two_d_run(["penalty=instance_noise:0.3"])
    streams = [copied(g) for g in (state.data_rng, state.latent_rng, state.noise_rng)]
    G, D = copy.deepcopy(state.G), copy.deepcopy(state.D)
    stats = train_step(state, data, Objective.from_config(cfg), cfg)

    real, _ = data.sample(16, streams[0])
    z1 = sample_latent(16, cfg.latent.dim, cfg.latent.dist, streams[1], torch.device("cpu"))
    with torch.no_grad():
        fake = G(z1, None)
    real = real + 0.3 * torch.randn(real.shape, generator=streams[2])
    fake = fake + 0.3 * torch.randn(fake.shape, generator=streams[2])
    with torch.no_grad():
        d_loss = F.softplus(-D(real, None)).mean() + F.softplus(D(fake, None)).mean()
    torch.testing.assert_close(stats["d_loss"], d_loss)

    z2 = sample_latent(16, cfg.latent.dim, cfg.latent.dist, streams[1], torch.device("cpu"))
    with torch.no_grad():
        fake2 = G(z2, None)
        fake2 = fake2 + 0.3 * torch.randn(fake2.shape, generator=streams[2])
        g_loss = F.softplus(-state.D(fake2, None)).mean()  # D after its update
    torch.testing.assert_close(stats["g_loss"], g_loss)


# ---------------------------------------------------------------- settings and their errors


@pytest.mark.parametrize("overrides, message", [
    (["augment=ada"], r"augment=ada transforms images; these data are not images"),
    (["augment=adda"], r"augment.method: unknown choice 'adda'. Did you mean 'ada'\? Valid: ada, diffaugment"),
    (["augment=ada:color"], r"only diffaugment takes a policy"),
    (["augment=diffaugment:colour"], r"augment.policy: unknown choice 'colour'.*Valid: color, cutout, translation"),
    (["augment.ada_groups=blit,geo"], r"augment.ada_groups: unknown choice 'geo'.*Valid: blit, color, geom"),
])
def test_bad_settings_are_refused_with_the_valid_choices(overrides, message):
    with pytest.raises(ConfigError, match=message):
        cfg = load_config(None, overrides)
        DInput.from_config(cfg.augment, images=len(build_dataset(cfg).shape) == 3)


def test_shorthands_and_documented_keys():
    assert load_config(None, ["augment=diffaugment:color,cutout"]).augment == AugmentConfig(
        method="diffaugment", policy=["color", "cutout"])
    assert load_config(None, ["augment=ada", "augment.ada_p=0.2"]).augment == AugmentConfig(method="ada", ada_p=0.2)
    assert load_config(None, ["augment=none"]).augment == AugmentConfig()
    keys = {row.key: row.help for row in describe_keys() if row.key.startswith("augment.")}
    assert set(keys) == {f"augment.{k}" for k in ("method", "policy", "ada_p", "ada_target", "ada_interval",
                                                  "ada_speed_images", "ada_groups", "noise", "noise_anneal_steps")}
    assert all(keys.values())


# ---------------------------------------------------------------- ADA in a run: resume and pictures


@pytest.fixture
def tiny_digits(tmp_path):
    """8 steps of a narrow SNDCGAN on 16x16 digits with ADA from p = 0.3, adjusted every 3 D updates."""
    return [f"run.root={tmp_path / 'runs'}", "data.name=digits", "data.resolution=16", "g.arch=sndcgan",
            "d.arch=sndcgan", "g.width=4", "d.width=4", "g.norm=batch", "d.norm=spectral", "penalty=none",
            "latent.dim=8", "train.steps=8", "train.batch_size=8", "train.threads=1", "augment=ada",
            "augment.ada_interval=3", "augment.ada_p=0.3", "augment.ada_speed_images=1000", "augment.noise=0.05",
            "log.every=2", "log.samples_every=4", "checkpoint.every=4", "eval.every=1000", "eval.samples=64",
            "log.tensorboard=false"]


def run_once(overrides, name, **kwargs):
    cfg = load_config(None, [*overrides, f"run.name={name}"])
    run = RunDir.create(cfg)
    train(cfg, run, progress=False, **kwargs)
    return run


def test_ada_run_resumes_bit_identically_and_writes_its_pictures(tiny_digits):
    """8 steps straight vs 4 + resume 4 (the checkpoint falls inside an adjustment interval): identical
    networks, streams and p; p moved, logged at log steps, and pictured."""
    straight = run_once(tiny_digits, "straight")
    halves = run_once(tiny_digits, "halves", until=4)
    train(halves.read_config(), halves, resume=True, progress=False)
    a, b = final_state(straight), final_state(halves)
    assert_same_state(a, b)
    assert a["augment"] == b["augment"]
    assert load_checkpoint(straight.checkpoints / checkpoint_name(4))["augment"]["updates"] == 1  # 4 = 3 + 1

    logged = [(row["step"], row["augment/p"]) for row in read_metrics(straight) if "augment/p" in row]
    assert [step for step, _ in logged] == [2, 4, 6, 8] and logged[-1][1] == a["augment"]["p"]
    ps = [p for _, p in logged]  # adjusted after D updates 3 and 6, by 24 images / 1000 up or down
    assert ps[0] == 0.3 and abs(ps[1] - 0.3) == pytest.approx(0.024) and abs(ps[2] - ps[1]) == pytest.approx(0.024)
    assert ps[3] == ps[2]
    assert logged == [(row["step"], row["augment/p"]) for row in read_metrics(halves) if "augment/p" in row]
    assert all(math.isfinite(p) and 0 <= p <= 1 for _, p in logged)

    with Image.open(straight.augmented_reals_picture) as picture:
        assert picture.width >= 512 and picture.height > picture.width  # 8 rows of 8 under a caption
    assert straight.augment_picture.is_file()


TORCHRUN = Path(sys.executable).with_name("torchrun")


@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun is not installed beside this Python")
def test_two_processes_keep_the_p_of_one_process_with_two_shards(tmp_path, tiny_digits):
    """Under torchrun each process observes its own shard's reals; ADA's statistics are summed over the
    processes, so p after 3 steps (adjusted after every D update) is exactly that of one process training
    both shards, and moved."""
    common = [*tiny_digits, "run.root=runs", "train.steps=3", "checkpoint.every=3", "augment.ada_interval=1",
              "augment.ada_speed_images=100", "d.norm=layer", "g.norm=none"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, "-m", "ganscape", "train", *common, "run.name=one", "train.shards=2"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    two = subprocess.run([str(TORCHRUN), "--nproc_per_node", "2", "--master_port", str(29000 + os.getpid() % 500),
                          "-m", "ganscape", "train", *common, "run.name=two"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert one.returncode == two.returncode == 0, one.stderr + two.stderr
    p_one, p_two = (load_checkpoint(tmp_path / "runs" / name / "checkpoints" / checkpoint_name(3))["augment"]["p"]
                    for name in ("one", "two"))
    assert p_one == p_two != 0.3


def test_augment_keys_the_chosen_augmentation_does_not_read_are_reported():
    """A changed ``augment.*`` key that the chosen method ignores gives one warning naming it and the method that
    reads it; the same key with that method, and defaults, give none (expected: the keys set by hand)."""
    import warnings

    def advice(*overrides):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            load_config(None, list(overrides))
        return sorted(str(w.message) for w in caught if issubclass(w.category, ConfigWarning))

    assert advice("augment.ada_target=0.5", "augment.policy=[color]") == [
        "augment.ada_target has no effect without augment=ada (no augmentation is chosen).",
        "augment.policy has no effect without augment=diffaugment (no augmentation is chosen)."]
    assert advice("augment=diffaugment:color", "augment.ada_interval=8") == [
        "augment.ada_interval has no effect without augment=ada (augment=diffaugment is chosen)."]
    assert advice("augment=ada", "augment.ada_target=0.5", "augment.ada_groups=[blit]") == []
    assert advice("augment=diffaugment", "augment.policy=[cutout]") == []
    assert advice("augment=ada") == []
