"""Trained generators as artifacts: export, load anywhere (no data set, no network), sample, interpolate, score."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganscape.cli import main
from ganscape.config import load_config
from ganscape.errors import CheckpointError, ConfigError
from ganscape.hub import export_run, load_discriminator, load_generator, slerp
from ganscape.training.loop import train
from ganscape.runs import RunDir
from ganscape.runs import load_run_generator
from ganscape.training.snapshots import load_run_checkpoint

TINY = ["g.arch=dcgan", "d.arch=dcgan", "g.width=8", "d.width=8", "latent.dim=16", "train.steps=6",
        "train.batch_size=8", "log.every=3", "eval.every=100", "log.samples_every=0", "checkpoint.every=3",
        "log.tensorboard=false"]


def write_class_folder(root: Path, classes=("cat", "dog", "owl"), per_class=6) -> Path:
    rng = np.random.default_rng(0)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.full((16, 16, 3), 40 * k, dtype=np.uint8) + rng.integers(0, 60, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A class-conditional run on a class folder that the tests then take away."""
    base = tmp_path_factory.mktemp("hub")
    data = write_class_folder(base / "data")
    cfg = load_config(None, TINY + ["data.name=class_folder", f"data.root={data}", "data.conditional=true",
                                    f"run.root={base}", "run.name=run", "train.ema=0.9"])
    run = RunDir.create(cfg)
    train(cfg, run, progress=False)
    return run, data


def test_a_model_loads_in_a_fresh_process_without_its_data_and_samples_bit_for_bit(trained_run, tmp_path):
    """Exported, then loaded by another Python process after the training images are deleted: the same seeds
    and classes give exactly the samples of the run's own (EMA) generator."""
    run, data = trained_run
    G, cfg, step, spec = load_run_generator(run)
    labels = torch.tensor([2, 0, 1, 1, 2])
    from ganscape.metrics.evaluate import generated_batches

    expected = torch.cat(list(generated_batches(G, 5, spec.latent_dim, spec.latent_dist, 7, "cpu", 3, labels=labels)))
    model_dir = export_run(run, tmp_path / "model")
    moved = data.with_name("gone")
    shutil.move(data, moved)
    try:
        script = ("import sys, torch, ganscape; from safetensors.torch import save_file\n"
                  "m = ganscape.load_generator(sys.argv[1])\n"
                  "x = m.sample(5, seed=7, labels=m.class_labels(['owl', 'cat', 'dog', 1, 2]))\n"
                  "save_file({'x': x.contiguous()}, sys.argv[2])\n")
        out = tmp_path / "x.safetensors"
        result = subprocess.run([sys.executable, "-c", script, str(model_dir), str(out)], cwd=tmp_path,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
    finally:
        shutil.move(moved, data)
    from safetensors.torch import load_file

    assert torch.equal(load_file(out)["x"], expected)
    assert spec.class_names == ("cat", "dog", "owl")


def test_a_loaded_generator_is_a_module_to_call_move_and_wrap(trained_run, tmp_path):
    """``load_generator`` gives an ``nn.Module``: ``G(z, y)`` on the latents of a seed gives exactly what
    ``sample`` draws (the run's sampling path), ``.to`` reaches the network's weights, and a module that
    holds it sees its parameters and calls it."""
    from ganscape.metrics.evaluate import seeded_latents

    run, _ = trained_run
    G = load_generator(export_run(run, tmp_path / "m"))
    assert isinstance(G, torch.nn.Module) and not G.training and not G.net.training
    labels = torch.tensor([2, 0, 1, 1, 2])
    z = seeded_latents(5, G.spec.latent_dim, G.spec.latent_dist, 7, "cpu")
    expected = G.sample(5, seed=7, labels=labels)
    with torch.no_grad():
        assert torch.equal(G(z, labels), expected)

    class ToUnitRange(torch.nn.Module):
        def __init__(self, generator):
            super().__init__()
            self.generator = generator

        def forward(self, z, labels):
            return (self.generator(z, labels) + 1) / 2

    wrapped = ToUnitRange(G)
    assert {f"generator.net.{key}" for key in G.net.state_dict()} == set(wrapped.state_dict())
    with torch.no_grad():
        assert torch.equal(wrapped(z, labels), (expected + 1) / 2)
    assert G.to("cpu") is G and G.device == torch.device("cpu")
    wrapped.to(torch.float64)
    assert all(p.dtype == torch.float64 for p in G.net.parameters())
    with torch.no_grad():
        assert G(z.double(), labels).dtype == torch.float64


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)], ids=["umask022", "umask077"])
def test_exported_and_atomically_written_files_follow_the_umask(trained_run, tmp_path, umask, mode):
    """Every file of an exported model, a checkpoint and an evaluation result gets 0o666 less the umask,
    the mode open() gives a new file (safetensors alone creates 0600, which hid model.safetensors from
    the group and others)."""
    from ganscape.jsonio import write_json
    from ganscape.store.checkpoint import save_checkpoint

    run, _ = trained_run
    previous = os.umask(umask)
    try:
        out = export_run(run, tmp_path / "m", with_discriminator=True)
        written = [*out.iterdir(), save_checkpoint(tmp_path / "step.safetensors", {"x": torch.zeros(2)}),
                   write_json(tmp_path / "eval.json", {"values": {}})]
    finally:
        os.umask(previous)
    assert {p.name for p in out.iterdir()} == {"config.json", "model.safetensors", "discriminator.safetensors",
                                               "samples.png", "README.md"}
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in written} == {p.name: oct(mode) for p in written}


def test_a_run_directory_and_its_export_load_the_same(trained_run, tmp_path):
    run, _ = trained_run
    from_run, exported = load_generator(run.path), load_generator(export_run(run, tmp_path / "m"))
    assert from_run.config == exported.config and from_run.spec == exported.spec
    a, b = from_run.net.state_dict(), exported.net.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(from_run.sample(6, seed=1), exported.sample(6, seed=1))
    config = exported.config
    assert config["format"] == "ganscape-model-1" and config["weights"] == "ema"
    assert config["spec"]["shape"] == [3, 16, 16] and config["spec"]["class_names"] == ["cat", "dog", "owl"]
    assert config["provenance"]["step"] == 6 and config["provenance"]["data"]["name"] == "class_folder"
    card = (tmp_path / "m" / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: ganscape") and "![samples](samples.png)" in card
    assert Image.open(tmp_path / "m" / "samples.png").size == (4 * (8 * 18 + 2),) * 2  # enlarged 4 times to >= 512


def test_the_raw_generator_and_the_discriminator_export_too(trained_run, tmp_path):
    run, _ = trained_run
    out = export_run(run, tmp_path / "raw", raw=True, with_discriminator=True)
    state = load_run_checkpoint(run.latest_checkpoint()[1])
    raw = load_generator(out)
    assert raw.config["weights"] == "raw"
    assert all(torch.equal(raw.net.state_dict()[k], state["G"][k]) for k in state["G"])
    D = load_discriminator(out)
    assert all(torch.equal(D.state_dict()[k], state["D"][k]) for k in state["D"])
    with pytest.raises(CheckpointError, match="holds no discriminator"):
        load_discriminator(export_run(run, tmp_path / "ema"))


def hub_cache(root: Path, repo: str, files: Path) -> Path:
    """A Hugging Face Hub cache holding one snapshot of ``repo``, as huggingface_hub lays it out."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = root / f"models--{repo.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / revision
    snapshot.mkdir(parents=True)
    for file in files.iterdir():
        shutil.copy(file, snapshot / file.name)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(revision)
    return root


def test_a_hub_snapshot_loads_offline(trained_run, tmp_path):
    pytest.importorskip("huggingface_hub", reason="the Hub needs huggingface_hub: pip install huggingface_hub")
    run, _ = trained_run
    model_dir = export_run(run, tmp_path / "m")
    cache = hub_cache(tmp_path / "hub", "ganscape/tiny-dcgan", model_dir)
    env = os.environ | {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    script = ("import sys, ganscape\n"
              "m = ganscape.load_generator('ganscape/tiny-dcgan')\n"
              "print(m.source, float(m.sample(4, seed=2).sum()))\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    source, total = result.stdout.split()
    assert "snapshots" in source and float(total) == pytest.approx(float(load_generator(model_dir).sample(4, seed=2)
                                                                         .sum()), abs=1e-4)
    missing = subprocess.run([sys.executable, "-c", "import ganscape; ganscape.load_generator('ganscape/absent')"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert "cannot get the model 'ganscape/absent' from the Hugging Face Hub (HF_HUB_OFFLINE is set" in missing.stderr


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:300]),
     "model.safetensors is corrupt or not a safetensors file"),
    (lambda d: (d / "model.safetensors").unlink(), "model.safetensors does not exist"),
    (lambda d: rewrite(d, architecture="biggan_9000"), "unknown architecture 'biggan_9000'"),
    (lambda d: rewrite(d, format="diffusers"), r"is not a ganscape model config \(format 'diffusers'"),
    (lambda d: rewrite(d, network={"arch": "dcgan", "width": 16, "depth": 2, "norm": "none"}),
     r"seed.weight has shape \(256, 32\), the network needs \(512, 32\)"),
    (lambda d: rewrite(d, network={"arch": "dcgan", "width": 8, "depth": 2, "norm": "weight"}),
     "does not fit the network of its config.json: missing .*; unexpected"),
    (lambda d: rewrite(d, spec={"shape": [3, 16, 16], "num_classes": 2, "latent": {"dim": 16, "dist": "normal"}}),
     r"input.embed.weight has shape \(3, 16\), the network needs \(2, 16\)"),
    (lambda d: rewrite(d, spec={"shape": [3, 0, 16], "num_classes": -1, "latent": {"dim": 0, "dist": "cauchy"}}),
     "does not describe a model: shape .*num_classes -1.*latent dim 0.*latent dist 'cauchy'"),
    (lambda d: (d / "config.json").write_text("{not json"), "config.json cannot be read as a model config"),
])
def test_corrupt_or_foreign_models_are_refused_with_the_path(trained_run, tmp_path, damage, message):
    run, _ = trained_run
    model_dir = export_run(run, tmp_path / "m")
    damage(model_dir)
    with pytest.raises(CheckpointError, match=message) as err:
        load_generator(model_dir)
    assert str(model_dir) in str(err.value)


def rewrite(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | changes))


def test_a_missing_model_says_where_it_looked(tmp_path):
    with pytest.raises(CheckpointError, match="model 'nowhere' not found: no folder at .*nowhere"):
        load_generator("nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="neither an exported model .* nor a run directory"):
        load_generator(tmp_path / "empty")


# ---------------------------------------------------------------- truncation


def test_truncation_keeps_every_coordinate_inside_and_follows_the_truncated_normal():
    """200,000 draws at T = 0.7: all |z| <= T, and a Kolmogorov-Smirnov test against scipy's truncated normal
    (fixed seed) does not reject it, while it rejects the untruncated normal."""
    from scipy import stats

    from ganscape.nets import truncated_normal

    z = truncated_normal(2000, 100, 0.7, torch.Generator().manual_seed(0), "cpu")
    assert z.abs().max().item() <= 0.7
    values = z.flatten().double().numpy()
    assert stats.kstest(values, stats.truncnorm(-0.7, 0.7).cdf).pvalue > 0.01
    assert stats.kstest(values, stats.norm.cdf).pvalue < 1e-10
    z2 = truncated_normal(2000, 100, 0.7, torch.Generator().manual_seed(0), "cpu")
    assert torch.equal(z, z2)  # the same seed, the same latents


def test_truncation_is_refused_for_uniform_latents(tmp_path, capsys):
    cfg = load_config(None, ["latent.dist=uniform", "g.width=8", "d.width=8", "train.steps=3", "eval.every=100",
                             f"run.root={tmp_path}", "run.name=u", "log.tensorboard=false"])
    train(cfg, RunDir.create(cfg), progress=False)
    assert main(["sample", str(tmp_path / "u"), "--truncation", "0.5", "--out", str(tmp_path / "p.npz")]) == 2
    assert "latents are uniform, so there is nothing to truncate" in capsys.readouterr().err


def test_truncated_samples_use_the_truncated_latents(trained_run):
    run, _ = trained_run
    model = load_generator(run.path)
    a, b = model.sample(4, seed=3, truncation=0.5), model.sample(4, seed=3)
    assert not torch.equal(a, b) and torch.equal(a, model.sample(4, seed=3, truncation=0.5))


# ---------------------------------------------------------------- sampling and interpolation


def test_sample_writes_a_grid_a_folder_and_an_npz(trained_run, tmp_path, capsys):
    run, _ = trained_run
    assert main(["sample", str(run.path), "--per-class", "2", "--out", str(tmp_path / "grid.png")]) == 0
    width, height = Image.open(tmp_path / "grid.png").size  # a row per class, enlarged 10 times, labelled
    assert height == 10 * (3 * 18 + 2) and width > 10 * (2 * 18 + 2)
    assert main(["sample", str(run.path), "--n", "5", "--classes", "owl,cat", "--out", str(tmp_path / "pngs/")]) == 0
    assert sorted(p.name for p in (tmp_path / "pngs").glob("*.png")) == [f"{i:06d}.png" for i in range(5)]
    assert (tmp_path / "pngs" / "labels.csv").read_text().splitlines()[1:3] == ["000000.png,2", "000001.png,0"]
    assert main(["sample", str(run.path), "--n", "5", "--seed", "4", "--out", str(tmp_path / "s.npz")]) == 0
    with np.load(tmp_path / "s.npz") as npz:
        images, labels = npz["images"], npz["labels"]
    assert images.shape == (5, 16, 16, 3) and images.dtype == np.uint8 and labels.tolist() == [0, 1, 2, 0, 1]
    from ganscape.metrics.features import to_uint8

    expected = to_uint8(load_generator(run.path).sample(5, seed=4)).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(images, expected)
    assert main(["sample", str(run.path), "--classes", "yak", "--out", str(tmp_path / "x.png")]) == 2
    assert "unknown class 'yak'" in capsys.readouterr().err


def test_sample_step_draws_from_an_older_checkpoint(trained_run, tmp_path, capsys):
    """--step 3 samples the EMA generator of the step-3 checkpoint: the same images as that checkpoint's weights
    loaded by hand into a freshly built generator, and not those of the newest checkpoint (step 6)."""
    run, _ = trained_run
    sample = ["sample", str(run.path), "--n", "5", "--seed", "2", "--out"]
    assert main([*sample[:2], "--step", "3", *sample[2:], str(tmp_path / "old.npz")]) == 0
    assert main([*sample, str(tmp_path / "new.npz")]) == 0
    old, new = (np.load(tmp_path / name)["images"] for name in ("old.npz", "new.npz"))
    from ganscape.metrics.evaluate import generated_batches
    from ganscape.metrics.features import to_uint8
    from ganscape.nets import ModelSpec, build_generator

    state = load_run_checkpoint(run.checkpoints / "step_00000003.safetensors")
    spec = ModelSpec.from_json(state["spec"], "checkpoint")
    G = build_generator(run.read_config().g, spec)
    G.load_state_dict(state["G_ema"])
    expected = torch.cat(list(generated_batches(G.eval(), 5, spec.latent_dim, spec.latent_dist, 2, "cpu", 3,
                                                labels=torch.tensor([0, 1, 2, 0, 1]))))
    assert np.array_equal(old, to_uint8(expected).permute(0, 2, 3, 1).numpy()) and not np.array_equal(old, new)
    assert main([*sample[:2], "--step", "4", *sample[2:], str(tmp_path / "x.npz")]) == 2
    assert "no checkpoint at step 4 (checkpoints: 3, 6)" in capsys.readouterr().err
    model = export_run(run, tmp_path / "m")
    assert main(["sample", str(model), "--step", "3", "--out", str(tmp_path / "x.npz")]) == 2
    assert "--step picks a checkpoint of a run directory" in capsys.readouterr().err


def test_a_2d_generator_samples_to_a_scatter_picture(tmp_path):
    """Points of ring8 are drawn as a 600 x 540 scatter picture: generated points in orange over real ones."""
    cfg = load_config(None, ["data.name=ring8", "g.width=8", "d.width=8", "train.steps=2", "eval.every=100",
                             "log.samples_every=0", "checkpoint.every=2", f"run.root={tmp_path}", "run.name=ring",
                             "log.tensorboard=false"])
    train(cfg, RunDir.create(cfg), progress=False)
    assert main(["sample", str(tmp_path / "ring"), "--n", "500", "--out", str(tmp_path / "points.png")]) == 0
    rgb = np.asarray(Image.open(tmp_path / "points.png").convert("RGB")).astype(int)
    assert rgb.shape == (540, 600, 3)
    orange = (rgb[..., 0] > 200) & (rgb[..., 0] - rgb[..., 2] > 80)  # tab:orange is (255, 127, 14)
    grey = (abs(rgb[..., 0] - rgb[..., 2]) < 10) & (rgb[..., 0] < 150)  # the real points and the axes
    assert orange.sum() > 100 and grey.sum() > 100


def test_slerp_keeps_the_norm_path_and_ends_at_both_latents():
    a, b = torch.tensor([3.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 4.0])
    path = slerp(a, b, torch.linspace(0, 1, 5))
    torch.testing.assert_close(path[0], a)
    torch.testing.assert_close(path[-1], b)
    torch.testing.assert_close(path[2], 3.5 * torch.tensor([1.0, 0.0, 1.0]) / 2**0.5)  # halfway round, norm halfway
    assert (path[:, 1] == 0).all()  # on the great circle through a and b


def test_interpolation_between_classes_starts_and_ends_at_the_classes(trained_run, tmp_path):
    run, _ = trained_run
    model = load_generator(run.path)
    strip = model.interpolate(5, seed=2, rows=2, classes=("cat", "owl"))
    from ganscape.metrics.evaluate import seeded_latents

    z = seeded_latents(4, model.spec.latent_dim, "normal", 2, "cpu")[:2]
    ends = model.net(torch.cat([z, z]), torch.tensor([0, 0, 2, 2]))
    torch.testing.assert_close(strip.view(2, 5, 3, 16, 16)[:, 0], ends[[0, 1]])
    torch.testing.assert_close(strip.view(2, 5, 3, 16, 16)[:, -1], ends[[2, 3]])
    assert main(["interpolate", str(run.path), "--steps", "4", "--rows", "2", "--out", str(tmp_path / "a.gif")]) == 0
    gif = Image.open(tmp_path / "a.gif")
    assert gif.n_frames == 4 + 2 and gif.size == (14 * (2 * 18 + 2), 14 * (18 + 2))  # enlarged to >= 512
    assert main(["interpolate", str(run.path), "--steps", "4", "--out", str(tmp_path / "s.png")]) == 0
    assert Image.open(tmp_path / "s.png").size == (7 * (4 * 18 + 2),) * 2


# ---------------------------------------------------------------- scoring anything


@pytest.fixture
def random_weights(tmp_path, monkeypatch):
    from random_inception import random_fid_inception_state

    path = tmp_path / "inception.pth"
    torch.save(random_fid_inception_state(), path)
    monkeypatch.setenv("GANSCAPE_INCEPTION_WEIGHTS", str(path))
    return path


def test_fid_of_a_folder_against_itself_is_zero(trained_run, tmp_path, random_weights, capsys):
    run, _ = trained_run
    folder = tmp_path / "pngs"
    assert main(["sample", str(run.path), "--n", "24", "--out", f"{folder}/"]) == 0
    cache = f"metrics.cache_dir={tmp_path / 'cache'}"
    assert main(["fid", str(folder), str(folder), "--metrics", "fid,kid", "--out", str(tmp_path / "r.json"), cache]) == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert abs(result["values"]["fid"]) < 1e-6 and abs(result["values"]["kid_mean"]) < 1e-3
    assert result["protocol"]["first"] == result["protocol"]["second"] == f"image_folder {folder}"
    assert len(list((tmp_path / "cache").iterdir())) == 1  # one set of features, computed once


def test_fid_of_two_sets_equals_the_float64_formula_on_their_features(trained_run, tmp_path, random_weights):
    """ganscape fid (a model's samples against an .npz) against FID computed here in float64 with scipy's sqrtm
    from the features of the same 8-bit images: mu/sigma of each set, |mu1 - mu2|^2 + tr(S1 + S2 - 2 sqrt(S1 S2))."""
    from scipy import linalg

    from ganscape.metrics.features import inception_features, to_uint8
    from ganscape.metrics.inception import load_inception

    run, _ = trained_run
    model = load_generator(run.path)
    first = model.sample(40, seed=0)
    second = torch.rand(40, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    np.savez(tmp_path / "second.npz", images=to_uint8(second).permute(0, 2, 3, 1).numpy())
    assert main(["fid", str(run.path), str(tmp_path / "second.npz"), "--samples", "40", "--out",
                 str(tmp_path / "r.json"), f"metrics.cache_dir={tmp_path / 'cache'}"]) == 0
    ours = json.loads((tmp_path / "r.json").read_text())["values"]["fid"]
    network = load_inception(random_weights)
    f1 = inception_features([to_uint8(first).float() / 127.5 - 1], network, "tf")[0].double().numpy()
    f2 = inception_features([to_uint8(second).float() / 127.5 - 1], network, "tf")[0].double().numpy()
    mu1, mu2, s1, s2 = f1.mean(0), f2.mean(0), np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    reference = float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))
    assert ours == pytest.approx(reference, rel=1e-4)


def test_fid_sources_and_their_errors(tmp_path, capsys, random_weights):
    assert main(["fid", str(tmp_path / "nope"), "digits:test"]) == 2
    assert "is not a set of images I can open: no such file or folder" in capsys.readouterr().err
    assert main(["fid", "digits:valid", "digits:test"]) == 2
    assert "the split is train or test, not 'valid'" in capsys.readouterr().err
    assert main(["fid", "digits:test", "digits:test", "train.steps=3"]) == 2
    assert "only the metrics' settings apply" in capsys.readouterr().err
    (tmp_path / "bad.npz").write_bytes(b"no zip")
    assert main(["fid", str(tmp_path / "bad.npz"), "digits:test"]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["fid", "digits:test", "digits:train", "--samples", "30", "--metrics", "fid,kid,pr",
                 f"metrics.cache_dir={tmp_path / 'c'}"]) == 0
    out = capsys.readouterr().out
    assert "digits test against digits train" in out and "precision" in out


def test_fid_json_is_alone_on_stdout_and_progress_follows_the_terminal(tmp_path, capsys, monkeypatch,
                                                                        random_weights):
    """``--json``: stdout is one JSON object (a script can parse it); the summary, the note of --out, the
    warning that KID's subsets were clipped and the progress bars go to stderr. Progress bars (tqdm's
    "img/s") appear when stderr is a terminal, and not otherwise."""
    def fid(*extra, cache):
        return main(["fid", "digits:test", "digits:train", "--samples", "6", "--metrics", "kid",
                     f"metrics.cache_dir={tmp_path / cache}", *extra])

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert fid("--json", "--out", str(tmp_path / "r.json"), cache="a") == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == json.loads((tmp_path / "r.json").read_text())["values"]
    assert "digits test against digits train" in err and "wrote" in err and "kid.subset_size" in err
    assert "img/s" in err
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert fid(cache="b") == 0
    out, err = capsys.readouterr()
    assert "img/s" not in err and "digits test against digits train" in out


def test_eval_accepts_an_exported_model(trained_run, tmp_path, random_weights, capsys):
    run, data = trained_run
    model_dir = export_run(run, tmp_path / "m")
    assert main(["eval", str(model_dir), "--metrics", "fid", "--samples", "12", f"eval.ref_root={data}",
                 f"metrics.cache_dir={tmp_path / 'cache'}"]) == 0
    result = json.loads((model_dir / "eval" / "step_00000006.json").read_text())
    assert result["protocol"]["generator"] == "ema" and result["values"]["fid"] > 0
    assert main(["eval", str(model_dir), "--step", "3"]) == 2
    assert "--step and --raw apply to run directories" in capsys.readouterr().err


def test_configs_without_a_data_set_build_networks_from_the_spec():
    """ModelSpec carries everything a network needs: shape, classes, latent."""
    from ganscape.nets import ModelSpec, build_generator

    cfg = load_config(None, ["g.arch=sndcgan", "g.width=8"])
    G = build_generator(cfg.g, ModelSpec((3, 32, 32), 10, tuple("abcdefghij"), 16, "normal"))
    assert G(torch.randn(2, 16), torch.tensor([0, 9])).shape == (2, 3, 32, 32)
    with pytest.raises(ConfigError):
        build_generator(cfg.g, ModelSpec((3, 30, 30), 0, (), 16, "normal"))
