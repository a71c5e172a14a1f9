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

import numpy as np
import pytest
import torch

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


def test_every_problem_of_a_config_is_reported_together(capsys):
    """An unknown key, a wrong type, an infinite value and an unknown choice: one error lists all four (before:
    the first type error stopped the check, so each run found one more mistake)."""
    err = one_error_line(capsys, main(["config", "show", "trian.steps=5", "train.batch_size=many", "g_opt.lr=inf",
                                       "loss=nope"]))
    assert err.splitlines()[1:] == [
        "  unknown config key 'trian.steps'. Did you mean 'train.steps', 'train.threads', 'train.seed'? Run "
        "'ganscape config keys' to list every key.",
        "  train.batch_size must be int, got 'many' (str).",
        "  g_opt.lr must be a finite number, got 'inf'.",
        "  loss: unknown choice 'nope'. Valid: hinge, ls, minimax, ns, wgan."]


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
    assert "Installed presets: biggan_cifar10, biggan_deep_imagenet128, " in err and "wn_resnet21_celeba." in err


# ---------------------------------------------------------------- the command's error boundary


def test_os_errors_are_explained_with_the_file_and_what_to_do(tiny, capsys, monkeypatch):
    """Permission, read-only, full disk and name-too-long errors from anywhere in a command (simulated at the
    checkpoint write) become one line naming the file and the remedy; the exit status is 2."""
    from ganscape.store import checkpoint

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


def allocate_on_cpu(*args):
    torch.empty(1 << 62, dtype=torch.uint8)  # PyTorch's CPU allocator refuses 2^62 bytes


def allocate_on_cuda(*args):
    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of "
                                 "79.1 GiB of which 1.2 GiB is free.")


def allocate_in_python(*args):
    raise MemoryError()


@pytest.mark.parametrize("allocate, size", [(allocate_on_cpu, " (it tried to allocate 4294967296.00 GiB)"),
                                            (allocate_on_cuda, " (it tried to allocate 2.00 GiB)"),
                                            (allocate_in_python, "")])
def test_running_out_of_memory_names_the_settings_that_grow_memory(tiny, capsys, monkeypatch, allocate, size):
    """An allocation that fails in a training step (CPU allocator: 2^62 bytes = 2^32 GiB, CUDA, Python) is the
    machine's limit, not a bug: exit status 2 and the settings to lower (before: 'internal error ... a bug')."""
    from ganscape.training import loop

    monkeypatch.setattr(loop, "train_step", allocate)
    err = one_error_line(capsys, main(["train", *tiny]))
    assert err == (f"ganscape: error: out of memory{size}; lower train.batch_size (with train.accumulate=N to keep "
                   "the batch per update), g.width, d.width, data.resolution, eval.samples or metrics.batch_size.\n")


@pytest.fixture
def read_only_folder(tmp_path, monkeypatch):
    """A folder without write permission. Root writes there anyway, so as root the folder's os.mkdir fails as the
    kernel fails it for other users (every write these tests make starts with a new subfolder)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    if os.geteuid() == 0:
        real_mkdir = os.mkdir

        def mkdir(path, *args, **kwargs):
            if Path(path).resolve().is_relative_to(folder):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
            return real_mkdir(path, *args, **kwargs)

        monkeypatch.setattr(os, "mkdir", mkdir)
    yield folder
    folder.chmod(0o700)


def test_a_sample_that_cannot_be_written_names_the_path_and_out(tiny, read_only_folder, capsys):
    """(before: 'choose another place (e.g. run.root=PATH)', an option sample does not have)."""
    assert main(["train", *tiny]) == 0
    capsys.readouterr()
    out = read_only_folder / "new" / "samples.npz"
    err = one_error_line(capsys, main(["sample", str(Path(tiny[0].split("=")[1]) / "tiny"), "--out", str(out)]))
    assert err == (f"ganscape: error: Permission denied ({out.parent}); check the permissions of the folder, or "
                   "choose another place (--out PATH).\n")


def npz_of_images(path, seed):
    images = np.random.default_rng(seed).integers(0, 256, size=(6, 8, 8, 3), dtype=np.uint8)
    np.savez(path, images=images)
    return str(path)


class PooledPixels(torch.nn.Module):
    """Stands in for the FID Inception where only the files a command writes matter: 2048 'features' per image
    from its mean pixel, in a blink (the real network takes seconds per image on a busy CPU)."""

    fc = None

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x, logits=False):
        return self.scale * x.mean(dim=(1, 2, 3))[:, None].expand(-1, 2048), None


def test_fid_that_cannot_write_its_cache_names_the_cache_folder(tmp_path, read_only_folder, capsys, monkeypatch):
    """fid caches the reference's features in the cache folder: the error names the path and the variable that
    moves the folder (before: run.root=PATH, which fid does not have)."""
    import ganscape.metrics.evaluate as evaluate_module

    monkeypatch.setattr(evaluate_module, "build_inception", lambda *args: PooledPixels())
    monkeypatch.setenv("GANSCAPE_INCEPTION_WEIGHTS", str(write(tmp_path, "weights.pth", b"hashed, not read")))
    monkeypatch.setenv("GANSCAPE_CACHE", str(read_only_folder))
    first, second = npz_of_images(tmp_path / "a.npz", 0), npz_of_images(tmp_path / "b.npz", 1)
    err = one_error_line(capsys, main(["fid", first, second, "--samples", "6"]))
    assert err == (f"ganscape: error: Permission denied ({read_only_folder / 'reference'}); check the permissions "
                   "of the folder, or choose another place (the cache folder: GANSCAPE_CACHE=PATH, or "
                   "metrics.cache_dir=PATH for reference features).\n")


class Greeting:
    """Pickles as a call of print: harmless, but code that loading the file would run."""

    def __reduce__(self):
        return (print, ("this file ran code",))


def test_a_weights_file_that_would_run_code_is_refused_in_ganscapes_words(tmp_path, capsys):
    """import and the FID Inception loader refuse a pickle naming a function with one line of their own (before:
    PyTorch's paragraph advising weights_only=False, the one thing not to do with such a file)."""
    path = tmp_path / "G.pth"
    torch.save({"linear.weight": torch.zeros(2), "greeting": Greeting()}, path)
    refused = (f"ganscape: error: {path} was refused: loading it would run code (it calls print), and ganscape reads "
               "only tensors from {}; save the weights alone, e.g. torch.save(model.state_dict(), PATH).\n")
    code = main(["import", "biggan-pytorch", str(path), "--resolution", "32", "--out", str(tmp_path / "model")])
    assert one_error_line(capsys, code) == refused.format("a PyTorch state dict")
    first = npz_of_images(tmp_path / "a.npz", 0)
    code = main(["fid", first, first, "--samples", "6", f"metrics.inception_weights={path}"])
    captured = capsys.readouterr()
    assert code == 2 and captured.err == refused.format("a file of FID Inception weights"), captured.err
    assert "this file ran code" not in captured.out and not (tmp_path / "model").exists()


def test_a_postgresql_study_without_its_driver_says_what_to_install(tmp_path, capsys, monkeypatch):
    """(before: SQLAlchemy's 'Failed to import DB access module ... Please install appropriate one')."""
    monkeypatch.setitem(sys.modules, "psycopg2", None)  # import psycopg2 fails as where it is not installed
    url = "postgresql://postgres@127.0.0.1:5432/postgres"
    err = one_error_line(capsys, main(["study", "create", "ring8_landscape", "--out", str(tmp_path / "s"),
                                       "--storage", url]))
    assert err == (f"ganscape: error: the study storage {url} is a PostgreSQL database, and its driver (psycopg2) "
                   "is not installed: pip install 'ganscape[postgres]'.\n")
    assert not (tmp_path / "s").exists()


def test_protocols_that_differ_are_compared_in_words_listing_only_the_differences():
    """(before: the first three differing flattened keys with Python reprs, 'reference.split 'train', now
    'test'', and every key of a metric's settings that one side lacks, as None)."""
    from ganscape.metrics.evaluate import protocol_differences

    common = {"seed": 3, "latent": {"dim": 128, "dist": "normal"}, "device": "cpu"}
    here = common | {"metrics": ["fid", "kid"], "num_samples": 10000, "reference": {"split": "test", "root": "d"},
                     "inception": {"weights_sha256": "a" * 64, "input": "tf"},
                     "kid": {"subsets": 100, "subset_size": 1000},
                     "seconds": 12.5}
    there = common | {"metrics": ["fid"], "num_samples": 5000, "reference": {"split": "train", "root": "d"},
                      "inception": {"weights_sha256": "b" * 64, "input": "tf"}, "seconds": 80.0}
    assert protocol_differences(here, there) == (
        "metrics fid, kid here, fid in the file; samples 10000 here, 5000 in the file; reference test here, train in "
        "the file; Inception weights SHA-256 aaaaaaaaaaaa here, SHA-256 bbbbbbbbbbbb in the file; kid settings here "
        "only")
    assert protocol_differences(here, here | {"seconds": 1.0}) == ""


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


def test_a_train_that_fails_in_its_first_step_leaves_no_events_file(tiny, tmp_path, capsys, monkeypatch):
    """TensorBoard's writer is made at the first value logged (before: at the start, so its events file kept a
    failed run's folder alive)."""
    from ganscape.training import loop

    monkeypatch.setattr(loop, "train_step", allocate_in_python)
    one_error_line(capsys, main(["train", *tiny, "log.tensorboard=true"]))
    assert not (tmp_path / "runs" / "tiny").exists()


def test_overrides_may_follow_options(tiny, tmp_path, capsys):
    assert main(["train", *tiny, "--until", "10", "train.steps=20", "log.every=5"]) == 0
    out = capsys.readouterr().out
    assert "trained to step 10 of 20" in out and f"continue with: ganscape resume {tmp_path / 'runs' / 'tiny'}" in out
    assert out.count("run directory:") == 1


def test_resume_of_a_folder_that_does_not_exist(tmp_path, capsys):
    err = one_error_line(capsys, main(["resume", str(tmp_path / "nope")]))
    assert f"run directory {tmp_path / 'nope'} does not exist" in err


def test_resume_of_a_run_without_checkpoints_says_how_to_start_it_again(tiny, capsys):
    """A run stopped before its first checkpoint (killed, say) cannot be resumed; the message gives the train
    command that starts it again in the same place, and that command works (before: 'has no checkpoint')."""
    assert main(["train", *tiny, "--until", "10"]) == 0
    run = Path(tiny[0].split("=")[1]) / "tiny"
    for checkpoint in (run / "checkpoints").iterdir():
        checkpoint.unlink()
    capsys.readouterr()
    err = one_error_line(capsys, main(["resume", str(run)]))
    again = f"ganscape train {run} run.root={run.parent} run.name=tiny"
    assert err.endswith(f"it stopped before its first. Start it again, with its config, name and place: {again}\n")
    assert main([*again.split()[1:], "train.steps=10"]) == 0
    assert "trained to step 10 of 10" in capsys.readouterr().out and any((run / "checkpoints").iterdir())


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
