"""Make test fixtures with the reference GAN_stability (LMescheder/GAN_stability).

For each small configuration in CASES this writes, next to this script:

* ``<name>.pt``: a checkpoint as the reference's training script saves it: its ``CheckpointIO`` holding
  ``generator``, ``discriminator`` and ``generator_test`` (the moving average), each wrapped in
  ``nn.DataParallel`` (keys ``module.*``), the RMSProp optimizers and ``it``. Every parameter was
  perturbed by ``0.05 * randn`` (``generator_test`` independently of ``generator``); then, in the first
  case, one discriminator and one generator step of the reference's ``Trainer`` (R1 on reals, gamma 10)
  and one ``update_average`` (beta 0.999) were taken;
* ``<name>_io.safetensors``: fixed inputs and the reference's outputs in eval mode: ``z``, ``y`` (int64;
  zeros for the unconditional nets, whose only label is 0), ``G_test`` = generator_test(z, y), ``G`` =
  generator(z, y), ``D`` = discriminator(G_test, y).

It also writes ``reference_configs.json``: for the reference's configs (``configs/*.yaml`` and
``configs/pretrained/*.yaml``, each merged into ``configs/default.yaml`` as the reference does), their
networks' family, image size, label count, z dimension and keyword arguments with the class defaults
filled in, their state-dict keys (as saved: ``module.*``) and shapes, and their parameter counts.

Remake them (byte-identical on CPU) with:

    python tests/data/gan_stability/make_fixtures.py --reference path/to/GAN_stability

PyYAML is needed for the configs (the reference's ``load_config`` uses the older ``yaml.load`` without
a loader, so the configs are read with ``yaml.safe_load`` and merged with the reference's
``update_recursive``).
"""
import argparse
import copy
import inspect
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

Z_DIM = 8
# name -> (reference family, image size, labels, samples, training steps before saving, keyword arguments of
# Generator and Discriminator). Only the first trains (its optimizers then hold a state): the fixture folder
# stays small.
CASES = {
    "resnet16_uncond": ("resnet", 16, 1, 4, 1, dict(nfilter=4, nfilter_max=8, embed_size=1)),
    "resnet2_32_cond": ("resnet2", 32, 5, 4, 0, dict(nfilter=1, embed_size=8)),
    "resnet3_64_uncond": ("resnet3", 64, 1, 2, 0, dict(nfilter=1, embed_size=1)),
    "resnet4_64_cond": ("resnet4", 64, 5, 2, 0, dict(nfilter=1, embed_size=8)),
}
TRAINING = {"optimizer": "rmsprop", "lr_g": 1e-4, "lr_d": 1e-4, "equalize_lr": False}  # the reference's defaults


def perturb_(net, generator):
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=generator))


def make_case(name, family, size, nlabels, samples, steps, kwargs, out, seed):
    from gan_training.checkpoints import CheckpointIO
    from gan_training.config import build_optimizers
    from gan_training.models import discriminator_dict, generator_dict
    from gan_training.train import Trainer, update_average

    torch.manual_seed(seed)
    G = generator_dict[family](z_dim=Z_DIM, nlabels=nlabels, size=size, **kwargs)
    D = discriminator_dict[family](family, nlabels=nlabels, size=size, **kwargs)
    G_test = copy.deepcopy(G)
    noise = torch.Generator().manual_seed(seed + 1)
    for net in (G, D, G_test):
        perturb_(net, noise)
    G, D, G_test = nn.DataParallel(G), nn.DataParallel(D), nn.DataParallel(G_test)  # as train.py does
    g_optimizer, d_optimizer = build_optimizers(G, D, {"training": TRAINING})
    trainer = Trainer(G, D, g_optimizer, d_optimizer, gan_type="standard", reg_type="real", reg_param=10.0)
    batch = torch.Generator().manual_seed(seed + 2)
    for _ in range(steps):
        y = torch.randint(0, nlabels, (6,), generator=batch)
        x_real = torch.rand(6, 3, size, size, generator=batch) * 2 - 1
        trainer.discriminator_trainstep(x_real, y, torch.randn(6, Z_DIM, generator=batch))
        trainer.generator_trainstep(y, torch.randn(6, Z_DIM, generator=batch))
        update_average(G_test, G, beta=0.999)

    checkpoints = CheckpointIO(checkpoint_dir=str(out))
    checkpoints.register_modules(generator=G, discriminator=D, g_optimizer=g_optimizer, d_optimizer=d_optimizer,
                                 generator_test=G_test)
    checkpoints.save(f"{name}.pt", it=1234)

    fixed = torch.Generator().manual_seed(seed + 3)
    z = torch.randn(samples, Z_DIM, generator=fixed)
    y = torch.randint(0, nlabels, (samples,), generator=fixed)
    with torch.no_grad():
        for net in (G, D, G_test):
            net.eval()
        images = G_test(z, y)
        tensors = dict(z=z, y=y, G_test=images, G=G(z, y), D=D(images, y))
    save_file({k: v.contiguous().clone() for k, v in tensors.items()}, str(out / f"{name}_io.safetensors"))
    print(f"{name}: G {sum(p.numel() for p in G.parameters())} D {sum(p.numel() for p in D.parameters())} "
          f"parameters, images {tuple(images.shape)}")


def effective_kwargs(cls, config_kwargs):
    """The keyword arguments a class is built with: the config's, and the signature's defaults for the rest."""
    defaults = {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()
                if p.default is not inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD}
    return {**defaults, **(config_kwargs or {})}


def config_entry(config):
    from gan_training.config import build_models
    from gan_training.models import discriminator_dict, generator_dict

    with torch.device("meta"):
        G, D = build_models(config)
    entry = {"size": config["data"]["img_size"], "nlabels": config["data"]["nlabels"],
             "z_dim": config["z_dist"]["dim"]}
    for key, net, classes in (("generator", G, generator_dict), ("discriminator", D, discriminator_dict)):
        part = config[key]
        kwargs = effective_kwargs(classes[part["name"]], part["kwargs"])
        entry[key] = {"family": part["name"],
                      "kwargs": {k: kwargs[k] for k in ("nfilter", "nfilter_max", "embed_size") if k in kwargs},
                      "parameters": sum(p.numel() for p in net.parameters()),
                      "keys": {f"module.{k}": list(v.shape) for k, v in net.state_dict().items()}}
    return entry


def make_reference_configs(reference, out):
    import yaml
    from gan_training.config import update_recursive

    default = yaml.safe_load((reference / "configs" / "default.yaml").read_text())
    # default.yaml is the base of the others (its empty kwargs do not build alone)
    paths = [path for path in sorted((reference / "configs").glob("*.yaml")) if path.name != "default.yaml"]
    paths += sorted((reference / "configs" / "pretrained").glob("*.yaml"))
    result = {}
    for path in paths:
        config = copy.deepcopy(default)
        update_recursive(config, yaml.safe_load(path.read_text()))
        name = str(path.relative_to(reference / "configs").with_suffix(""))
        result[name] = config_entry(config)
        counts = [result[name][net]["parameters"] for net in ("generator", "discriminator")]
        print(f"{name}: G {counts[0]:,} D {counts[1]:,}")
    (out / "reference_configs.json").write_text(json.dumps(result, indent=1) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference", required=True, type=Path, help="a clone of LMescheder/GAN_stability")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    reference = args.reference.resolve()
    sys.path.insert(0, str(reference))
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # one summation order: the same bytes on every run
    for i, (name, case) in enumerate(CASES.items()):
        make_case(name, *case, args.out, seed=1000 * (i + 1))
    make_reference_configs(reference, args.out)


if __name__ == "__main__":
    main()
