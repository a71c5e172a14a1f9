"""Import of BigGAN-PyTorch checkpoints (``ganscape.importers``), against the reference's own outputs.

The independent values are in ``tests/data/biggan_pytorch``: state dicts saved by BigGAN-PyTorch's
``Generator``/``Discriminator`` and the images and logits those reference networks computed for fixed z
and classes, in eval mode (stored statistics, one power iteration from the stored u) and in train mode
(batch statistics), plus the u the reference's power iteration stored after that forward. The key
names and shapes of the reference's launch-script networks are in ``launch_keys.json``; see the
folder's README for how they were made.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from float32_error import assert_float32_close, float32_bound, network_bound
from ganscape.cli import main
from ganscape.config import load_config
from ganscape.errors import CheckpointError
from ganscape.hub import load_generator
from ganscape.importers import FILLED, convert_state_dict, load_reference_weights, read_state_dict, reference_names
from ganscape.nets import ModelSpec, build_discriminator, build_generator

pytestmark = pytest.mark.numerics  # float32 results against float64: CI reruns these under AVX2 kernels

FIXTURES = Path(__file__).parent / "data" / "biggan_pytorch"

# fixture -> (overrides for g and d, spec), the settings make_fixtures.py gave the reference
CASES = {
    "biggan32_cifar": (["arch=biggan", "width=8", "biggan.attention=", "biggan.init=N02", "biggan.sn_eps=1e-8"],
                       ["biggan.shared_dim=0", "biggan.hierarchical=false"], ModelSpec((3, 32, 32), 10, latent_dim=16)),
    "biggan64_hier": (["arch=biggan", "width=4", "biggan.sn_eps=1e-6"], ["biggan.shared_dim=8", "biggan.attention=32"],
                      ModelSpec((3, 64, 64), 5, latent_dim=20)),
    "biggan_deep64": (["arch=biggan_deep", "width=4", "depth=2", "biggan.sn_eps=1e-6"],
                      ["biggan.shared_dim=8", "biggan.attention=32"], ModelSpec((3, 64, 64), 5, latent_dim=12)),
}
D_ATTENTION = {"biggan32_cifar": "", "biggan64_hier": "8", "biggan_deep64": "16"}
LAUNCH = {"launch_cifar_ema.sh": ("biggan_cifar10", ModelSpec((3, 32, 32), 10, latent_dim=128)),
          "launch_BigGAN_bs256x8.sh": ("biggan_imagenet128", ModelSpec((3, 128, 128), 1000, latent_dim=120)),
          "launch_BigGAN_deep.sh": ("biggan_deep_imagenet128", ModelSpec((3, 128, 128), 1000, latent_dim=128))}


def fixture_config(name: str):
    shared, g_only, _ = CASES[name]
    return load_config(None, [f"g.{o}" for o in ["norm=spectral", *shared, *g_only]]
                       + [f"d.{o}" for o in ["norm=spectral", *shared]] + [f"d.biggan.attention={D_ATTENTION[name]}"])


def fixture_networks(name: str):
    cfg = fixture_config(name)
    spec = CASES[name][2]
    return build_generator(cfg.g, spec), build_discriminator(cfg.d, spec)


@pytest.mark.parametrize("name", CASES)
def test_converted_networks_reproduce_the_reference_outputs(name):
    """The converted networks, run in float64, give the reference's float32 outputs within float32 rounding of
    a forward pass (``network_bound``: 2e-5 to 1.5e-4 of the norm here, 20 to 1000 times the reference's own
    rounding error; 1% noise on the weights of one conv alone moves the images by 15 to 250 times the bound)."""
    G, D = fixture_networks(name)
    load_reference_weights(G, FIXTURES / f"{name}_G.pth")
    load_reference_weights(D, FIXTURES / f"{name}_D.pth")
    io = load_file(str(FIXTURES / f"{name}_io.safetensors"))
    z = io["z"].double()
    G.eval(), D.eval()
    with torch.no_grad():
        assert_float32_close(io["G_eval"], G.double()(z, io["y"]), network_bound(G), "G eval")
        assert_float32_close(io["D_eval"].view(-1), D.double()(io["G_eval"].double(), io["y"]), network_bound(D),
                             "D eval")
        G.train()
        assert_float32_close(io["G_train"], G(z, io["y"]), network_bound(G), "G train")
    u_bound = float32_bound(2, max(G.linear.weight.shape))  # u = normalize(W normalize(W^T u0))
    assert_float32_close(io["G_train_u_after"].view(-1), G.linear.u, u_bound, "G.linear.u after the step")


@pytest.mark.parametrize("script", LAUNCH)
def test_every_key_of_the_launch_script_networks_has_its_place(script):
    """Our networks built from the presets name, through the converter, exactly the reference's keys, with the
    reference's shapes (u0 as a (1, out) row of our u)."""
    preset, spec = LAUNCH[script]
    reference = json.loads((FIXTURES / "launch_keys.json").read_text())[script]
    cfg = load_config(preset, [])
    with torch.device("meta"):
        nets = {"G": build_generator(cfg.g, spec), "D": build_discriminator(cfg.d, spec)}
    for which, net in nets.items():
        names = reference_names(net)
        shapes = net.state_dict()
        mapped = {name: list(shapes[key].shape) for key, name in names.items() if name is not FILLED}
        for name in mapped:
            if name.endswith(".u0"):
                mapped[name] = [1, *mapped[name]]
        expected = {k: v for k, v in reference[which].items() if not k.endswith(".sv0")}
        assert mapped == expected, which
        assert {k[:-3] for k in reference[which] if k.endswith(".sv0")} == {k[:-2] for k in mapped if k.endswith(".u0")}


def test_missing_extra_and_misshapen_keys_are_refused_by_name():
    G, _ = fixture_networks("biggan64_hier")
    state = read_state_dict(FIXTURES / "biggan64_hier_G.pth")
    short = {k: v for k, v in state.items() if k != "blocks.1.0.bn2.stored_var"}
    with pytest.raises(CheckpointError, match=r"missing blocks.1.0.bn2.stored_var"):
        convert_state_dict(G, short, "G.pth")
    with pytest.raises(CheckpointError, match=r"unexpected blocks.9.0.conv1.weight"):
        convert_state_dict(G, {**state, "blocks.9.0.conv1.weight": torch.zeros(1)}, "G.pth")
    with pytest.raises(CheckpointError, match=r"missing linear.sv0"):
        convert_state_dict(G, {k: v for k, v in state.items() if k != "linear.sv0"}, "G.pth")
    wide, _ = CASES["biggan64_hier"][0], None
    cfg = load_config(None, ["g.arch=biggan", "g.norm=spectral", "g.width=8", "g.biggan.shared_dim=8",
                             "g.biggan.attention=32"])
    G8 = build_generator(cfg.g, CASES["biggan64_hier"][2])
    with pytest.raises(CheckpointError, match=r"wrong shape: linear.weight \(1024, 4\) where the network needs "
                                              r"\(2048, 4\)"):
        convert_state_dict(G8, state, "G.pth")


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "G.pth"
    with open(path, "wb") as f:
        pickle.dump(Payload(), f)
    torch.save({"linear.weight": Payload()}, path)
    with pytest.raises(CheckpointError, match=r"G.pth was refused: loading it would run code \(it calls print\)"):
        read_state_dict(path)
    with pytest.raises(Exception, match=r"does not exist"):
        read_state_dict(tmp_path / "nothing.pth")


def test_import_command_writes_a_model_that_samples_like_the_reference(tmp_path, capsys):
    """``ganscape import biggan-pytorch`` with the fixture's settings, then ``load_generator``: the exported
    EMA generator, run in float64, reproduces the reference's eval-mode images for the same z and classes
    within float32 rounding (see the test above)."""
    shared, g_only, spec = CASES["biggan64_hier"]
    overrides = ([f"g.{o}" for o in ["norm=spectral", *shared, *g_only]]
                 + [f"d.{o}" for o in ["norm=spectral", *shared]] + ["d.biggan.attention=8", "latent.dim=20"])
    out = tmp_path / "model"
    code = main(["import", "biggan-pytorch", str(FIXTURES / "biggan64_hier_G.pth"),
                 "--G-ema", str(FIXTURES / "biggan64_hier_G.pth"), "--D", str(FIXTURES / "biggan64_hier_D.pth"),
                 "--resolution", "64", "--classes", "5", "--out", str(out), *overrides])
    assert code == 0, capsys.readouterr()
    model = load_generator(out)
    io = load_file(str(FIXTURES / "biggan64_hier_io.safetensors"))
    with torch.no_grad():
        assert_float32_close(io["G_eval"], model.net.double()(io["z"].double(), io["y"]), network_bound(model.net))
    config = json.loads((out / "config.json").read_text())
    assert config["weights"] == "ema" and config["provenance"]["imported"]["from"] == "BigGAN-PyTorch"
    assert (out / "discriminator.safetensors").is_file() and (out / "samples.png").is_file()
    assert spec.num_classes == model.spec.num_classes == 5
