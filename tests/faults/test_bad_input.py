"""Bad input and failing systems give one clear line, never a traceback (issue: nothing lost, nothing confusing)."""

from __future__ import annotations

import errno
import gzip
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ganscape.cli import main
from ganscape.config import load_config
from ganscape.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parents[2]


def one_error_line(capsys, code, expected_code=2):
    """The command failed with ``expected_code`` and printed one 'ganscape: error:' message, no traceback."""
    err = capsys.readouterr().err
    assert code == expected_code, err
    assert err.startswith("ganscape: error:") and "Traceback" not in err, err
    return err


# ---------------------------------------------------------------- 7. validation


@pytest.mark.parametrize("override, message", [
    ("g_opt.lr=inf", "g_opt.lr must be a finite number, got 'inf'"),
    ("d_opt.eps=.inf", "d_opt.eps must be a finite number"),
    ("penalty=wgan_gp:inf", "the weight of wgan_gp must be a finite number"),
    ("train.ema=nan", "train.ema must be a finite number"),
    ("train.steps=" + "9" * 400, "train.steps must be an integer of at most 64 bits, got one of 400 digits"),
    ("train.seed=9223372036854775808", "train.seed must be an integer of at most 64 bits"),
    ("train.seed=-1", "train.seed must be >= 0"),
    ("train.device=meta", "train.device: 'meta' is not one of auto, cpu, cuda, cuda:N or mps"),
    ("train.device=cuda:x", "is not one of auto, cpu, cuda, cuda:N or mps"),
    ("run.name=" + "r" * 300, "is 300 bytes long; a file name may have at most 255"),
])
def test_values_that_make_no_sense_are_refused_before_any_work(override, message, capsys):
    """inf learning rates and eps (Adam with eps=inf trains doing nothing), 400-digit integers, seeds past
    2^63 - 1, unknown devices and names no file system takes (before: accepted, or tracebacks)."""
    err = one_error_line(capsys, main(["config", "show", override]))
    assert message in err


def test_seed_at_the_top_of_its_range_is_accepted():
    assert load_config(None, [f"train.seed={2**63 - 1}"]).train.seed == 2**63 - 1


def test_a_device_this_machine_lacks_is_a_clear_error(tiny, capsys):
    err = one_error_line(capsys, main(["train", *tiny, "train.device=mps"]))
    assert "train.device=mps but Apple's MPS is not available here" in err


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    return path


@pytest.mark.parametrize("content, message", [
    (b"\x89PNG\r\n\x1a\n\x00\x00binary", "is not a text file (not UTF-8)"),
    ("loss: ns\n" + "a:\n" + "".join("  " * i + f"b{i}:\n" for i in range(1, 12)) + "  " * 12 + "c: 1\n",
     "nests 13 levels deep; no config key is deeper than 6"),
    ("[" * 5000 + "]" * 5000, "nests too deeply to be a config"),
    ("loss: ns\nloss: hinge\n", "duplicate key 'loss' (line 2)"),
    ("train:\n  steps: 5\n  steps: 6\n", "duplicate key 'steps' (line 3)"),
    ("!!python/object/apply:os.system ['echo hi']\n", "is not valid YAML"),
    ("- a\n- b\n", "must hold a mapping of config keys, got list"),
])
def test_presets_are_plain_text_data_of_sane_depth_without_duplicate_keys(tmp_path, capsys, content, message):
    """Binary files (before: UnicodeDecodeError), deep nesting (RecursionError), duplicate keys (the last one
    silently won) and YAML object tags are refused with the file named."""
    path = write(tmp_path, "preset.yaml", content)
    err = one_error_line(capsys, main(["config", "show", str(path)]))
    assert str(path) in err and message in err


def test_a_missing_preset_lists_the_installed_ones_and_guesses(capsys):
    err = one_error_line(capsys, main(["train", "ring9"]))
    assert "config preset 'ring9' not found" in err and "Did you mean 'ring8'?" in err
    assert "Installed presets: biggan_cifar10, biggan_deep_imagenet128, " in err and "wn_dcgan_celeba." in err


# ---------------------------------------------------------------- the command's error boundary


def test_os_errors_are_explained_with_the_file_and_what_to_do(tiny, capsys, monkeypatch):
    """Permission, read-only, full disk and name-too-long errors from anywhere in a command (simulated at the
    checkpoint write) become one line naming the file and the remedy; the exit status is 2."""
    from ganscape.training import checkpoint

    for number, advice in ((errno.EACCES, "check the permissions"), (errno.EROFS, "read-only"),
                           (errno.ENOSPC, "free some space, then continue the run"),
                           (errno.ENAMETOOLONG, "choose a shorter name")):
        def failing(tensors, filename, metadata=None, number=number):
            raise OSError(number, os.strerror(number), filename)

        monkeypatch.setattr(checkpoint, "save_file", failing)
        err = one_error_line(capsys, main(["train", *tiny, f"run.name=os{number}", "train.steps=10"]))
        assert os.strerror(number) in err and advice in err and ".safetensors" in err


def test_an_unexpected_error_is_one_line_unless_debugging(tiny, capsys, monkeypatch):
    from ganscape.training import loop

    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(loop, "train_step", bug)
    err = one_error_line(capsys, main(["train", *tiny]), expected_code=1)
    assert "internal error: ZeroDivisionError: a bug" in err and "--debug" in err
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "train", *tiny, "run.name=debug"])
    monkeypatch.setenv("GANSCAPE_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main(["train", *tiny, "run.name=debug-env"])


def test_a_closed_pipe_ends_the_command_quietly(tmp_path):
    """'ganscape config show | head -1' (before: BrokenPipeError traceback)."""
    result = subprocess.run(f"{sys.executable} -m ganscape config show | head -1", shell=True, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.stdout == "loss: ns\n" and result.stderr == ""


# ---------------------------------------------------------------- data files


def idx(count, magic=2051, dims=(28, 28)):
    return struct.pack(">i", magic) + struct.pack(f">{1 + len(dims)}I", count, *dims) + bytes(count * 28 * 28)


def test_an_mnist_file_with_no_images_is_refused(tmp_path):
    root = tmp_path / "mnist"
    root.mkdir()
    (root / "t10k-images-idx3-ubyte").write_bytes(idx(0))
    (root / "t10k-labels-idx1-ubyte").write_bytes(struct.pack(">ii", 2049, 0))
    with pytest.raises(DataError, match="holds no images"):
        load_and_build(["data.name=mnist", f"data.root={root}", "data.split=test"])


def load_and_build(overrides):
    from ganscape.data import build_dataset

    return build_dataset(load_config(None, overrides))


def test_a_gzip_bomb_is_refused_without_inflating_it(tmp_path):
    """A .gz whose header announces 2 GiB of values is refused from its first bytes (before: inflated, 2.3 GB of
    memory, then refused)."""
    root = tmp_path / "mnist"
    root.mkdir()
    header = struct.pack(">i", 2051) + struct.pack(">3I", 3_000_000, 28, 28)
    with gzip.open(root / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(header)
        chunk = bytes(1 << 20)
        for _ in range(64):  # 64 MiB of zeros compresses to about 64 KiB
            f.write(chunk)
    (root / "t10k-labels-idx1-ubyte").write_bytes(struct.pack(">ii", 2049, 1) + b"\x01")
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DataError, match="more than any MNIST file holds"):
        load_and_build(["data.name=mnist", f"data.root={root}", "data.split=test"])
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 32 * 1024  # KiB: nothing was inflated


def test_a_zip_bomb_is_refused_from_its_directory(tmp_path):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("cat/huge.png", "w", force_zip64=True) as member:
            chunk = bytes(1 << 20)
            for _ in range(300):
                member.write(chunk)
    with pytest.raises(DataError, match=r"member cat/huge.png\) would inflate to 314,572,800 bytes"):
        load_and_build(["data.name=class_folder", f"data.root={path}", "data.resolution=8"])


def test_a_relative_data_root_says_where_it_was_looked_for(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=f"data.root celeba does not exist \\(a relative data.root is taken from the "
                                        f"current folder, {tmp_path}\\)"):
        load_and_build(["data.name=image_folder", "data.root=celeba", "data.resolution=8"])


def test_building_a_data_set_of_image_files_decodes_nothing(tmp_path, monkeypatch):
    """config show and eval need a data set's shape, not its pixels (before: all 50,000 CIFAR JPEGs were decoded
    first, 12-17 s); the files are decoded at the first batch."""
    from PIL import Image

    from ganscape.data import images

    root = tmp_path / "imgs" / "a"
    root.mkdir(parents=True)
    for i in range(5):
        Image.new("RGB", (8, 8), (i, 0, 0)).save(root / f"{i}.png")
    calls = []
    real = images.decode_image
    monkeypatch.setattr(images, "decode_image", lambda *a: calls.append(1) or real(*a))
    data = load_and_build(["data.name=class_folder", f"data.root={root.parent}"])
    assert data.shape == (3, 8, 8) and data.num_classes == 1 and calls == []
    data.sample(2, __import__("torch").Generator().manual_seed(0))
    assert len(calls) == 5


# ---------------------------------------------------------------- a newcomer's first hour


def test_a_failed_train_leaves_no_empty_run_directory(tmp_path, capsys):
    one_error_line(capsys, main(["train", "data.name=image_folder", f"data.root={tmp_path / 'none'}",
                                 "data.resolution=8", f"run.root={tmp_path / 'runs'}", "run.name=failed"]))
    assert not (tmp_path / "runs" / "failed").exists()


def test_overrides_may_follow_options(tiny, tmp_path, capsys):
    assert main(["train", *tiny, "--until", "10", "train.steps=20", "log.every=5"]) == 0
    out = capsys.readouterr().out
    assert "trained to step 10 of 20" in out and f"continue with: ganscape resume {tmp_path / 'runs' / 'tiny'}" in out
    assert out.count("run directory:") == 1


def test_resume_of_a_folder_that_does_not_exist(tmp_path, capsys):
    err = one_error_line(capsys, main(["resume", str(tmp_path / "nope")]))
    assert f"run directory {tmp_path / 'nope'} does not exist" in err


def test_eval_of_2d_data_names_the_flag(tiny, capsys):
    main(["train", *tiny])
    err = one_error_line(capsys, main(["eval", str(Path(tiny[0].split("=")[1]) / "tiny"), "--metrics", "fid"]))
    assert "--metrics modes" in err


def test_steps_per_second_are_not_rounded_to_zero(tiny, capsys, monkeypatch):
    """A slow step (4 s on the clock here) prints 0.25 steps/s (before: '0 steps/s')."""
    from ganscape.training import loop

    clock = iter(range(0, 10**6, 4))
    monkeypatch.setattr(loop.time, "perf_counter", lambda: float(next(clock)))
    assert main(["train", *tiny, "train.steps=10"]) == 0
    assert "step 10/10" in capsys.readouterr().out.split("0.25 steps/s")[0]


def test_the_inception_score_needs_no_reference_set(tmp_path, monkeypatch):
    """--metrics is on a data set whose test split is missing: IS compares with nothing, so nothing is built
    (before: it demanded the reference set it does not use)."""
    import torch

    import ganscape.metrics.evaluate as evaluate_module
    from ganscape.metrics.evaluate import Evaluator
    from random_inception import random_fid_inception_state

    weights = tmp_path / "w.pth"
    torch.save(random_fid_inception_state(), weights)
    monkeypatch.setattr(evaluate_module, "reference_data_config", lambda *a: pytest.fail("a reference was built"))
    cfg = load_config(None, ["data.name=digits", "eval.metrics=[is]", "eval.ref_root=/nonexistent",
                             "eval.samples=20", f"metrics.inception_weights={weights}"])
    evaluator = Evaluator.from_config(cfg, load_and_build(["data.name=digits"]), 0, "cpu")

    class Flat(torch.nn.Module):
        def forward(self, z, y=None):
            return torch.tanh(z[:, :1, None, None].expand(-1, 1, 32, 32))

    values = evaluator(Flat())
    assert values["is_mean"] >= 1.0 and evaluator.protocol()["reference"] == {"dataset": "digits"}


def test_presets_are_installed_with_the_package(tmp_path):
    """A wheel carries the presets, and bare names are found without the source tree."""
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                             "-w", str(tmp_path), str(REPO)], capture_output=True, text=True, timeout=600)
    if result.returncode != 0 and "No module named" in result.stderr:
        pytest.skip(f"cannot build a wheel here: {result.stderr.strip()[:200]}")
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("ganscape-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(Path(n).name for n in names if n.startswith("ganscape/configs/"))
    assert shipped == sorted(p.name for p in (REPO / "configs").glob("*.yaml")) and "ring8.yaml" in shipped
    found = subprocess.run([sys.executable, "-m", "ganscape", "config", "show", "grid25"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert found.returncode == 0 and "name: grid25" in found.stdout


def test_config_errors_for_one_key_reach_the_user_as_one_message():
    with pytest.raises(ConfigError) as err:
        load_config(None, ["g_opt.lr=-1", "train.steps=0"])
    assert str(err.value).count("\n") == 2  # all problems together, one per line
