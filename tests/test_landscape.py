"""Penalties and normalizations wired through config into training, and the landscape grid."""

import csv
import warnings

import pytest
import torch

from ganscape.cli import main
from ganscape.config import load_config
from ganscape.errors import ConfigError, ConfigWarning
from ganscape.objectives.penalties import PENALTIES
from ganscape.training.checkpoint import load_checkpoint
from ganscape.training.loop import Regularizers, train
from ganscape.training.run import RunDir, read_metrics


def test_penalty_config_lists_and_defaults():
    cfg = load_config(None, ["penalty.name=wgan_gp,l2", "penalty.weight=1,0.01"])
    assert cfg.penalty.name == ["wgan_gp", "l2"] and cfg.penalty.weight == [1.0, 0.01]
    assert load_config(None, ["penalty.name=none"]).penalty.name == []
    reg = Regularizers.from_config(load_config(None, ["loss=wgan", "penalty.name=r1,ortho,instance_noise,wgan_clip"]))
    assert reg.d_terms == (("r1", PENALTIES["r1"].default_weight),)
    assert reg.g_terms == (("ortho", PENALTIES["ortho"].default_weight),)
    assert reg.noise_std == PENALTIES["instance_noise"].default_weight
    assert reg.clip == PENALTIES["wgan_clip"].default_weight


@pytest.mark.parametrize("overrides, message", [
    (["penalty.name=r3"], r"penalty.name: unknown choice 'r3'. Did you mean 'r[12]'\?.*Valid: dragan, instance_noise"),
    (["penalty.name=r1,r2", "penalty.weight=1"], r"penalty.weight has 1 values for 2 penalties"),
    (["penalty.name=r1,r1"], r"lists a penalty twice"),
    (["penalty.name=r1", "penalty.weight=-1"], r"penalty.weight must be > 0.0, got -1.0"),
    (["g.norm=spectral"], r"g.norm: 'spectral' is a discriminator normalization; for the generator use one of: "
                          r"batch, none, weight"),
    (["d.norm=instance"], r"instance normalization needs spatial feature maps"),
    (["d.norm=group"], r"d.norm: unknown choice 'group'.*Valid: batch, instance, layer, none, spectral, weight"),
])
def test_invalid_landscape_configs_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


@pytest.mark.parametrize("overrides, message", [
    (["d.norm=batch", "penalty.name=wgan_gp"], "batch norm in the discriminator with a gradient penalty"),
    (["loss=wgan"], "unconstrained critic"),
    (["penalty.name=wgan_clip"], "wgan_clip is the Wasserstein critic's constraint"),
    (["penalty.noise_anneal_steps=100"], "has no effect without penalty.name=instance_noise"),
])
def test_ill_advised_combinations_warn_but_load(overrides, message):
    with pytest.warns(ConfigWarning, match=message):
        load_config(None, overrides)


def test_sound_combinations_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigWarning)
        load_config(None, ["loss=wgan", "penalty.name=wgan_gp"])
        load_config(None, ["loss=wgan", "d.norm=spectral"])
        load_config(None, ["d.norm=layer", "penalty.name=dragan"])


def test_cli_prints_warnings_once_and_clearly(capsys):
    assert main(["config", "show", "loss=wgan"]) == 0
    assert "ganscape: warning: the wgan loss with an unconstrained critic" in capsys.readouterr().err


PENALTY_RUNS = [["penalty.name=wgan_gp"], ["penalty.name=dragan"], ["penalty.name=r1"], ["penalty.name=r2"],
                ["penalty.name=l2"], ["penalty.name=ortho"], ["penalty.name=instance_noise",
                                                              "penalty.noise_anneal_steps=10"],
                ["loss=wgan", "penalty.name=wgan_clip"], ["d.norm=spectral", "penalty.name=r1,l2"],
                ["g.norm=weight", "d.norm=weight"], ["g.norm=batch", "d.norm=layer"]]


@pytest.mark.parametrize("extra", PENALTY_RUNS, ids=lambda e: " ".join(e))
def test_every_part_trains_and_logs_its_penalty(tiny, extra):
    cfg = load_config(None, tiny + ["train.steps=12", "eval.every=100", "log.samples_every=100"] + extra)
    run = RunDir.create(cfg)
    summary = train(cfg, run, progress=False)
    assert summary["step"] == 12
    logged = [row for row in read_metrics(run) if "d_loss" in row][-1]
    for name, _ in Regularizers.from_config(cfg).d_terms + Regularizers.from_config(cfg).g_terms:
        assert f"penalty/{name}" in logged and logged[f"penalty/{name}"] >= 0


def test_wgan_clip_keeps_every_discriminator_weight_in_bounds(tiny):
    cfg = load_config(None, tiny + ["train.steps=10", "loss=wgan", "penalty.name=wgan_clip", "penalty.weight=0.02"])
    run = RunDir.create(cfg)
    train(cfg, run, progress=False)
    D = load_checkpoint(run.latest_checkpoint()[1])["D"]
    assert max(t.abs().max().item() for t in D.values()) <= 0.02 + 1e-7


def test_penalty_changes_the_trajectory(tiny):
    finals = []
    for name, extra in (("plain", []), ("gp", ["penalty.name=wgan_gp"])):
        cfg = load_config(None, tiny + ["train.steps=5", f"run.name={name}"] + extra)
        run = RunDir.create(cfg)
        train(cfg, run, progress=False)
        finals.append(load_checkpoint(run.latest_checkpoint()[1])["D"])
    assert not all(torch.equal(finals[0][k], finals[1][k]) for k in finals[0])


def test_resume_with_penalties_and_noise_is_bit_identical(tiny):
    extra = ["penalty.name=wgan_gp,instance_noise", "penalty.weight=1,0.1", "d.norm=spectral",
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


def test_grid_end_to_end(tmp_path, capsys):
    out = tmp_path / "grid"
    code = main(["grid", "train.batch_size=64", "g.width=32", "d.width=32", "eval.samples=500",
                 "--losses", "ns,hinge", "--penalties", "none,r1:0.5", "--norms", "none,spectral",
                 "--seeds", "2", "--steps", "8", "--workers", "1", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| ns | r1:0.5 | spectral |" in printed
    with open(out / "grid.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * 2 * 2
    assert {(r["loss"], r["penalty"], r["norm"]) for r in rows} == {
        (loss, p, n) for loss in ("ns", "hinge") for p in ("none", "r1:0.5") for n in ("none", "spectral")}
    assert all(r["status"] == "ok" and 0 <= int(r["modes_covered"]) <= 8 for r in rows)
    # The cell's weight reached the run's config.
    r1_run = next(r["run_dir"] for r in rows if r["penalty"] == "r1:0.5")
    assert load_config(f"{r1_run}/config.yaml").penalty.weight == [0.5]
    assert (out / "grid.md").read_text().count("\n") == 2 + 8
    assert (out / "grid.png").stat().st_size > 10_000


def test_grid_validates_every_cell_before_training(tmp_path, capsys):
    assert main(["grid", "--losses", "ns", "--penalties", "r1,nope", "--norms", "none",
                 "--out", str(tmp_path / "g")]) == 2
    assert "grid cell ns-nope-none" in capsys.readouterr().err
    assert not (tmp_path / "g" / "runs").exists()
