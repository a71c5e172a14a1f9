"""Make test fixtures with the reference BigGAN-PyTorch (ajbrock/BigGAN-PyTorch).

For each small configuration in CONFIGS this writes, next to this script:

* ``<name>_G.pth`` and ``<name>_D.pth``: ``state_dict()`` of the reference G and D
  (plain dicts of tensors; ``torch.load(path, weights_only=True)`` reads them),
  after random perturbation of every parameter, attention ``gamma = 0.7`` and
  5 train-mode forward passes (so batch-norm stored stats and the spectral-norm
  buffers ``u0``/``sv0`` are no longer at their initial values);
* ``<name>_io.safetensors``: fixed inputs and the reference outputs, keys
  ``z``, ``y``, ``G_eval``, ``D_eval``, ``G_train`` and ``G_train_u_after``
  (``G.linear.u0`` after the train-mode forward that produced ``G_train``).

It also writes ``launch_keys.json``: the state-dict keys and shapes of G and D,
and their parameter counts, as built by three of the reference's launch scripts.

Remake the fixtures with:

    python tests/data/biggan_pytorch/make_fixtures.py --reference path/to/BigGAN-PyTorch
"""
import argparse
import contextlib
import importlib
import io
import json
import re
import shlex
import sys
import types
from pathlib import Path

import torch
from safetensors.torch import save_file

RELU = torch.nn.ReLU(inplace=False)
COMMON = dict(skip_init=False, no_optim=True, G_activation=RELU, D_activation=RELU, BN_eps=1e-5)

# name -> (reference module, keyword arguments of Generator and Discriminator).
# Widths are as small as attention allows (16 channels, i.e. 2 in theta/phi),
# to keep the fixtures small.
CONFIGS = {
    "biggan32_cifar": ("BigGAN", dict(
        G_ch=8, D_ch=8, dim_z=16, resolution=32, G_attn="0", D_attn="0", n_classes=10,
        G_shared=False, hier=False, G_init="N02", D_init="N02", SN_eps=1e-8)),
    # 5 z slots of 4; attention layers with 16 channels in G and D
    "biggan64_hier": ("BigGAN", dict(
        G_ch=4, D_ch=4, dim_z=20, shared_dim=8, G_shared=True, hier=True, resolution=64,
        G_attn="32", D_attn="8", n_classes=5, G_init="ortho", D_init="ortho", SN_eps=1e-6)),
    "biggan_deep64": ("BigGANdeep", dict(
        G_ch=4, D_ch=4, G_depth=2, D_depth=2, dim_z=12, shared_dim=8, G_shared=True, hier=True,
        resolution=64, G_attn="32", D_attn="16", n_classes=5, G_init="ortho", D_init="ortho",
        SN_eps=1e-6)),
}

# launch script -> (G parameters, D parameters), as counted by the reference
LAUNCH_SCRIPTS = {
    "launch_cifar_ema.sh": (4_304_387, 4_207_361),
    "launch_BigGAN_bs256x8.sh": (70_433_988, 87_982_370),
    "launch_BigGAN_deep.sh": (50_244_484, 34_590_210),
}


def quiet(fn, *args, **kwargs):
    """Call fn with the reference's progress prints silenced."""
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args, **kwargs)


def build(module, kwargs, seed):
    torch.manual_seed(seed)
    G = quiet(module.Generator, **COMMON, **kwargs)
    torch.manual_seed(seed + 1)
    D = quiet(module.Discriminator, **COMMON, **kwargs)
    return G, D


@torch.no_grad()
def make_config(name, module, kwargs, out, seed):
    G, D = build(module, kwargs, seed)
    n_classes, batch = kwargs["n_classes"], 6

    # Make the state non-trivial.
    for p in list(G.parameters()) + list(D.parameters()):
        p.add_(0.05 * torch.randn_like(p))
    for net in (G, D):
        for pname, p in net.named_parameters():
            if pname.endswith("gamma"):
                p.fill_(0.7)
    G.train(), D.train()
    for _ in range(5):
        z = torch.randn(batch, G.dim_z)
        y = torch.randint(0, n_classes, (batch,))
        x = G(z, G.shared(y))
        D(x.detach(), y)

    for tag, net in (("G", G), ("D", D)):
        torch.save({k: v.clone() for k, v in net.state_dict().items()}, out / f"{name}_{tag}.pth")

    # Reference outputs for fixed inputs.
    gen = torch.Generator().manual_seed(seed + 2)
    z = torch.randn(4, G.dim_z, generator=gen, dtype=torch.float32)
    y = torch.randint(0, n_classes, (4,), generator=gen, dtype=torch.int64)
    G.eval(), D.eval()
    G_eval = G(z, G.shared(y))
    D_eval = D(G_eval, y)

    G2, _ = build(module, kwargs, seed + 100)
    G2.load_state_dict(torch.load(out / f"{name}_G.pth", weights_only=True))
    G2.train()
    G_train = G2(z, G2.shared(y))

    tensors = dict(z=z, y=y, G_eval=G_eval, D_eval=D_eval, G_train=G_train,
                   G_train_u_after=G2.linear.u0)
    save_file({k: v.detach().contiguous().clone() for k, v in tensors.items()},
              str(out / f"{name}_io.safetensors"))
    print(f"{name}: G_eval {tuple(G_eval.shape)}, D_eval {tuple(D_eval.shape)}")


def stub_missing(names):
    """Put stand-ins for missing modules (torchvision, h5py) in sys.modules.

    The reference's utils.py imports them (through datasets.py) but building
    models does not use them; any attribute of a stand-in is a dummy class.
    """
    class Stub(types.ModuleType):
        def __getattr__(self, attr):
            if attr.startswith("__"):
                raise AttributeError(attr)
            value = type(attr, (), {})
            setattr(self, attr, value)
            return value

    missing = set()
    for name in names:
        root = name.split(".")[0]
        if root not in missing:
            try:
                __import__(root)
                continue
            except ImportError:
                missing.add(root)
        parent = None
        for i, part in enumerate(name.split(".")):
            full = ".".join(name.split(".")[: i + 1])
            module = sys.modules.setdefault(full, Stub(full))
            if parent is not None:
                setattr(parent, part, module)
            parent = module


def launch_args(script_path):
    """The train.py arguments of a launch script."""
    text = re.sub(r"\\\s*(\n|$)", " ", script_path.read_text())  # join continued lines
    line = next(line for line in text.splitlines() if "train.py" in line)
    return shlex.split(line.split("train.py", 1)[1])


@torch.no_grad()
def make_launch_keys(reference, out):
    stub_missing(["torchvision.datasets.utils", "torchvision.transforms", "torchvision.utils",
                  "h5py"])
    import utils  # the reference's utils.py

    result = {}
    for script, (G_expected, D_expected) in LAUNCH_SCRIPTS.items():
        config = vars(utils.prepare_parser().parse_args(launch_args(reference / "scripts" / script)))
        config["resolution"] = utils.imsize_dict[config["dataset"]]
        config["n_classes"] = utils.nclass_dict[config["dataset"]]
        config["G_activation"] = utils.activation_dict[config["G_nl"]]
        config["D_activation"] = utils.activation_dict[config["D_nl"]]
        config["skip_init"] = True
        config["no_optim"] = True
        model = importlib.import_module(config["model"])
        G = quiet(model.Generator, **config)
        D = quiet(model.Discriminator, **config)
        entry = {}
        for key, net in (("G", G), ("D", D)):
            entry[key] = {k: list(v.shape) for k, v in net.state_dict().items()}
            entry[f"{key}_params"] = sum(p.numel() for p in net.parameters())
        assert (entry["G_params"], entry["D_params"]) == (G_expected, D_expected), (script, entry)
        result[script] = entry
        print(f"{script}: G {entry['G_params']:,} D {entry['D_params']:,} parameters")
        del G, D
    (out / "launch_keys.json").write_text(json.dumps(result, indent=1) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference", required=True, type=Path,
                        help="a clone of ajbrock/BigGAN-PyTorch")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    reference = args.reference.resolve()
    sys.path.insert(0, str(reference))
    args.out.mkdir(parents=True, exist_ok=True)

    for i, (name, (module_name, kwargs)) in enumerate(CONFIGS.items()):
        module = importlib.import_module(module_name)
        make_config(name, module, kwargs, args.out, seed=1000 * (i + 1))
    make_launch_keys(reference, args.out)


if __name__ == "__main__":
    main()
