"""Penalties and normalizations wired through config into training."""

import warnings

import pytest
import torch

from ganscape.cli import main
from ganscape.config import load_config
from ganscape.errors import ConfigError, ConfigWarning
from ganscape.config import dump_yaml
from ganscape.objectives.objective import Objective
from ganscape.objectives.penalties import PENALTIES
from ganscape.store.checkpoint import load_checkpoint
from ganscape.training.loop import train
from ganscape.runs import RunDir
from ganscape.store.rundir import read_metrics


def terms(cfg):
    return [(t.name, t.weight) for t in cfg.penalty.use]


def test_penalty_list_forms_and_defaults(tmp_path):
    """Every written form gives the same list; a bare name takes the registry's default weight."""
    expected = [("wgan_gp", 1.0), ("l2", 0.01)]
    for overrides in (["penalty=wgan_gp:1,l2:0.01"], ["penalty.use=wgan_gp:1,l2"], ["penalty=wgan_gp: 1, l2"], ["penalty=[wgan_gp:1, l2]"],
                      ["penalty=[{name: wgan_gp, weight: 1}, {name: l2}]"], ["penalty=[wgan_gp: 1, l2: 0.01]"], ["penalty={wgan_gp: 1, l2: 0.01}"]):
        assert terms(load_config(None, overrides)) == expected, overrides
    assert terms(load_config(None, ["penalty=none"])) == terms(load_config(None, ["penalty="])) == []
    assert terms(load_config(None, ["penalty=r1"])) == [("r1", PENALTIES["r1"].default_weight)]
    preset = tmp_path / "p.yaml"
    preset.write_text("penalty: {use: [dragan:2], pixel_scale: unit}\n")
    cfg = load_config(preset, ["penalty=r1:3"])  # the shorthand replaces the list, keeps the other settings
    assert terms(cfg) == [("r1", 3.0)] and cfg.penalty.pixel_scale == "unit"
    (tmp_path / "resolved.yaml").write_text(dump_yaml(cfg))  # the resolved form reads back the same
    assert load_config(tmp_path / "resolved.yaml").penalty == cfg.penalty


def test_objective_sorts_penalties_by_kind_with_their_weights():
    cfg = load_config(None, ["loss=wgan", "penalty=r1,ortho:0.5,instance_noise,wgan_clip:0.2"])
    objective = Objective.from_config(cfg)
    assert [(p.name, w) for p, w in objective.of_kind("d_loss")] == [("r1", PENALTIES["r1"].default_weight)]
    assert [(p.name, w) for p, w in objective.of_kind("g_loss")] == [("ortho", 0.5)]
    assert cfg.augment.noise == PENALTIES["instance_noise"].default_weight  # instance noise moved to augment.noise
    assert objective.weight("wgan_clip") == 0.2 and objective.weight("l2") == 0


@pytest.mark.parametrize("overrides, message", [
    (["penalty=r3"], r"penalty.use\[0\]: unknown penalty 'r3'. Did you mean 'r[12]'\?.*Valid: dragan, instance_noise"),
    (["penalty=r1,r1:2"], r"penalty: r1 listed twice"),
    (["penalty=r1:-1"], r"penalty.use\[0\].weight must be > 0.0, got -1.0"),
    (["penalty=r1:"], r"penalty.use\[0\]: 'r1:' is not a penalty; give each penalty as name or name:weight"),
    (["penalty=l2,r1:"], r"penalty.use\[1\]: 'r1:' is not a penalty"),
    (["penalty=[r1:]"], r"'r1:' has no weight after the colon"),
    (["penalty=:1"], r"':1' is not a penalty"),
    (["penalty=r1:1:2"], r"'r1:1:2' is not a penalty"),
    (["penalty=r1:abc"], r"the weight of r1 must be float, got 'abc'"),
    (["penalty=[{name: r1, gain: 2}]"], r"is not a penalty"),
    (["penalty.name=r1"], r"penalty.name and penalty.weight were replaced by one list"),
    (["penalty.weight=1"], r"penalty=wgan_gp:1,l2:0.01 on the command line"),
    (["penalty.r1=1"], r"list penalties with their weights, e.g. penalty=r1:1"),
    (["penalty.pixel_scale=pixels"], r"penalty.pixel_scale: unknown choice 'pixels'.*Valid: data, unit"),
    (["g.norm=layer"], r"g.norm: 'layer' is a discriminator normalization; for the generator use one of: "
                       r"batch, none, spectral, weight"),
    (["d.norm=instance"], r"instance normalization needs spatial feature maps"),
    (["d.norm=group"], r"d.norm: unknown choice 'group'.*Valid: batch, instance, layer, none, spectral, weight"),
])
def test_invalid_landscape_configs_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


@pytest.mark.parametrize("overrides, message", [
    (["d.norm=batch", "penalty=wgan_gp"], "batch norm in the discriminator with a gradient penalty"),
    (["d.norm=batch", "penalty=r2"], "batch norm in the discriminator with a gradient penalty"),
    (["loss=wgan"], "unconstrained critic"),
    (["loss=wgan", "penalty=r1"], "unconstrained critic"),
    (["penalty=wgan_clip"], "wgan_clip is the Wasserstein critic's constraint"),
    (["penalty.noise_anneal_steps=100"], "has no effect without the instance_noise penalty"),
    (["penalty.pixel_scale=unit", "penalty=l2"], "has no effect without a gradient penalty"),
    (["penalty.lazy_interval=4", "penalty=wgan_gp"], "penalty.lazy_interval=4 has no effect: only r1, r2 are"),
])
def test_ill_advised_combinations_warn_but_load(overrides, message):
    with pytest.warns(ConfigWarning, match=message):
        load_config(None, overrides)


def test_sound_combinations_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigWarning)
        load_config(None, ["loss=wgan", "penalty=wgan_gp"])
        load_config(None, ["loss=wgan", "penalty=dragan"])
        load_config(None, ["loss=wgan", "penalty=wgan_clip"])
        load_config(None, ["loss=wgan", "d.norm=spectral"])
        load_config(None, ["d.norm=layer", "penalty=dragan", "penalty.pixel_scale=unit"])
        load_config(None, ["d.norm=batch", "penalty=l2"])
        load_config(None, ["penalty=r1,l2", "penalty.lazy_interval=16"])


def test_cli_prints_warnings_once_and_clearly(capsys):
    assert main(["config", "show", "loss=wgan"]) == 0
    assert "ganscape: warning: the wgan loss with an unconstrained critic" in capsys.readouterr().err


PENALTY_RUNS = [["penalty=wgan_gp"], ["penalty=dragan"], ["penalty=r1"], ["penalty=r2"],
                ["penalty=l2"], ["penalty=ortho"], ["penalty=instance_noise", "penalty.noise_anneal_steps=10"],
                ["loss=wgan", "penalty=wgan_clip"], ["d.norm=spectral", "penalty=r1,l2"],
                ["g.norm=weight", "d.norm=weight"], ["g.norm=batch", "d.norm=layer"]]


@pytest.mark.parametrize("extra", PENALTY_RUNS, ids=lambda e: " ".join(e))
def test_every_part_trains_and_logs_its_penalty(tiny, extra):
    cfg = load_config(None, tiny + ["train.steps=12", "eval.every=100", "log.samples_every=100"] + extra)
    run = RunDir.create(cfg)
    summary = train(cfg, run, progress=False)
    assert summary["step"] == 12
    logged = [row for row in read_metrics(run) if "d_loss" in row][-1]
    for penalty, _ in Objective.from_config(cfg).penalties:
        if penalty.kind in ("d_loss", "g_loss"):
            assert f"penalty/{penalty.name}" in logged and logged[f"penalty/{penalty.name}"] >= 0


def test_wgan_clip_keeps_every_discriminator_weight_in_bounds(tiny):
    cfg = load_config(None, tiny + ["train.steps=10", "loss=wgan", "penalty=wgan_clip:0.02"])
    run = RunDir.create(cfg)
    train(cfg, run, progress=False)
    D = load_checkpoint(run.latest_checkpoint()[1])["D"]
    assert max(t.abs().max().item() for t in D.values()) <= 0.02 + 1e-7


def test_penalty_changes_the_trajectory(tiny):
    finals = []
    for name, extra in (("plain", []), ("gp", ["penalty=wgan_gp"])):
        cfg = load_config(None, tiny + ["train.steps=5", f"run.name={name}"] + extra)
        run = RunDir.create(cfg)
        train(cfg, run, progress=False)
        finals.append(load_checkpoint(run.latest_checkpoint()[1])["D"])
    assert not all(torch.equal(finals[0][k], finals[1][k]) for k in finals[0])


def test_resume_with_penalties_and_noise_is_bit_identical(tiny):
    extra = ["penalty=wgan_gp:1,instance_noise:0.1", "d.norm=spectral",
             "g.norm=weight", "train.steps=20"]
    states = []
    for name, until in (("straight", None), ("halves", 10)):
        cfg = load_config(None, tiny + extra + [f"run.name={name}"])
        run = RunDir.create(cfg)
        train(cfg, run, progress=False, until=until)
        if until:
            train(cfg, run, resume=True, progress=False)
        states.append(load_checkpoint(run.latest_checkpoint()[1]))
    for net in ("G", "D"):
        for key in states[0][net]:
            assert torch.equal(states[0][net][key], states[1][net][key]), f"{net}.{key}"


def test_unit_pixel_scale_needs_image_data(tiny):
    cfg = load_config(None, tiny + ["penalty=r1", "penalty.pixel_scale=unit"])
    with pytest.raises(ConfigError, match="pixel_scale=unit measures gradient penalties on images in \\[0, 1\\]; "
                                          "ring8 is not image data"):
        train(cfg, RunDir.create(cfg), progress=False)
