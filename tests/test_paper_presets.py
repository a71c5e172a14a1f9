"""The presets of GAN_stability (Mescheder et al.) and of Xiang & Li's normalization comparison, preset
inheritance (``base:``), and the ``npy_folder`` data set (GAN_stability's CelebA-HQ layout).

Networks are built on the meta device: the shapes are checked without allocating a weight.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from ganscape.config import dump_yaml, load_config, to_dict
from ganscape.data import build_dataset
from ganscape.errors import ConfigError, DataError
from ganscape.nets import ModelSpec, build_discriminator, build_generator, weight_layers
from ganscape.runs import RunDir
from ganscape.training.loop import train

# ------------------------------------------------------------------------------------------ presets

GAN_STABILITY = ["gan_stability_lsun_bedroom256", "gan_stability_lsun_church256", "gan_stability_lsun_bridge256",
                 "gan_stability_lsun_tower256", "gan_stability_celebahq1024", "gan_stability_imagenet128",
                 "gan_stability_celeba256", "gan_stability_cifar10", "gan_stability_digits"]
XIANG_LI = [f"{norm}_dcgan_{data}" for data in ("celeba", "lsun_bedroom", "cifar10")
            for norm in ("wn", "bn", "plain")] + ["wn_resnet21_celeba"]

NATIVE_SIDE = {"cifar10": 32, "stacked_digits": 32}  # data sets whose resolution 0 means their own side
# The sides each family builds (nets/gan_stability.py, nets/dcgan.py): powers of two in range.
LADDERS = {"gs_resnet": [8, 16, 32, 64, 128, 256, 512, 1024], "gs_resnet2": [32, 64, 128, 256, 512],
           "gs_resnet4": [64, 128, 256, 512, 1024], "dcgan": [16, 32, 64, 128], "wn_resnet": [16, 32, 64, 128]}
UNSUPPORTED_SIDE = {"gs_resnet": 48, "gs_resnet2": 48, "gs_resnet4": 96}


def side_of(cfg) -> int:
    return cfg.data.resolution or NATIVE_SIDE[cfg.data.name]


def spec_at(cfg, side: int) -> ModelSpec:
    classes = 1000 if cfg.data.conditional else 0  # ImageNet's classes (the only conditional preset)
    return ModelSpec((3, side, side), classes, tuple(str(k) for k in range(classes)), cfg.latent.dim)


def output_shapes(cfg, side: int, n: int = 2) -> tuple[tuple, tuple]:
    """The shapes of G(z, y) and D(G(z, y), y) for ``n`` samples, built and run on the meta device."""
    spec = spec_at(cfg, side)
    with torch.device("meta"):
        G, D = build_generator(cfg.g, spec), build_discriminator(cfg.d, spec)
        z = torch.empty(n, spec.latent_dim)
        y = torch.zeros(n, dtype=torch.int64) if spec.num_classes else None
        images = G(z, y)
        logits = D(images, y)
    return tuple(images.shape), tuple(logits.shape)


@pytest.mark.parametrize("name", GAN_STABILITY + XIANG_LI)
def test_preset_builds_its_networks_at_its_resolution_and_every_side_of_its_family(name):
    """G makes (N, 3, S, S) images and D one logit per image, at the preset's side S and at each side of the
    family's ladder (the sides its module documents)."""
    cfg = load_config(name)
    assert output_shapes(cfg, side_of(cfg)) == ((2, 3, side_of(cfg), side_of(cfg)), (2,))
    for side in LADDERS[cfg.g.arch]:
        assert output_shapes(cfg, side, n=1) == ((1, 3, side, side), (1,)), side


@pytest.mark.parametrize("arch, side", sorted(UNSUPPORTED_SIDE.items()))
def test_a_side_the_family_cannot_make_is_refused(arch, side):
    cfg = load_config("gan_stability_lsun_bedroom256", [f"g.arch={arch}", f"d.arch={arch}"])
    with pytest.raises(ConfigError, match=f"{arch} makes square images with sides"):
        output_shapes(cfg, side)


# The reference's settings, read off GAN_stability's configs/default.yaml and configs/{lsun_bedroom,
# lsun_church,lsun_bridge,lsun_tower,celebAHQ,imagenet}.yaml and configs/pretrained/celebA_pretrained.yaml:
# (model, nfilter, nfilter_max or None where the config leaves it out, embed_size, batch_size, img_size,
#  nlabels, LSUN category). default.yaml: z gauss 256, gan_type standard, reg_type real, reg_param 10,
# optimizer rmsprop (alpha 0.99, eps 1e-8 in gan_training/config.py), lr_g = lr_d = 1e-4, d_steps 1,
# take_model_average with model_average_beta 0.999.
REFERENCE = {
    "gan_stability_lsun_bedroom256": ("resnet", 64, 1024, 1, 64, 256, 1, "bedroom"),
    "gan_stability_lsun_church256": ("resnet", 64, 1024, 1, 64, 256, 1, "church_outdoor"),
    "gan_stability_lsun_bridge256": ("resnet", 64, 1024, 1, 64, 256, 1, "bridge"),
    "gan_stability_lsun_tower256": ("resnet", 64, 1024, 1, 64, 256, 1, "tower"),
    "gan_stability_celebahq1024": ("resnet", 16, 512, 1, 24, 1024, 1, None),
    "gan_stability_imagenet128": ("resnet2", 64, 1024, 256, 128, 128, 1000, None),
    "gan_stability_celeba256": ("resnet4", 64, None, 1, 64, 256, 1, None),
}
DEFAULT_YAML = {"z_dim": 256, "reg_param": 10.0, "lr": 1e-4, "alpha": 0.99, "eps": 1e-8, "beta": 0.999,
                "d_steps": 1}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_gan_stability_presets_equal_the_reference_configs(name):
    """Every setting against the table above, written from the reference's YAML files; R1's weight is
    2 * reg_param because the reference's penalty has no 1/2."""
    model, nf, nf_max, embed, batch, side, nlabels, lsun = REFERENCE[name]
    cfg = load_config(name)
    for net in (cfg.g, cfg.d):
        assert (net.arch, net.width, net.norm, net.settings.embed_size) == (f"gs_{model}", nf, "none", embed)
        if nf_max is not None:
            assert net.settings.nfilter_max == nf_max
    assert (cfg.train.batch_size, cfg.data.resolution) == (batch, side)
    assert cfg.data.conditional == (nlabels > 1)
    if lsun:
        assert (cfg.data.name, cfg.data.root) == ("lmdb", f"data/lsun/{lsun}_train_lmdb")
    check_gan_stability_training(cfg)


def check_gan_stability_training(cfg, lr: float = DEFAULT_YAML["lr"], beta: float = DEFAULT_YAML["beta"]):
    """default.yaml's training: NS loss, R1 only, RMSProp, EMA from step 0, Gaussian z, flips."""
    assert cfg.loss == "ns"
    assert [(t.name, t.weight) for t in cfg.penalty.use] == [("r1", 2 * DEFAULT_YAML["reg_param"])]
    assert cfg.penalty.pixel_scale == "data"
    for opt in (cfg.g_opt, cfg.d_opt):
        assert (opt.name, opt.lr, opt.alpha, opt.eps) == ("rmsprop", lr, DEFAULT_YAML["alpha"], DEFAULT_YAML["eps"])
    assert (cfg.train.n_disc, cfg.train.ema, cfg.train.ema_start) == (DEFAULT_YAML["d_steps"], beta, 0)
    assert (cfg.latent.dim, cfg.latent.dist) == (DEFAULT_YAML["z_dim"], "normal")


def test_gan_stability_cifar10_trains_as_default_yaml():
    """No reference config exists for CIFAR-10: default.yaml's training, resnet.py at 32 px."""
    cfg = load_config("gan_stability_cifar10")
    check_gan_stability_training(cfg)
    assert (cfg.data.name, cfg.data.flip, cfg.train.batch_size) == ("cifar10", True, 64)
    assert (cfg.g.arch, cfg.g.width, cfg.g.settings.nfilter_max, cfg.g.settings.embed_size) == ("gs_resnet", 64, 512, 1)


def test_gan_stability_digits_is_the_cpu_version():
    """The reference's training with a larger step size and a shorter EMA (its header says why), on the
    embedded stacked digits, evaluated by the cheap mode statistics."""
    cfg = load_config("gan_stability_digits")
    check_gan_stability_training(cfg, lr=1e-3, beta=0.99)
    assert (cfg.data.name, cfg.data.flip, cfg.eval.metrics, cfg.eval.samples) == ("stacked_digits", False, [], 2000)
    assert (cfg.train.steps, cfg.train.batch_size, cfg.g.width, cfg.g.settings.nfilter_max) == (600, 32, 8, 64)


XIANG_LI_NORMS = {"wn": "weight", "bn": "batch", "plain": "none"}


@pytest.mark.parametrize("data", ["celeba", "lsun_bedroom", "cifar10"])
def test_xiang_li_presets_differ_in_the_normalization_only(data):
    """The paper's training for all three (RMSProp lr 2e-5, alpha 0.9, eps 1e-6, batch 32, z ~ N(0, I)^128,
    the running reconstruction test of 200 held-out images with 50 steps at lr 0.01), and every setting but
    g.norm and d.norm equal across them."""
    configs = {norm: load_config(f"{norm}_dcgan_{data}") for norm in XIANG_LI_NORMS}
    for norm, cfg in configs.items():
        assert cfg.g.norm == cfg.d.norm == XIANG_LI_NORMS[norm]
        assert cfg.g.arch == cfg.d.arch == "dcgan"
        for opt in (cfg.g_opt, cfg.d_opt):
            assert (opt.name, opt.lr, opt.alpha, opt.eps) == ("rmsprop", 2e-5, 0.9, 1e-6)
        assert (cfg.train.batch_size, cfg.latent.dim, cfg.loss, cfg.penalty.use) == (32, 128, "ns", [])
        assert (cfg.eval.metrics, cfg.eval.every, cfg.eval.ref, cfg.checkpoint.keep_best) == (
            ["recon"], 1000, "test", "recon_mse")
        assert (cfg.metrics.recon.images, cfg.metrics.recon.steps, cfg.metrics.recon.lr) == (200, 50, 0.01)

    def without_norms(cfg) -> dict:
        tree = to_dict(cfg)
        for net in ("g", "d"):
            tree[net].pop("norm")
        return tree

    assert without_norms(configs["wn"]) == without_norms(configs["bn"]) == without_norms(configs["plain"])


def test_xiang_li_data_sets():
    assert [(c.data.name, c.data.resolution, c.data.test_size) for c in map(load_config, (
        "wn_dcgan_celeba", "wn_dcgan_lsun_bedroom", "wn_dcgan_cifar10"))] == [
        ("image_folder", 64, 2000), ("lmdb", 64, 2000), ("cifar10", 0, 0)]


def test_wn_resnet21_has_21_weight_layers_in_g_and_d():
    """The count in the preset's header: D 4 levels x 2 blocks x 2 convs + 4 projection shortcuts + the final
    conv = 21; G the input linear layer + 16 block convs + 4 projection shortcuts = 21."""
    cfg = load_config("wn_resnet21_celeba")
    spec = spec_at(cfg, side_of(cfg))
    with torch.device("meta"):
        G, D = build_generator(cfg.g, spec), build_discriminator(cfg.d, spec)
    assert (len(weight_layers(G)), len(weight_layers(D))) == (21, 21)
    shortcuts = [m for m in weight_layers(D) if m.kernel_size == (1, 1)]
    assert len(shortcuts) == 4
    for opt in (cfg.g_opt, cfg.d_opt):
        assert (opt.name, opt.lr, opt.alpha, opt.eps) == ("rmsprop", 2e-5, 0.9, 1e-8)
    assert (cfg.train.batch_size, cfg.g.norm, cfg.d.norm) == (32, "weight", "weight")


# -------------------------------------------------------------------------------------- inheritance


def write(path, text: str):
    path.write_text(text)
    return path


def test_a_preset_deep_merges_over_its_base(tmp_path):
    """Hand-written base and child: the child's keys win, the base's other keys stay, nested sections merge
    key by key, and the penalty shorthand replaces the base's list but keeps its pixel_scale."""
    write(tmp_path / "parent.yaml", "train: {steps: 50, batch_size: 8}\ng: {width: 32}\n"
                                    "penalty: {use: [r1:2], pixel_scale: unit}\n")
    child = write(tmp_path / "child.yaml", "base: parent\ntrain: {steps: 7}\npenalty: wgan_gp:1\n")
    cfg = load_config(child)
    assert (cfg.train.steps, cfg.train.batch_size, cfg.g.width) == (7, 8, 32)
    assert [(t.name, t.weight) for t in cfg.penalty.use] == [("wgan_gp", 1.0)] and cfg.penalty.pixel_scale == "unit"


def test_a_preset_extends_a_built_in_chain(tmp_path):
    """child -> bn_dcgan_celeba -> wn_dcgan_celeba: the root's optimizer, the middle's norm, the child's steps."""
    child = write(tmp_path / "mine.yaml", "base: bn_dcgan_celeba\ntrain: {steps: 11}\n")
    cfg = load_config(child, ["g_opt.lr=3e-5"])
    assert (cfg.train.steps, cfg.g.norm, cfg.d_opt.lr, cfg.g_opt.lr, cfg.data.test_size) == (11, "batch", 2e-5,
                                                                                           3e-5, 2000)


def test_the_resolved_config_is_the_merged_one(tmp_path):
    """A run's config.yaml holds the merged keys and no base:, and reads back to the same settings."""
    write(tmp_path / "parent.yaml", "train: {steps: 50, batch_size: 8}\n")
    child = write(tmp_path / "child.yaml", "base: parent.yaml\ntrain: {steps: 7}\n")
    cfg = load_config(child, [f"run.root={tmp_path / 'runs'}", "run.name=merged"])
    run = RunDir.create(cfg)
    run.release()
    written = yaml.safe_load(run.config_path.read_text())
    assert "base" not in written and (written["train"]["steps"], written["train"]["batch_size"]) == (7, 8)
    assert to_dict(load_config(run.path)) == to_dict(load_config(child))  # a run dir as preset drops run.*


def test_an_inheritance_cycle_is_refused_with_its_chain(tmp_path):
    write(tmp_path / "a.yaml", "base: b\ntrain: {steps: 1}\n")
    write(tmp_path / "b.yaml", "base: a\n")
    with pytest.raises(ConfigError, match=r"inheritance cycle: .*a\.yaml -> .*b\.yaml -> .*a\.yaml"):
        load_config(tmp_path / "a.yaml")
    write(tmp_path / "self.yaml", "base: self\n")
    with pytest.raises(ConfigError, match=r"cycle: .*self\.yaml -> .*self\.yaml"):
        load_config(tmp_path / "self.yaml")


def test_an_unknown_base_is_refused_with_a_suggestion(tmp_path):
    child = write(tmp_path / "child.yaml", "base: wn_dcgan_celbea\n")
    with pytest.raises(ConfigError, match=r"child\.yaml: base: config preset 'wn_dcgan_celbea' not found.*"
                                          r"Did you mean 'wn_dcgan_celeba'"):
        load_config(child)
    write(tmp_path / "empty.yaml", "base: ''\n")
    with pytest.raises(ConfigError, match="base must name a preset"):
        load_config(tmp_path / "empty.yaml")


# ------------------------------------------------------------------------------------------ npy_folder


def npy_config(root, *overrides):
    return load_config(None, ["data.name=npy_folder", f"data.root={root}", *overrides])


def test_npy_uint8_and_float32_images_scale_as_the_reference_loader(tmp_path):
    """GAN_stability's npy_loader: uint8 -> x / 127.5 - 1, float32 -> 2x - 1, and (1, 3, H, W) squeezed."""
    rng = np.random.default_rng(0)
    as_uint8 = rng.integers(0, 256, (3, 8, 8), dtype=np.uint8)
    as_float = rng.random((1, 3, 8, 8), dtype=np.float32)
    np.save(tmp_path / "a.npy", as_uint8)
    np.save(tmp_path / "b.npy", as_float)
    data = build_dataset(npy_config(tmp_path))
    assert (len(data), data.shape, data.num_classes) == (2, (3, 8, 8), 0)
    images, labels = data.take(torch.tensor([0, 1]))
    assert labels is None
    torch.testing.assert_close(images[0], torch.from_numpy(as_uint8.astype(np.float32) / 127.5 - 1), rtol=0,
                               atol=1e-6)
    torch.testing.assert_close(images[1], torch.from_numpy(2 * as_float[0] - 1), rtol=0, atol=1e-6)


def test_npy_class_folders_give_labels_and_resolution_resizes(tmp_path):
    """Labels by sorted class name (b -> 0, c -> 1); data.resolution=4 halves 8x8 files: a constant image stays
    constant, so each 4x4 image is the file's value."""
    for cls, value in (("c", 255), ("b", 0)):
        (tmp_path / cls).mkdir()
        np.save(tmp_path / cls / "x.npy", np.full((3, 8, 8), value, dtype=np.uint8))
    data = build_dataset(npy_config(tmp_path, "data.resolution=4"))
    assert (data.num_classes, data.class_names, data.shape) == (2, ("b", "c"), (3, 4, 4))
    images, labels = data.take(torch.tensor([0, 1]))
    assert labels.tolist() == [0, 1]
    assert images[0].eq(-1).all() and images[1].eq(1).all()


def test_npy_held_out_split_partitions_the_files(tmp_path):
    for k in range(10):
        np.save(tmp_path / f"{k}.npy", np.full((3, 4, 4), 20 * k, dtype=np.uint8))

    def values(split):
        data = build_dataset(npy_config(tmp_path, "data.test_size=3", f"data.split={split}"))
        images, _ = data.take(torch.arange(len(data)))
        return {round(float((x[0, 0, 0] + 1) * 127.5)) for x in images}

    train, test = values("train"), values("test")
    assert len(test) == 3 and len(train) == 7 and train | test == {20 * k for k in range(10)}


@pytest.mark.parametrize("array, message", [
    (np.zeros((3, 4, 4), dtype=np.float64), "dtype float64; an image file must be uint8"),
    (np.zeros((3, 4, 4), dtype=np.int16), "dtype int16"),
    (np.zeros((4, 4, 3), dtype=np.uint8), r"shape \(4, 4, 3\); an image file must be \(3, H, W\)"),
    (np.full((3, 4, 4), 2.0, dtype=np.float32), r"float32 with values in \[2, 2\]"),
    (np.zeros((3, 4, 6), dtype=np.uint8), "6x4; npy_folder images must be square"),
])
def test_npy_refuses_what_is_not_an_image_naming_the_file(tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(DataError, match=f"bad.npy.*{message}"):
        build_dataset(npy_config(tmp_path))


def test_npy_refuses_pickled_objects_and_mixed_sizes(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((3, 4, 4), dtype=np.uint8))
    np.save(tmp_path / "b.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    data = build_dataset(npy_config(tmp_path))
    with pytest.raises(DataError, match="b.npy as a NumPy image"):
        data.take(torch.tensor([1]))
    np.save(tmp_path / "b.npy", np.zeros((3, 8, 8), dtype=np.uint8))
    with pytest.raises(DataError, match="b.npy is 8x8, but the images of .* are 4x4"):
        build_dataset(npy_config(tmp_path)).take(torch.tensor([0, 1]))


def test_npy_refuses_files_both_flat_and_in_subfolders(tmp_path):
    (tmp_path / "faces").mkdir()
    np.save(tmp_path / "faces" / "a.npy", np.zeros((3, 4, 4), dtype=np.uint8))
    np.save(tmp_path / "b.npy", np.zeros((3, 4, 4), dtype=np.uint8))
    with pytest.raises(DataError, match=r"both in subfolders \(faces/a.npy\) and directly \(b.npy\)"):
        build_dataset(npy_config(tmp_path))


def test_npy_folder_trains_a_step_through_the_prefetcher(tmp_path, tiny):
    """Per-batch files go through training's prefetching: two steps of a tiny DCGAN on 8x8 .npy images."""
    for k in range(6):
        np.save(tmp_path / f"{k}.npy", np.full((3, 8, 8), 40 * k, dtype=np.uint8))
    cfg = load_config(None, [*tiny, "data.name=npy_folder", f"data.root={tmp_path}", "data.flip=true", "g.arch=dcgan",
                             "d.arch=dcgan", "g.width=4", "d.width=4", "train.steps=2", "train.batch_size=4",
                             "eval.every=100", "checkpoint.every=100", "log.samples_every=0"])
    summary = train(cfg, RunDir.create(cfg), progress=False)
    assert summary["step"] == 2
