"""Config loading, overrides and validation errors."""

import pytest

from ganscape.config import Experiment, all_keys, dump_yaml, load_config, parse_overrides
from ganscape.errors import ConfigError


def test_defaults_are_the_default_job():
    cfg = load_config()
    assert cfg == Experiment()
    assert (cfg.loss, cfg.data.name) == ("ns", "ring8")


def test_overrides_are_typed():
    cfg = load_config(None, ["train.steps=5000", "loss=hinge", "g_opt.lr=1e-4", "log.tensorboard=false",
                             "train.ema=0"])
    assert cfg.train.steps == 5000 and isinstance(cfg.train.steps, int)
    assert cfg.loss == "hinge"
    assert cfg.g_opt.lr == 1e-4 and isinstance(cfg.g_opt.lr, float)  # YAML reads "1e-4" as a string
    assert cfg.log.tensorboard is False
    assert cfg.train.ema == 0.0


def test_preset_then_overrides(tmp_path):
    preset = tmp_path / "p.yaml"
    preset.write_text("loss: hinge\ntrain:\n  steps: 10\n  batch_size: 32\n")
    cfg = load_config(preset, ["train.steps=20"])
    assert (cfg.loss, cfg.train.steps, cfg.train.batch_size) == ("hinge", 20, 32)


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(None, ["loss=ls", "d_opt.lr=3e-4", "latent.dist=uniform"])
    path = tmp_path / "config.yaml"
    path.write_text(dump_yaml(cfg))
    assert load_config(path) == cfg


def test_shipped_presets_load():
    import pathlib

    presets = sorted(pathlib.Path(__file__).resolve().parents[1].joinpath("configs").glob("*.yaml"))
    assert presets
    for preset in presets:
        load_config(preset)


def test_unknown_key_suggests_closest():
    with pytest.raises(ConfigError, match=r"unknown config key 'trian.steps'.*'train.steps'"):
        load_config(None, ["trian.steps=10"])
    with pytest.raises(ConfigError, match=r"'train.batch_size'"):
        load_config(None, ["train.batchsize=10"])
    # A leaf name alone points at the full key.
    with pytest.raises(ConfigError, match=r"unknown config key 'steps'.*'train.steps'"):
        load_config(None, ["steps=10"])


def test_unknown_choice_lists_valid_ones():
    with pytest.raises(ConfigError, match=r"loss: unknown choice 'hinj'. Did you mean 'hinge'\? "
                                          r"Valid: hinge, ls, minimax, ns, wgan"):
        load_config(None, ["loss=hinj"])
    with pytest.raises(ConfigError, match=r"g_opt.name: unknown choice 'sgd'.*Valid: adam, rmsprop"):
        load_config(None, ["g_opt.name=sgd"])
    with pytest.raises(ConfigError, match=r"data.name: unknown choice 'ring9'.*grid25, .*ring8"):
        load_config(None, ["data.name=ring9"])


@pytest.mark.parametrize("override, message", [
    ("g_opt.lr=-1e-4", r"g_opt.lr must be > 0.0"),
    ("train.batch_size=0", r"train.batch_size must be >= 1"),
    ("train.ema=1", r"train.ema must be < 1.0"),
    ("d_opt.beta2=1.5", r"d_opt.beta2 must be < 1.0"),
    ("train.n_disc=0", r"train.n_disc must be >= 1"),
])
def test_out_of_range_values_are_refused(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_all_problems_are_reported_at_once():
    with pytest.raises(ConfigError) as err:
        load_config(None, ["g_opt.lr=0", "train.batch_size=0", "loss=nope"])
    assert all(s in str(err.value) for s in ("g_opt.lr", "train.batch_size", "loss"))


@pytest.mark.parametrize("override, message", [
    ("train.steps=ten", r"train.steps must be int, got 'ten'"),
    ("train.steps=2.5", r"train.steps must be int"),
    ("g_opt.lr=fast", r"g_opt.lr must be float"),
    ("log.tensorboard=maybe", r"log.tensorboard must be bool"),
    ("train=5", r"train must be a mapping"),
])
def test_wrong_types_are_refused(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_malformed_override():
    with pytest.raises(ConfigError, match="must look like key=value"):
        parse_overrides(["train.steps"])


def test_missing_preset_says_where_it_looked():
    with pytest.raises(ConfigError, match=r"preset 'nope' not found \(looked at: .*configs/nope.yaml"):
        load_config("nope")


def test_bad_yaml_is_reported_with_its_path(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("loss: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml is not valid YAML"):
        load_config(bad)


def test_all_keys_are_dotted_leaves():
    keys = all_keys()
    assert "train.steps" in keys and "g_opt.lr" in keys and "loss" in keys
    assert "train" not in keys


def test_ring8_preset_is_the_default_job():
    import pathlib

    preset = pathlib.Path(__file__).resolve().parents[1] / "configs" / "ring8.yaml"
    assert load_config(preset) == Experiment()
