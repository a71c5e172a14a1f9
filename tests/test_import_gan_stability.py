"""Import of GAN_stability checkpoints (``ganscape.importers``), against the reference's own outputs.

The independent values are in ``tests/data/gan_stability``: checkpoints saved by GAN_stability's
``CheckpointIO`` from its own ``resnet``, ``resnet2``, ``resnet3`` and ``resnet4`` classes (wrapped in
``nn.DataParallel`` as its train.py does, every parameter perturbed), the images and logits those reference
networks computed for fixed z and labels in eval mode, and the state-dict keys, shapes and parameter counts of
the networks of the reference's configs. See the folder's README for how they were made.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from float32_error import assert_float32_close, network_bound
from ganscape.cli import main
from ganscape.config import load_config
from ganscape.errors import CheckpointError, ConfigError
from ganscape.hub import load_discriminator, load_generator
from ganscape.importers import (convert_gan_stability_state, gan_stability_names, import_gan_stability,
                                read_gan_stability_checkpoint)
from ganscape.nets import ModelSpec, build_discriminator, build_generator
from test_gan_stability import REFERENCE_CONFIGS, reference_config

pytestmark = pytest.mark.numerics  # float32 results against float64: CI reruns these under AVX2 kernels

FIXTURES = Path(__file__).parent / "data" / "gan_stability"
TOLERANCE = 1e-4  # the bound on the relative error; network_bound is tighter for these nets

# fixture -> (architecture, side, classes, (nfilter, nfilter_max, embed_size)), as make_fixtures.py built them
CASES = {"resnet16_uncond": ("gs_resnet", 16, 0, (4, 8, 1)), "resnet2_32_cond": ("gs_resnet2", 32, 5, (1, 512, 8)),
         "resnet3_64_uncond": ("gs_resnet3", 64, 0, (1, 512, 1)), "resnet4_64_cond": ("gs_resnet4", 64, 5, (1, 512, 8))}
Z_DIM = 8


def overrides(name: str) -> list[str]:
    arch, side, _, (nf, nf_max, embed) = CASES[name]
    return [f"{net}.{key}" for net in "gd" for key in (f"arch={arch}", f"width={nf}", f"settings.nfilter_max={nf_max}",
                                                       f"settings.embed_size={embed}")] + [f"latent.dim={Z_DIM}",
                                                                                           f"data.resolution={side}"]


def fixture_networks(name: str):
    _, side, classes, _ = CASES[name]
    cfg = load_config(None, overrides(name))
    spec = ModelSpec((3, side, side), classes, latent_dim=Z_DIM)
    return build_generator(cfg.g, spec), build_discriminator(cfg.d, spec)


def loaded(net, state, where="model.pt"):
    net.load_state_dict(convert_gan_stability_state(net, state, where))
    return net.double().eval()


def labels_for(name: str, io: dict):
    return io["y"] if CASES[name][2] else None  # the unconditional nets' only label is 0


def assert_close(got, exact, net, what):
    bound = network_bound(net)
    assert bound <= TOLERANCE, what
    assert_float32_close(exact, got, bound, what)


@pytest.mark.parametrize("name", CASES)
def test_converted_networks_reproduce_the_reference_outputs(name):
    """G (the moving average and the trained one) and D converted from the reference's checkpoint, run in float64,
    give the reference's float32 outputs within float32 rounding of a forward pass (``network_bound``: at most
    1e-4 of the norm here)."""
    nets, it = read_gan_stability_checkpoint(FIXTURES / f"{name}.pt")
    assert set(nets) == {"generator", "discriminator", "generator_test"} and it == 1234
    io = load_file(str(FIXTURES / f"{name}_io.safetensors"))
    z, y = io["z"].double(), labels_for(name, io)
    with torch.no_grad():
        for which, reference in (("generator_test", "G_test"), ("generator", "G")):
            G = loaded(fixture_networks(name)[0], nets[which])
            assert_close(G(z, y), io[reference], G, which)
        D = loaded(fixture_networks(name)[1], nets["discriminator"])
        assert_close(D(io["G_test"].double(), y), io["D"], D, "discriminator")
    assert not torch.allclose(io["G"], io["G_test"], atol=1e-3)  # the two generators are told apart


@pytest.mark.parametrize("name", REFERENCE_CONFIGS)
def test_every_key_of_the_reference_config_networks_has_its_place(name):
    """Our networks built for each reference config name, through the converter, exactly the keys (with
    ``module.``) and shapes that the reference's networks save."""
    cfg, spec = reference_config(name)
    with torch.device("meta"):
        nets = {"generator": build_generator(cfg.g, spec), "discriminator": build_discriminator(cfg.d, spec)}
    for which, net in nets.items():
        shapes = net.state_dict()
        mapped = {f"module.{reference}": list(shapes[key].shape) for key, reference in gan_stability_names(net).items()}
        assert mapped == REFERENCE_CONFIGS[name][which]["keys"], which


def test_missing_extra_and_misshapen_keys_are_refused_by_name():
    nets, _ = read_gan_stability_checkpoint(FIXTURES / "resnet2_32_cond.pt")
    state = nets["generator"]
    G, _ = fixture_networks("resnet2_32_cond")
    short = {k: v for k, v in state.items() if k != "resnet_3_1.conv_0.bias"}
    with pytest.raises(CheckpointError, match=r"model.pt does not fit .*missing resnet_3_1.conv_0.bias"):
        convert_gan_stability_state(G, short, "model.pt")
    with pytest.raises(CheckpointError, match=r"unexpected resnet_6_0.conv_0.weight"):
        convert_gan_stability_state(G, {**state, "resnet_6_0.conv_0.weight": torch.zeros(1)}, "model.pt")
    cfg = load_config(None, [*overrides("resnet2_32_cond"), "g.settings.embed_size=16"])
    G16 = build_generator(cfg.g, ModelSpec((3, 32, 32), 5, latent_dim=Z_DIM))
    with pytest.raises(CheckpointError, match=r"wrong shape: embedding.weight \(5, 8\) where the network needs "
                                              r"\(5, 16\).*settings.embed_size"):
        convert_gan_stability_state(G16, state, "model.pt")


def test_a_pickle_that_would_run_code_or_a_foreign_file_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "model.pt"
    torch.save({"generator": {"module.fc.weight": Payload()}, "discriminator": {}}, path)
    with pytest.raises(CheckpointError, match=r"model.pt was refused: loading it would run code \(it calls print\)"):
        read_gan_stability_checkpoint(path)
    torch.save({"fc.weight": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match=r"is not a GAN_stability checkpoint: it holds a dict of fc.weight"):
        read_gan_stability_checkpoint(path)
    with pytest.raises(ConfigError, match=r"does not exist"):
        read_gan_stability_checkpoint(tmp_path / "nothing.pt")


def test_import_command_exports_the_moving_average_and_D_as_the_reference_computes_them(tmp_path, capsys):
    """``ganscape import gan-stability`` on a conditional checkpoint: the classes come from its embedding (5), the
    exported G is generator_test and D is beside it; both reproduce the reference's outputs (float64 against
    its float32, within ``network_bound``)."""
    out = tmp_path / "model"
    code = main(["import", "gan-stability", str(FIXTURES / "resnet2_32_cond.pt"), "--out", str(out),
                 *overrides("resnet2_32_cond")])
    assert code == 0, capsys.readouterr()
    model, D = load_generator(out), load_discriminator(out)
    io = load_file(str(FIXTURES / "resnet2_32_cond_io.safetensors"))
    with torch.no_grad():
        assert_close(model.net.double()(io["z"].double(), io["y"]), io["G_test"], model.net, "G")
        assert_close(D.double()(io["G_test"].double(), io["y"]), io["D"], D, "D")
    config = json.loads((out / "config.json").read_text())
    assert config["weights"] == "ema" and model.spec.num_classes == 5
    assert config["provenance"]["imported"] == {"from": "GAN_stability", "files": ["resnet2_32_cond.pt"],
                                                "generator": "generator_test", "it": 1234}


def test_import_raw_exports_the_trained_generator_of_an_unconditional_checkpoint(tmp_path):
    """With ``raw`` the exported G is ``generator``: it reproduces the reference generator's images, not the
    moving average's; one embedding row makes an unconditional model."""
    out = import_gan_stability(FIXTURES / "resnet16_uncond.pt", tmp_path / "model", overrides=overrides(
        "resnet16_uncond"), raw=True)
    model = load_generator(out)
    io = load_file(str(FIXTURES / "resnet16_uncond_io.safetensors"))
    with torch.no_grad():
        assert_close(model.net.double()(io["z"].double()), io["G"], model.net, "raw G")
    assert model.spec.num_classes == 0 and json.loads((out / "config.json").read_text())["weights"] == "raw"


def test_import_refuses_other_networks_and_biggan_options(tmp_path, capsys):
    checkpoint = str(FIXTURES / "resnet16_uncond.pt")
    with pytest.raises(ConfigError, match=r"for the networks gs_resnet, .* the config has d.arch=dcgan"):
        import_gan_stability(checkpoint, tmp_path / "a", overrides=[o for o in overrides("resnet16_uncond")
                                                                    if not o.startswith("d.")] + ["d.arch=dcgan"])
    with pytest.raises(ConfigError, match=r"have no normalization; the config has g.norm=spectral"):
        import_gan_stability(checkpoint, tmp_path / "b", overrides=[*overrides("resnet16_uncond"), "g.norm=spectral"])
    code = main(["import", "gan-stability", checkpoint, "--D", checkpoint, "--out", str(tmp_path / "c"),
                 *overrides("resnet16_uncond")])
    assert code != 0 and "--G-ema and --D are for biggan-pytorch" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
