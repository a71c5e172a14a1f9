"""Searched penalty weights (``penalty.<name>.weight``), per-group spaces, and the built-in spaces against the
GAN Landscape's (compare_gan v2 ``params.py``)."""

from __future__ import annotations

import pytest
import torch
import yaml
from scipy.stats import qmc
from torch import nn

from ganscape.config import dump_yaml, load_config
from ganscape.errors import ConfigError
from ganscape.nets import sample_latent
from ganscape.objectives.d_input import DInput
from ganscape.objectives.objective import Objective
from ganscape.study.engine import StudyDir, create, example_params, grid_points, load_studies, sobol_points
from ganscape.study.spec import BUILTIN_SPACES, parse_spec
from ganscape.training.optim import OPTIMIZERS
from ganscape.training.state import GANState
from ganscape.training.step import train_step

pytestmark = pytest.mark.filterwarnings("ignore::ganscape.errors.ConfigWarning")  # wgan without a constraint

LAMBDA = {"lambda": {"log_uniform": [0.1, 100.0], "keys": ["penalty.wgan_gp.weight", "penalty.dragan.weight"]}}
SPEC = {
    "name": "spaces",
    "base": "ring8_grid",
    "overrides": ["train.steps=20"],
    "groups": {"loss": ["ns", "hinge"], "penalty": ["none", "wgan_gp:1", "dragan"]},
    "space": [{"g_opt.lr": {"log_uniform": [1e-4, 1e-2]}}, LAMBDA],
    "group_spaces": [{"groups": {"loss": ["hinge"], "penalty": ["wgan_gp:1", "dragan"]},
                      "space": {"d.width": {"categorical": [16, 32]}}}],
    "trials": 3,
    "sampler": {"name": "sobol", "seed": 5},
    "objective": "js_to_target",
}


def names(params) -> list[str]:
    return sorted(p.name for p in params)


# ---------------------------------------------------------------- penalty.<name>.weight in configs


def test_a_penalty_weight_key_sets_the_weight_of_its_term_in_overrides_settings_and_presets(tmp_path):
    """Each form gives the same ``penalty.use``; config.yaml shows the weight there, and no other key."""
    by_override = load_config(None, ["penalty=wgan_gp,r1:0.1", "penalty.wgan_gp.weight=10"])
    by_setting = load_config(None, settings={"penalty": "wgan_gp:1,r1:0.1", "penalty.wgan_gp.weight": 10.0})
    preset = tmp_path / "preset.yaml"
    preset.write_text("penalty: {use: [wgan_gp, r1:0.1], wgan_gp: {weight: 10}}\n")
    assert [(t.name, t.weight) for t in by_override.penalty.use] == [("wgan_gp", 10.0), ("r1", 0.1)]
    assert by_setting == by_override == load_config(preset)
    # the preset's term, the command line's weight (the layers merge first); the default job's r1 alone
    assert load_config(preset, ["penalty.r1.weight=3"]).penalty.use[1].weight == 3.0
    assert load_config(None, ["penalty.r1.weight=0.5"]).penalty.use[0].weight == 0.5
    written = yaml.safe_load(dump_yaml(by_override))["penalty"]
    assert set(written) == {"use", "pixel_scale", "lazy_interval"}  # no penalty.<name> key is written back
    assert written["use"] == [{"name": "wgan_gp", "weight": 10.0}, {"name": "r1", "weight": 0.1}]


@pytest.mark.parametrize("overrides, message", [
    (["penalty.wgan_gp.weight=10"],
     "penalty.wgan_gp.weight: wgan_gp is not in penalty.use (r1:0.1); add it with penalty=wgan_gp:W."),
    (["penalty=none", "penalty.dragan.weight=1"], "dragan is not in penalty.use (none); add it with penalty=dragan:W."),
    (["penalty.wgan_pg.weight=1"], "penalty.wgan_pg.weight: unknown penalty 'wgan_pg'. Did you mean "
                                   "'penalty.wgan_gp.weight'? Valid: dragan, l2, ortho, r1, r2, wgan_clip, wgan_gp."),
    (["penalty.instance_noise.weight=0.2"], "instance_noise transforms D's inputs, and a run's config holds it in "
                                            "augment.* (instance noise: augment.noise=STD)."),
    (["penalty.r1.weight=0"], "penalty.r1.weight must be > 0, got 0.0 (it is r1's lambda; to turn r1 off, leave it "
                              "out of penalty.use)."),
    (["penalty.r1.weight=-2"], "penalty.r1.weight must be > 0, got -2.0"),
    (["penalty.r1.weight=big"], "penalty.r1.weight must be float, got 'big'"),
    (["penalty.r1.size=2"], "penalty.r1: a penalty's only key is its weight (penalty.r1.weight=W), not size."),
    (["penalty={r1: {}}"], "penalty.r1: a penalty's only key is its weight (penalty.r1.weight=W)."),
    (["penalty.r1=2"], "penalty.r1.weight=W sets the weight of a penalty in use."),
])
def test_a_wrong_penalty_weight_key_says_what_to_do(overrides, message):
    with pytest.raises(ConfigError) as err:
        load_config(None, overrides)
    assert message in str(err.value)


# ---------------------------------------------------------------- a searched lambda reaches the step


class Blobs:
    """2-D points around (1, -1), drawn only from the given generator."""

    name, shape, num_classes = "blobs", (2,), 0

    def sample(self, n, generator):
        points = 0.7 * torch.randn(n, 2, generator=generator) + torch.tensor([1.0, -1.0])
        return points, torch.zeros(n, dtype=torch.long)


class QuadraticD(nn.Module):
    """D(x) = a.x + b + q/2 |x|^2: its input gradient depends on where it is taken."""

    def __init__(self):
        super().__init__()
        self.linear, self.q = nn.Linear(2, 1), nn.Parameter(torch.tensor(0.3))

    def forward(self, x, y=None):
        return self.linear(x).squeeze(1) + 0.5 * self.q * x.square().sum(dim=1)


class LinearG(nn.Module):
    def __init__(self, latent):
        super().__init__()
        self.layer = nn.Linear(latent, 2)

    def forward(self, z, y=None):
        return self.layer(z)


def twin(rng: torch.Generator) -> torch.Generator:
    copy = torch.Generator()
    copy.set_state(rng.get_state())
    return copy


def one_step(cfg):
    """(D's gradient at its one update, the step's logged values, copies of the streams before the step) for
    networks seeded alike, so that configs that differ in the penalty weight see the same batches."""
    torch.manual_seed(0)
    G, D = LinearG(cfg.latent.dim), QuadraticD()
    rngs = [torch.Generator().manual_seed(seed) for seed in (11, 12, 13)]
    copies = [twin(rng) for rng in rngs]
    opt_d = OPTIMIZERS[cfg.d_opt.name](D.parameters(), cfg.d_opt)
    state = GANState(G, D, OPTIMIZERS[cfg.g_opt.name](G.parameters(), cfg.g_opt), opt_d, None, *rngs,
                     d_input=DInput.from_config(cfg.augment, images=False))
    grads, step = [], opt_d.step

    def recording_step(*args, **kwargs):
        grads.append({name: p.grad.detach().clone() for name, p in D.named_parameters()})
        return step(*args, **kwargs)

    opt_d.step = recording_step
    G0, D0 = LinearG(cfg.latent.dim), QuadraticD()
    G0.load_state_dict(G.state_dict()), D0.load_state_dict(D.state_dict())
    stats = train_step(state, Blobs(), Objective.from_config(cfg), cfg)
    return grads, stats, copies, G0, D0


@pytest.mark.usefixtures("float64")
def test_a_searched_lambda_is_the_weight_of_the_penalty_in_the_trained_step():
    """A trial with lambda=37 in a wgan_gp group gives penalty.use == [wgan_gp:37], and its D update's gradient
    minus that of the same trial without the penalty is 37 x the gradient of R = mean (|grad_x D(x_hat)| - 1)^2.

    Independent value: R written out here on the step's batch, replayed from copies of its random streams
    (reals, latents, then the interpolation's alpha ~ U[0, 1] per sample), differentiated by autograd; the
    step's logged penalty/wgan_gp is that same R."""
    spec = parse_spec(SPEC | {"overrides": ["train.batch_size=16", "latent.dim=3", "train.ema=0"],
                              "groups": {"penalty": ["none", "wgan_gp:1"]}, "group_spaces": None}, "spec")
    params = {"g_opt.lr": 1e-3, "lambda": 37.0}
    cfg = spec.trial_config({"penalty": "wgan_gp:1"}, params, seed=0)
    assert [(t.name, t.weight) for t in cfg.penalty.use] == [("wgan_gp", 37.0)]
    without = spec.trial_config({"penalty": "none"}, params, seed=0)
    assert without.penalty.use == []  # lambda does not reach a group without wgan_gp

    (with_grads,), stats, (data_rng, latent_rng, noise_rng), G, D = one_step(cfg)
    (without_grads,), *_ = one_step(without)
    real, _ = Blobs().sample(cfg.train.batch_size, data_rng)
    fake = G(sample_latent(cfg.train.batch_size, cfg.latent.dim, cfg.latent.dist, latent_rng, "cpu")).detach()
    alpha = torch.rand(cfg.train.batch_size, 1, generator=noise_rng)
    x_hat = (real + alpha * (fake - real)).requires_grad_(True)
    (grad_x,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
    penalty = (grad_x.norm(dim=1) - 1).square().mean()
    expected = dict(zip([name for name, _ in D.named_parameters()], torch.autograd.grad(penalty, list(D.parameters()),
                                                                                        materialize_grads=True)))
    torch.testing.assert_close(stats["penalty/wgan_gp"], penalty.detach(), rtol=1e-12, atol=1e-14)
    for name, grad in expected.items():
        torch.testing.assert_close(with_grads[name] - without_grads[name], 37.0 * grad, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- per-group spaces


def test_params_for_gives_each_group_its_own_parameters():
    """The penalty weight only where the group uses that penalty (and only that penalty's key); the group
    space's d.width only in hinge x (wgan_gp or dragan)."""
    spec = parse_spec(SPEC, "spec")
    by_group = {(g["loss"], g["penalty"]): spec.params_for(g) for g in spec.group_names()}
    assert names(by_group["ns", "none"]) == names(by_group["hinge", "none"]) == ["g_opt.lr"]
    assert names(by_group["ns", "wgan_gp:1"]) == names(by_group["ns", "dragan"]) == ["g_opt.lr", "lambda"]
    assert names(by_group["hinge", "wgan_gp:1"]) == names(by_group["hinge", "dragan"]) == ["d.width", "g_opt.lr",
                                                                                           "lambda"]
    lambdas = {penalty: next(p for p in by_group["ns", penalty] if p.name == "lambda") for penalty in ("wgan_gp:1",
                                                                                                        "dragan")}
    assert lambdas["wgan_gp:1"].keys == ("penalty.wgan_gp.weight",)
    assert lambdas["dragan"].keys == ("penalty.dragan.weight",)
    assert names(spec.params) == ["g_opt.lr", "lambda"]  # the spec-wide list stays as it is


def test_a_group_space_parameter_replaces_the_spec_wide_one_of_its_name():
    spec = parse_spec(SPEC | {"group_spaces": [{"groups": {"loss": "hinge"},
                                                "space": {"g_opt.lr": {"categorical": [0.5]}}}]}, "spec")
    [lr] = [p for p in spec.params_for({"loss": "hinge", "penalty": "none"}) if p.name == "g_opt.lr"]
    assert (lr.kind, lr.args) == ("categorical", (0.5,))
    [lr] = [p for p in spec.params_for({"loss": "ns", "penalty": "none"}) if p.name == "g_opt.lr"]
    assert lr.kind == "log_uniform"


@pytest.mark.filterwarnings("ignore:The balance properties")  # scipy, for counts other than powers of 2
def test_sobol_points_of_a_group_span_its_own_parameters():
    """Independent value: scipy's scrambled Sobol sequence of the group's dimension (1, 2 or 3) and the
    sampler's seed, mapped by hand (log-uniform as low * (high / low) ** u, the choices by equal shares)."""
    spec = parse_spec(SPEC, "spec")
    for group, dims in [({"loss": "ns", "penalty": "none"}, ["g_opt.lr"]),
                        ({"loss": "ns", "penalty": "dragan"}, ["g_opt.lr", "lambda"]),
                        ({"loss": "hinge", "penalty": "wgan_gp:1"}, ["d.width", "g_opt.lr", "lambda"])]:
        points = sobol_points(spec, group, 0, 5)
        units = qmc.Sobol(len(dims), scramble=True, seed=5).random(5)
        for point, row in zip(points, units):
            u = dict(zip(sorted(dims), row))
            assert sorted(point) == sorted(dims)
            assert point["g_opt.lr"] == pytest.approx(1e-4 * 100 ** u["g_opt.lr"], rel=1e-12)
            if "lambda" in dims:
                assert point["lambda"] == pytest.approx(0.1 * 1000 ** u["lambda"], rel=1e-12)
            if "d.width" in dims:
                assert point["d.width"] == (16 if u["d.width"] < 0.5 else 32)
    # groups with the same parameters get the same points: a paired comparison
    assert sobol_points(spec, {"loss": "ns", "penalty": "wgan_gp:1"}, 0, 4) == sobol_points(
        spec, {"loss": "ns", "penalty": "dragan"}, 0, 4)


def test_queued_trials_carry_only_their_groups_parameters(tmp_path):
    spec = parse_spec(SPEC, "spec")
    create(spec, tmp_path / "study")
    _, studies = load_studies(StudyDir(tmp_path / "study"))
    for group, study in studies:
        queued = [t.system_attrs["fixed_params"] for t in study.get_trials()]
        assert queued == sobol_points(spec, group, 0, 3)
        assert {tuple(sorted(p)) for p in queued} == {tuple(names(spec.params_for(group)))}
        assert ("lambda" in queued[0]) == (group["penalty"] != "none")


def test_a_sampler_chooses_only_the_parameters_of_the_trials_group(tmp_path):
    """tpe (and random, gp) draw a trial's parameters when a worker claims it: from the group's own space."""
    from ganscape.study.engine import suggest
    from ganscape.study.leases import claim

    spec = parse_spec(SPEC | {"sampler": {"name": "tpe", "seed": 1}, "trials": 1}, "spec")
    _, studies = load_studies(create(spec, tmp_path / "study"))
    for group, study in studies:
        params = suggest(claim(study), spec)
        assert sorted(params) == names(spec.params_for(group))
        assert ("lambda" in params) == (group["penalty"] != "none")


def test_create_checks_each_group_with_its_own_parameters(tmp_path):
    """A lambda applied to a group without its penalty would be refused (not in penalty.use), so a study with a
    no-penalty group is created only if each group's config gets its own parameters; a group-space value that
    makes one group's config invalid is refused naming that group."""
    spec = parse_spec(SPEC, "spec")
    assert example_params(spec, {"loss": "ns", "penalty": "none"}) == {"g_opt.lr": 1e-4}
    assert example_params(spec, {"loss": "hinge", "penalty": "dragan"}) == {"g_opt.lr": 1e-4, "lambda": 0.1,
                                                                             "d.width": 16}
    bad = parse_spec(SPEC | {"group_spaces": [{"groups": {"penalty": ["dragan"]},
                                               "space": {"d.width": {"categorical": [0]}}}]}, "spec")
    with pytest.raises(ConfigError, match="group loss=ns, penalty=dragan: invalid config:\n  d.width must be >= 1"):
        create(bad, tmp_path / "bad")
    create(spec, tmp_path / "good")
    assert (tmp_path / "good" / "study.yaml").is_file()


def test_the_grid_of_a_group_is_its_own_parameters_grid():
    spec = parse_spec({"base": "ring8_grid", "groups": {"penalty": ["none", "wgan_gp"]}, "sampler": "grid",
                       "objective": "js_to_target",
                       "space": {"d.norm": {"categorical": ["none", "spectral"]},
                                 "lambda": {"categorical": [1, 10, 100], "keys": "penalty.wgan_gp.weight"}}}, "spec")
    assert spec.trials == 6  # the largest group's grid
    assert grid_points(spec, {"penalty": "none"}) == [{"d.norm": "none"}, {"d.norm": "spectral"}]
    assert len(grid_points(spec, {"penalty": "wgan_gp"})) == 6


@pytest.mark.parametrize("change, message", [
    ({"group_spaces": {"groups": {}}}, "group_spaces is a list of {groups: {KEY: [VALUES]}, space: SPACE}"),
    ({"group_spaces": [{"groups": {"loss": ["ns"]}}]}, "group_spaces[0]: group_spaces is a list of"),
    ({"group_spaces": [{"groups": {"d.norm": ["spectral"]}, "space": {}}]},
     "group_spaces[0]: 'd.norm' is not a group key; the groups are loss, penalty."),
    ({"group_spaces": [{"groups": {"loss": ["wgan"]}, "space": {}}]},
     "group_spaces[0]: loss: 'wgan' is not among the group's values (ns, hinge)."),
    ({"group_spaces": [{"groups": {"loss": ["ns"]}, "space": {"d.widht": {"categorical": [8]}}}]},
     "group_spaces[0], parameter 'd.widht': unknown config key 'd.widht'. Did you mean 'd.width'?"),
    ({"group_spaces": [{"groups": {"loss": ["ns"]}, "space": {"penalty": {"categorical": ["r1"]}}}]},
     "penalty is both a group and a searched parameter"),
    ({"space": {"x": {"uniform": [1, 2], "keys": ["penalty.r1.weight", "g_opt.lr"]}}},
     "parameter 'x' sets penalty weights and other keys"),
    ({"space": {"x": {"uniform": [1, 2], "keys": ["penalty.wgan_pg.weight"]}}},
     "unknown config key 'penalty.wgan_pg.weight'. Did you mean 'penalty.wgan_gp.weight'?"),
])
def test_malformed_group_spaces_and_penalty_parameters_are_refused(change, message):
    with pytest.raises(ConfigError) as err:
        parse_spec(SPEC | change, "my_study.yaml")
    assert message in str(err.value) and str(err.value).startswith("my_study.yaml")


def test_the_penalty_group_and_a_penalty_weight_parameter_do_not_clash():
    spec = parse_spec(SPEC | {"space": "wide"}, "spec")
    assert {"lambda", "lambda_l2"} <= set(names(spec.params))


# ---------------------------------------------------------------- the built-in spaces against the Landscape


def test_the_built_in_spaces_are_the_landscapes():
    """compare_gan v2 ``params.py``: GetDefaultWideRange / GetDefaultNarrowRange for lr, beta1, n_disc;
    GANPENALTYHyperParams (both ranges) for beta2 U[0, 1] and lambda: log [0.1, 100] (GP, DRAGAN), log [1e-4, 10]
    (L2). Betas end below 1, where Adam is defined."""
    spec = {name: {p.name: p for p in parse_spec({"base": "ring8_grid", "space": name, "objective": "js_to_target"},
                                                 "spec").params} for name in ("wide", "narrow")}
    for space in spec.values():
        assert (space["lambda"].kind, space["lambda"].args) == ("log_uniform", (0.1, 100.0))
        assert space["lambda"].keys == ("penalty.wgan_gp.weight", "penalty.dragan.weight")
        assert (space["lambda_l2"].kind, space["lambda_l2"].args, space["lambda_l2"].keys) == (
            "log_uniform", (1e-4, 10.0), ("penalty.l2.weight",))
        assert (space["beta2"].kind, space["beta2"].args) == ("uniform", (0.0, 0.999))
        assert space["beta2"].keys == ("g_opt.beta2", "d_opt.beta2")
    wide, narrow = spec["wide"], spec["narrow"]
    assert (wide["lr"].args, wide["beta1"].args, wide["train.n_disc"].args) == ((1e-5, 1e-2), (0.0, 0.99), (1, 5))
    assert (narrow["lr"].args, narrow["beta1"].args, narrow["train.n_disc"].args) == ((1e-4, 1e-3), (0.5,), (1,))
    assert set(BUILTIN_SPACES) == {"wide", "narrow", "literature"}


# ---------------------------------------------------------------- named groups (labelled sets of settings)

NAMED = {"base": "ring8_grid", "objective": "js_to_target", "space": "wide",
         "groups": {"norm": {"sn": {"g.norm": "none", "d.norm": "spectral"},
                             "wn": {"g.norm": "weight", "d.norm": "weight"}},
                    "penalty": ["none", "wgan_gp:1"]}}


def test_a_named_group_sets_each_of_its_labels_keys_in_the_trials_config():
    """Group {norm: wn} gives g.norm = d.norm = weight; the searched lambda reaches the wgan_gp groups only, as for a
    config-key group. Independent values: the settings written in the spec above."""
    spec = parse_spec(NAMED, "spec")
    assert [g["norm"] for g in spec.group_names()] == ["sn", "sn", "wn", "wn"]
    params = {"lr": 1e-3, "beta1": 0.5, "beta2": 0.9, "train.n_disc": 1, "lambda": 3.0}
    cfg = spec.trial_config({"norm": "wn", "penalty": "wgan_gp:1"}, params, seed=4)
    assert (cfg.g.norm, cfg.d.norm, cfg.train.seed) == ("weight", "weight", 4)
    assert [(t.name, t.weight) for t in cfg.penalty.use] == [("wgan_gp", 3.0)]
    cfg = spec.trial_config({"norm": "sn", "penalty": "none"}, params, seed=0)
    assert (cfg.g.norm, cfg.d.norm, cfg.penalty.use) == ("none", "spectral", [])
    assert names(spec.params_for({"norm": "sn", "penalty": "none"})) == ["beta1", "beta2", "lr", "train.n_disc"]


@pytest.mark.parametrize("groups, message", [
    ({"norm": {"a": {"g.norm": "none"}, "b": {"d.norm": "none"}}}, "every label must set the same config keys"),
    ({"norm": {"a": {"g.nrom": "none"}}}, "unknown config key 'g.nrom'. Did you mean 'g.norm'?"),
    ({"norm": {"a": "none"}}, "or a name to labelled settings"),
])
def test_malformed_named_groups_are_refused(groups, message):
    with pytest.raises(ConfigError) as err:
        parse_spec(NAMED | {"groups": groups}, "my_study.yaml")
    assert message in str(err.value)


def test_a_named_groups_key_cannot_also_be_searched():
    with pytest.raises(ConfigError, match="d.norm is both a group and a searched parameter"):
        parse_spec(NAMED | {"space": {"d.norm": {"categorical": ["none"]}}}, "spec")
