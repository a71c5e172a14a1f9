"""Plugins own their settings: architecture and metric settings in the config, migrations of older configs,
and a metric registered at runtime going through the config, the Evaluator and the protocol."""

from __future__ import annotations

import ast
import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

import ganscape.config
from ganscape.cli import main
from ganscape.config import (MIGRATIONS, DataConfig, Experiment, MetricsConfig, dump_yaml, from_dict, load_config,
                             migrate, to_dict)
from ganscape.data.images import InMemoryImages
from ganscape.errors import ConfigError
from ganscape.hub import PretrainedGenerator, load_generator, model_config
from ganscape.metrics import BETTER, METRICS, VALUES, Metric
from ganscape.metrics.evaluate import Evaluator, write_result
from ganscape.metrics.kid import KIDSettings
from ganscape.nets import ModelSpec, build_generator
from ganscape.nets.biggan import BigGANSettings
from random_inception import smooth_images

# The biggan section every config of the landed version carried (its BigGANConfig defaults), whatever the arch.
LANDED_BIGGAN = {"attention": [64], "shared_dim": 128, "hierarchical": True, "init": "ortho", "sn_eps": 1e-6,
                 "bn_eps": 1e-5}
# Its flat metric settings, each set away from its default so that every move is seen.
LANDED_METRICS = {"inception_weights": "", "inception_input": "tf", "batch_size": 0, "cache_dir": "", "is_splits": 7,
                  "kid_subsets": 50, "kid_subset_size": 500, "pr_k": 5, "msssim_batch": 8, "msssim_batches": 3,
                  "recon_images": 20, "recon_steps": 9, "recon_lr": 0.05, "recon_restarts": 2}


def landed_config(arch: str = "mlp", biggan: dict | None = None) -> dict:
    """A config as the landed version wrote it into config.yaml (``dataclasses.asdict`` of its Experiment):
    a ``biggan`` section in both networks and flat metric keys."""
    tree = to_dict(Experiment())
    for net in ("g", "d"):
        tree[net] = {"arch": arch, "width": 256, "depth": 2, "norm": "none",
                     "biggan": dict(LANDED_BIGGAN, **(biggan or {}))}
    tree["metrics"] = dict(LANDED_METRICS)
    return tree


def check_moved_metric_settings(cfg: Experiment) -> None:
    """Every old flat metric key landed in its metric's section (hand values of LANDED_METRICS)."""
    sections = cfg.metrics.per_metric
    assert sections["is"].splits == 7 and sections["pr"].k == 5
    assert (sections["kid"].subsets, sections["kid"].subset_size) == (50, 500)
    assert (sections["msssim"].batch, sections["msssim"].batches) == (8, 3)
    assert (sections["recon"].images, sections["recon"].steps, sections["recon"].lr, sections["recon"].restarts) \
        == (20, 9, 0.05, 2)


# ---------------------------------------------------------------- migrations


def test_a_biggan_run_directory_of_the_landed_version_loads(tmp_path):
    """A run dir whose config.yaml has g.biggan/d.biggan and flat metric keys resolves with the values in
    g.settings and metrics.<metric>.*; as a checkpoint's stored config (``from_dict``) too."""
    old = landed_config("biggan", {"attention": [32], "init": "N02"})
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(old, sort_keys=False))
    for cfg in (load_config(run), from_dict(copy.deepcopy(old))):
        assert cfg.g.settings == BigGANSettings(attention=[32], init="N02")
        assert cfg.d.settings == BigGANSettings(attention=[32], init="N02")
        check_moved_metric_settings(cfg)
    assert yaml.safe_load((run / "config.yaml").read_text()) == old  # read, never rewritten


def test_an_mlp_config_drops_the_default_biggan_section_and_writes_none():
    """An MLP's old config carries the default biggan section: it is dropped; today's YAML has no settings."""
    cfg = from_dict(landed_config("mlp"))
    assert cfg.g.settings is None and cfg.d.settings is None
    dumped = yaml.safe_load(dump_yaml(cfg))
    assert "settings" not in dumped["g"] and "biggan" not in dumped["g"]
    assert set(dumped["metrics"]) == {"inception_weights", "inception_input", "batch_size", "cache_dir", "is", "kid",
                                      "pr", "msssim", "recon", "digits"}
    assert from_dict(dumped) == cfg


def test_an_exported_mlp_model_of_the_landed_version_loads(tmp_path):
    """config.json with a biggan section in both networks and an old provenance config loads; a new export
    carries only the chosen architecture's settings."""
    cfg = load_config(None, ["latent.dim=4", "g.width=8", "d.width=8"])
    spec = ModelSpec((2,), latent_dim=4)
    config = model_config(cfg, spec, 10, "ema", "run", None)
    assert "settings" not in config["network"] and "settings" not in config["discriminator"]["network"]
    out = PretrainedGenerator(build_generator(cfg.g, spec), spec, config, "run").save_pretrained(tmp_path / "m")
    old = json.loads((out / "config.json").read_text())
    for network in (old["network"], old["discriminator"]["network"]):
        network["biggan"] = dict(LANDED_BIGGAN)
    old["provenance"]["config"] = landed_config("mlp") | {"latent": {"dim": 4, "dist": "normal"}}
    (out / "config.json").write_text(json.dumps(old))
    loaded = load_generator(out)
    assert torch.equal(loaded.sample(3, seed=1), PretrainedGenerator.from_pretrained(out).sample(3, seed=1))
    check_moved_metric_settings(ganscape.config.resolve(loaded.config["provenance"]["config"]))
    biggan = load_config(None, ["g.arch=biggan", "g.settings.attention=[32]"])
    assert model_config(biggan, spec, 1, "ema", "run", None)["network"]["settings"] == \
        {"attention": [32], "shared_dim": 128, "hierarchical": True, "init": "ortho", "sn_eps": 1e-6, "bn_eps": 1e-5}


def test_old_dotted_overrides_keep_working_and_the_last_layer_wins(tmp_path):
    """g.biggan.attention=[32] sets g.settings.attention; metrics.kid_subsets=7 sets metrics.kid.subsets; an old
    key on the command line overrides the new key of a preset."""
    cfg = load_config(None, ["g.arch=biggan", "g.biggan.attention=[32]", "metrics.kid_subsets=7"])
    assert cfg.g.settings.attention == [32] and cfg.metrics.kid.subsets == 7
    preset = tmp_path / "p.yaml"
    preset.write_text("g: {arch: biggan, settings: {attention: [16]}}\nmetrics: {kid: {subsets: 3}}\n")
    cfg = load_config(preset, ["g.biggan.attention=[32]", "metrics.kid_subsets=9"])
    assert cfg.g.settings.attention == [32] and cfg.metrics.kid.subsets == 9


def test_every_migration_is_idempotent_and_leaves_its_input_alone():
    """m(m(old)) == m(old), m(today's) == today's, and the input is unchanged (a deep copy compared)."""
    today = to_dict(load_config(None, ["g.arch=biggan"]))
    for tree in (landed_config("biggan", {"attention": [32]}), landed_config("mlp"), today):
        before = copy.deepcopy(tree)
        for migration in MIGRATIONS:
            once = migration(tree)
            assert migration(once) == once
            assert tree == before
    assert migrate(today) == today


# ---------------------------------------------------------------- architecture settings


def test_settings_keys_are_checked_against_the_chosen_architecture():
    """An mlp has no settings; a biggan's unknown key gets did-you-mean and the list of its keys."""
    with pytest.raises(ConfigError, match="g.settings: mlp has no settings"):
        load_config(None, ["g.settings.attention=[32]"])
    with pytest.raises(ConfigError, match=r"'g.settings.atention'. Did you mean 'g.settings.attention'.*"
                                          r"settings of biggan: attention, shared_dim"):
        load_config(None, ["g.arch=biggan", "g.settings.atention=[32]"])
    with pytest.raises(ConfigError, match=r"g.settings.init: unknown choice 'n02'. Did you mean 'N02'"):
        load_config(None, ["g.arch=biggan_deep", "g.settings.init=n02"])
    cfg = load_config(None, ["g.arch=biggan", "d.arch=biggan_deep"])
    assert cfg.g.settings == BigGANSettings() and cfg.d.settings == BigGANSettings()


def test_config_keys_lists_each_architectures_settings(capsys):
    """``ganscape config keys g.settings`` names the architectures that read each key."""
    assert main(["config", "keys", "g.settings"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    biggan, gan_stability = lines[:len(LANDED_BIGGAN)], lines[len(LANDED_BIGGAN):]
    assert [line.split()[0] for line in biggan] == [f"g.settings.{f}" for f in LANDED_BIGGAN]
    assert all("biggan, biggan_deep:" in line for line in biggan)
    assert [line.split()[0] for line in gan_stability] == ["g.settings.nfilter_max", "g.settings.embed_size"]
    assert all("gs_resnet, gs_resnet2, gs_resnet3, gs_resnet4:" in line for line in gan_stability)


@dataclass
class ToyNetSettings:
    gain: float = field(default=1.0, metadata={"above": 0.0, "help": "the output's factor"})


def test_an_architecture_registered_at_runtime_brings_its_settings(monkeypatch):
    """One registration line: g.settings.gain is validated, listed (with its architecture) and written."""
    from ganscape.nets import ARCHITECTURES, Architecture

    toy = Architecture(ARCHITECTURES["mlp"].generator, ARCHITECTURES["mlp"].discriminator, "a toy", ToyNetSettings)
    monkeypatch.setitem(ARCHITECTURES, "toy", toy)
    cfg = load_config(None, ["g.arch=toy", "g.settings.gain=3"])
    assert cfg.g.settings == ToyNetSettings(3.0) and cfg.d.settings is None
    assert to_dict(cfg)["g"]["settings"] == {"gain": 3.0}
    with pytest.raises(ConfigError, match="g.settings.gain must be > 0.0"):
        load_config(None, ["g.arch=toy", "g.settings.gain=0"])
    with pytest.raises(ConfigError, match="architectures with settings: biggan, biggan_deep, gs_resnet, gs_resnet2, gs_resnet3, gs_resnet4, toy"):
        load_config(None, ["g.settings.gain=3"])
    keys = {row.key: row.help for row in ganscape.config.describe_keys()}
    assert keys["g.settings.gain"] == "toy: the output's factor"


# ---------------------------------------------------------------- metrics


@dataclass
class ToySettings:
    scale: float = field(default=1.0, metadata={"above": 0.0, "help": "toy: the factor"})


def toy_metric(scoring, settings: ToySettings) -> dict[str, float]:
    samples = torch.cat(list(scoring.samples(scoring.evaluator.num_samples)))
    return {"toy_mean": settings.scale * float(samples.mean()), "toy_std": float(samples.std())}


class Constant(nn.Module):
    """A generator of images that are all 0.25."""

    def forward(self, z, y=None):
        return torch.full((len(z), 3, 8, 8), 0.25)


def test_a_metric_registered_at_runtime_is_configured_evaluated_and_recorded(monkeypatch):
    """One registration: metrics.toy.scale is a validated key, BETTER/VALUES know toy's values, the Evaluator
    computes it (2 x 0.25 = 0.5 for a constant 0.25 generator) and writes its protocol."""
    toy = Metric("a toy", {"toy_mean": "min", "toy_std": None}, toy_metric, ToySettings,
                 protocol=lambda evaluator, settings: {"scale": settings.scale})
    monkeypatch.setitem(METRICS, "toy", toy)
    cfg = load_config(None, ["metrics.toy.scale=2", "eval.metrics=[toy]", "checkpoint.keep_best=toy_mean"])
    assert cfg.metrics.toy == ToySettings(2.0)
    with pytest.raises(ConfigError, match="'metrics.toy.scael'.*Did you mean 'metrics.toy.scale'"):
        load_config(None, ["metrics.toy.scael=2"])
    with pytest.raises(ConfigError, match="metrics.toy.scale must be > 0.0"):
        load_config(None, ["metrics.toy.scale=0"])
    assert BETTER["toy_mean"] == "min" and "toy_std" not in BETTER and VALUES["toy"] == ("toy_mean", "toy_std")
    data = InMemoryImages(smooth_images(6, 8, 8, 0), name="tiny")
    evaluator = Evaluator(["toy"], data, DataConfig(name="tiny"), latent_dim=4, num_samples=6, settings=cfg.metrics)
    assert evaluator(Constant()) == {"toy_mean": pytest.approx(0.5), "toy_std": 0.0}
    assert evaluator.protocol()["toy"] == {"scale": 2.0}
    # settings made before the metric existed: its defaults
    assert Evaluator(["toy"], data, DataConfig(name="tiny"), latent_dim=4, num_samples=6,
                     settings=MetricsConfig(per_metric={}))(Constant())["toy_mean"] == pytest.approx(0.25)


def test_the_protocol_keeps_the_names_older_results_were_written_with(tmp_path):
    """A result file written by the landed version (its msssim protocol written out by hand) is comparable with
    today's: write_result keeps no second file. KID's part has the landed names too."""
    data = InMemoryImages(smooth_images(6, 8, 8, 0), name="tiny")
    settings = from_dict({"msssim": {"batch": 4, "batches": 2}}, MetricsConfig)
    evaluator = Evaluator(["msssim"], data, DataConfig(name="tiny"), latent_dim=4, num_samples=6, settings=settings)
    protocol = evaluator.protocol()
    landed = {key: value for key, value in protocol.items() if key != "msssim"}
    landed["msssim"] = {"batch": 4, "batches": 2, "pairs": "all pairs per batch"}
    path = tmp_path / "step_1.json"
    path.write_text(json.dumps({"step": 1, "values": {"msssim": 0.5}, "protocol": landed}))
    assert write_result(path, {"step": 1, "values": {"msssim": 0.4}, "protocol": protocol})[1] is None
    kid = METRICS["kid"].protocol(evaluator, KIDSettings(subsets=3, subset_size=4))
    assert kid == {"subsets": 3, "subset_size": 4, "subset_size_asked": 4, "kernel": "(x.y / d + 1)^3"}


# ---------------------------------------------------------------- import structure


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module} | \
        {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}


def test_the_schema_imports_no_other_config_module_but_coerce():
    """schema <-> values was a cycle: schema imports (at any level) only coerce from its package, and coerce
    nothing of ganscape but its errors."""
    package = Path(ganscape.config.__file__).parent
    assert {m for m in _imports(package / "schema.py") if m.startswith("ganscape.config")} == {"ganscape.config.coerce"}
    assert {m for m in _imports(package / "coerce.py") if m.startswith("ganscape.")} == {"ganscape.errors"}
