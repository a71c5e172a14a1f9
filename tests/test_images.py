"""Image runs end to end: embedded digits, conditional training, the paper presets."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganscape.cli import main
from ganscape.config import load_config
from ganscape.data import build_dataset
from ganscape.nets import ModelSpec, build_discriminator, build_generator
from ganscape.plots import with_title
from ganscape.training.loop import train
from ganscape.runs import RunDir

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TINY_IMAGES = ["g.width=8", "d.width=8", "train.batch_size=8", "train.steps=2", "log.every=1", "eval.every=100",
               "log.samples_every=2", "checkpoint.every=2"]


def test_digits_preset_trains_through_the_command_line_and_writes_a_sample_grid(tmp_path, capsys):
    code = main(["train", str(REPO / "configs" / "digits_sndcgan.yaml"), f"run.root={tmp_path}", "run.name=d",
                 "log.tensorboard=true", *TINY_IMAGES])
    assert code == 0
    grid = np.asarray(Image.open(tmp_path / "d" / "samples" / "step_00000002.png"))
    side = 2 * (8 * 34 + 2)  # 8x8 images of 32x32 with 2-pixel padding (274 pixels), doubled to reach 512
    assert grid.shape[1] == side and side < grid.shape[0] < side + 40  # a one-line caption above the grid
    caption, tiles = grid[:-side], grid[-side + 4:-4, 4:-4]
    assert tiles.std() > 0  # generated pixels, not a blank picture
    assert (caption < 128).any() and (caption > 128).mean() > 0.8  # dark text on white
    assert list((tmp_path / "d" / "events").glob("events.out.tfevents.*"))
    assert "trained to step 2 of 2" in capsys.readouterr().out


def test_image_grids_are_captioned_with_step_and_generator():
    """The caption is drawn text: changing it changes the strip's pixels, never the grid below it."""
    grid = np.zeros((20, 300, 3), dtype=np.uint8)
    a, b = with_title(grid, "step 10, EMA generator"), with_title(grid, "step 20, generator")
    assert a.shape[1:] == (300, 3) and a.shape[0] > 20 and np.array_equal(a[-20:], grid)
    assert a.shape == b.shape and not np.array_equal(a[:-20], b[:-20])


@pytest.mark.parametrize("arch", ["sndcgan", "dcgan", "resnet_cifar", "wn_resnet"])
def test_conditional_image_training(tmp_path, arch):
    norm = "weight" if arch == "wn_resnet" else "none"
    cfg = load_config(None, [f"run.root={tmp_path}", "run.name=c", "data.name=digits", "data.conditional=true",
                             f"g.arch={arch}", f"d.arch={arch}", f"g.norm={norm}", f"d.norm={norm}",
                             "g.depth=1", "d.depth=1", "log.tensorboard=false", *TINY_IMAGES])
    data = build_dataset(cfg)
    assert data.num_classes == 10
    summary = train(cfg, RunDir.create(cfg), progress=False)
    assert summary["step"] == 2
    assert (tmp_path / "c" / "samples" / "step_00000002.png").is_file()


def test_every_preset_loads_and_its_networks_build_on_the_meta_device():
    import torch

    for preset in sorted((REPO / "configs").glob("*.yaml")):
        cfg = load_config(preset)
        if cfg.data.name in ("ring8", "grid25", "digits", "stacked_digits"):
            data = build_dataset(cfg)
            with torch.device("meta"):
                spec = ModelSpec.of_run(cfg, data)
                G, D = build_generator(cfg.g, spec), build_discriminator(cfg.d, spec)
            assert G is not None and D is not None


@pytest.mark.skipif(not (SHARED_DATA / "cifar10-test.zip").is_file(),
                    reason="the team's JPEG CIFAR-10 zips are not beside the repository (shared/data)")
@pytest.mark.parametrize("preset", ["cifar10_jpeg_sndcgan", "cifar10_jpeg_resnet_cifar"])
def test_cifar10_jpeg_presets_train_a_step_on_the_real_zip(tmp_path, preset, monkeypatch):
    # The presets read the 50,000-image training zip; the 10,000-image test zip has the same layout
    # and decodes faster, so it stands in for it here, and is the FID reference as in the presets.
    monkeypatch.setenv("GANSCAPE_INCEPTION_WEIGHTS", "fid-helper")
    test_zip = SHARED_DATA / "cifar10-test.zip"
    cfg = load_config(REPO / "configs" / f"{preset}.yaml",
                      [f"data.root={test_zip}", f"eval.ref_root={test_zip}", f"run.root={tmp_path}", "run.name=r",
                       "train.steps=1", "train.batch_size=4", "train.n_disc=1", "log.tensorboard=false",
                       "log.samples_every=1", "checkpoint.every=1", "eval.samples=8", "eval.ref_samples=8",
                       "metrics.kid_subset_size=4", f"metrics.cache_dir={tmp_path / 'cache'}"])
    data = build_dataset(cfg)
    assert (len(data), tuple(data.shape), data.num_classes) == (10000, (3, 32, 32), 10)
    summary = train(cfg, RunDir.create(cfg), progress=False)
    assert summary["step"] == 1 and summary["results"]["eval/fid"] > 0


def test_config_show_without_the_data_still_prints_the_config(capsys):
    """A class folder without data.resolution: the images' size is read from the files, so nothing is counted."""
    assert main(["config", "show", str(REPO / "configs" / "cifar10_jpeg_sndcgan.yaml"),
                 "data.root=/nonexistent/cifar10.zip"]) == 0
    out = capsys.readouterr().out
    assert "arch: sndcgan" in out and "# parameters: not counted, the data set is not available" in out


@pytest.mark.parametrize("preset, shape, classes", [
    ("landscape_sndcgan_cifar10", (3, 32, 32), 0),
    ("biggan_cifar10", (3, 32, 32), 10),  # conditional: CIFAR-10's 10 classes, known without its files
    ("landscape_resnet19_celebahq128", (3, 128, 128), 0),  # an image folder at the preset's data.resolution
])
def test_config_show_counts_parameters_without_the_data(capsys, preset, shape, classes):
    """The expected counts are those of G and D built by hand from a spec of the data set's shape and classes."""
    assert main(["config", "show", preset, "data.root=/nonexistent/data"]) == 0
    cfg = load_config(preset)
    spec = ModelSpec(shape, classes, latent_dim=cfg.latent.dim, latent_dist=cfg.latent.dist)
    with torch.device("meta"):
        G, D = build_generator(cfg.g, spec), build_discriminator(cfg.d, spec)
    expected = (f"# parameters: G {sum(p.numel() for p in G.parameters()):,}  "
                f"D {sum(p.numel() for p in D.parameters()):,}")
    assert expected in capsys.readouterr().out.splitlines()


def test_config_show_counts_image_network_parameters(capsys):
    assert main(["config", "show", str(REPO / "configs" / "digits_sndcgan.yaml"), "g.width=64", "d.width=64"]) == 0
    # SNDCGAN at width 64 for 3x32x32 with batch norm in G (hand-derived in test_architectures.py).
    assert "# parameters: G 3,828,739" in capsys.readouterr().out
