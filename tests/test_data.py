"""Image data sets, read back from small fixtures in each real on-disk format."""

import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganscape.cli import main
from ganscape.config import DataConfig, load_config
from ganscape.data import DATASETS, cifar10, images
from ganscape.data.images import InMemoryImages, LazyImages, held_out
from ganscape.errors import ConfigError, DataError

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def build(name, **fields):
    return DATASETS[name](DataConfig(name=name, **fields))


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def to_uint8(x):
    """Undo the [-1, 1] scaling."""
    return ((x + 1) * 127.5).round().to(torch.int64)


def check_batch(data, n=16):
    x, labels = data.sample(n, gen())
    assert x.dtype == torch.float32 and tuple(x.shape) == (n, *data.shape)
    assert x.min() >= -1 and x.max() <= 1
    if data.num_classes:
        assert labels.dtype == torch.int64 and labels.shape == (n,)
        assert 0 <= labels.min() and labels.max() < data.num_classes
    else:
        assert labels is None
    again, labels_again = data.sample(n, gen())
    assert torch.equal(x, again), "the same generator state must give the same batch"
    assert labels is None or torch.equal(labels, labels_again)
    return x, labels


def check_flips(plain, flipping, n=64):
    """With the same generator, a flipping data set's batch is the plain batch, some images mirrored."""
    x, labels = plain.sample(n, gen(1))
    xf, labels_f = flipping.sample(n, gen(1))
    same = (xf == x).flatten(1).all(1)
    mirrored = (xf == x.flip(-1)).flatten(1).all(1)
    assert (same | mirrored).all()
    assert (mirrored & ~same).any() and (same & ~mirrored).any()
    assert labels is None or torch.equal(labels, labels_f)


def encode(pixels, fmt="PNG"):
    """An image file's bytes; WEBP is written lossless so that colours survive exactly."""
    out = io.BytesIO()
    options = {"lossless": True} if fmt == "WEBP" else {}
    Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).save(out, fmt, **options)
    return out.getvalue()


def solid(color, width, height):
    return np.broadcast_to(np.asarray(color, dtype=np.uint8), (height, width, 3))


# --------------------------------------------------------------------------------------------------
# CIFAR-10: the real python-version layout

CIFAR_LABELS = {k: (3 * k + 1) % 10 for k in range(110)}  # image k's label

def cifar_image(k, label):
    """Image k: red = 20 * label, green = k, blue 0 with one 255 marker at (row 0, column 1), so
    the planes, their row-major order and mirroring are all visible. Image 0 is pure red."""
    planes = np.zeros((3, 32, 32), dtype=np.uint8)
    if k == 0:
        planes[0] = 255
        return planes
    planes[0], planes[1], planes[2, 0, 1] = 20 * label, k, 255
    return planes


def cifar_batch(ks, title):
    """A batch pickled as the real ones: a dict of bytes keys, data uint8 (N, 3072), labels a list."""
    labels = [CIFAR_LABELS[k] for k in ks]
    data = np.stack([cifar_image(k, label).reshape(3072) for k, label in zip(ks, labels)])
    batch = {b"batch_label": title.encode(), b"labels": labels, b"data": data,
             b"filenames": [f"image_{k}.png".encode() for k in ks]}
    return pickle.dumps(batch, protocol=2)


def write_cifar(tmp_path):
    """Miniature archive and folder: 5 training batches of 4 images (k 0..19), a test batch of 6 (k 100..105)."""
    files = {f"data_batch_{b + 1}": cifar_batch(range(4 * b, 4 * b + 4), f"training batch {b + 1} of 5")
             for b in range(5)}
    files["test_batch"] = cifar_batch(range(100, 106), "testing batch 1 of 1")
    files["batches.meta"] = pickle.dumps({b"label_names": [b"airplane"] * 10, b"num_cases_per_batch": 4}, protocol=2)
    folder = tmp_path / "extracted" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, raw in files.items():
        (folder / name).write_bytes(raw)
    archive = tmp_path / "archive" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    return archive, folder


def test_cifar10_reads_the_archive_and_the_folder_alike(tmp_path):
    archive, folder = write_cifar(tmp_path)
    reference = build("cifar10", root=str(archive))
    assert len(reference) == 20 and reference.shape == (3, 32, 32) and reference.num_classes == 10
    for root in (archive.parent, folder, folder.parent):
        data = build("cifar10", root=str(root))
        assert torch.equal(data.images, reference.images) and torch.equal(data.labels, reference.labels)
    test = build("cifar10", root=str(archive), split="test")
    assert len(test) == 6 and torch.equal(test.labels, torch.tensor([CIFAR_LABELS[k] for k in range(100, 106)]))
    assert "cifar10" in repr(test) and "6 images" in repr(test)


def test_cifar10_pixels_and_labels_land_in_place(tmp_path):
    archive, _ = write_cifar(tmp_path)
    data = build("cifar10", root=str(archive))
    assert (data.images[0, 0] == 255).all() and (data.images[0, 1:] == 0).all(), "a red image stays red"
    x, labels = check_batch(data, 200)
    pixels = to_uint8(x)
    for image, label in zip(pixels, labels.tolist()):
        k = int(image[1, 5, 5])
        if k == 0:
            assert (image[0] == 255).all() and (image[1:] == 0).all()
            continue
        assert (image[1] == k).all() and label == CIFAR_LABELS[k]
        assert (image[0] == 20 * label).all()
        assert image[2, 0, 1] == 255 and image[2].sum() == 255


def test_cifar10_flips_and_resolution(tmp_path):
    archive, _ = write_cifar(tmp_path)
    check_flips(build("cifar10", root=str(archive)), build("cifar10", root=str(archive), flip=True))
    small = build("cifar10", root=str(archive), resolution=16)
    assert small.shape == (3, 16, 16)
    check_batch(small)


def test_cifar10_missing_says_where_it_looked_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as err:
        build("cifar10")
    message = str(err.value)
    assert str(tmp_path / "data" / "cifar10" / "cifar-10-python.tar.gz") in message
    assert str(tmp_path / "data" / "cifar10" / "cifar-10-batches-py") in message
    assert cifar10.CIFAR10_URL in message and "ganscape data download cifar10" in message and "data.root=" in message


def test_cifar10_truncated_archive_is_named(tmp_path):
    archive, _ = write_cifar(tmp_path)
    cut = tmp_path / "cut" / "cifar-10-python.tar.gz"
    cut.parent.mkdir()
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(DataError, match="cifar-10-python.tar.gz"):
        build("cifar10", root=str(cut))


def python2_batch(data, labels):
    """A batch in the opcodes Python 2 wrote the official files with (protocol 2, byte strings as
    SHORT_BINSTRING/BINSTRING, numpy's pre-2.0 module names), assembled by hand."""
    def string(raw):
        return b"U" + bytes([len(raw)]) + raw

    dtype = (b"cnumpy\ndtype\n" + string(b"u1") + b"K\x00K\x01\x87R"  # dtype('u1', 0, 1)
             + b"(K\x03" + string(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb")  # its state
    array = (b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n" + b"K\x00\x85" + string(b"b")
             + b"\x87R" + b"(K\x01" + b"K" + bytes([len(data)]) + b"M\x00\x0c\x86" + dtype + b"\x89"
             + b"T" + struct.pack("<I", data.size) + data.tobytes() + b"tb")
    label_list = b"](" + b"".join(b"K" + bytes([label]) for label in labels) + b"e"
    return (b"\x80\x02}(" + string(b"batch_label") + string(b"testing batch 1 of 1") + string(b"data") + array
            + string(b"labels") + label_list + b"u.")


def test_cifar10_reads_batches_written_by_python_2(tmp_path):
    data = np.stack([cifar_image(k, CIFAR_LABELS[k]).reshape(3072) for k in (0, 7, 9)])
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(python2_batch(data, [CIFAR_LABELS[k] for k in (0, 7, 9)]))
    test = build("cifar10", root=str(tmp_path), split="test")
    assert torch.equal(test.images.reshape(3, 3072), torch.from_numpy(data))
    assert test.labels.tolist() == [CIFAR_LABELS[k] for k in (0, 7, 9)]


def test_cifar10_refuses_a_pickle_that_would_run_code(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    target = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return os.mkdir, (str(target),)

    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Payload(), b"labels": []}, protocol=2))
    with pytest.raises(DataError, match="refusing to load the global"):
        build("cifar10", root=str(folder), split="test")
    assert not target.exists()


# --------------------------------------------------------------------------------------------------
# image_folder

FORMATS = ["PNG", "BMP", "WEBP"]
FOLDER_COLORS = [(20 * i, 250 - 20 * i, 11 * i) for i in range(10)]


def write_image_folder(root):
    """Ten solid-coloured images of different sizes and formats, some nested, plus files to ignore."""
    for i, color in enumerate(FOLDER_COLORS):
        folder = root / ("nested/deeper" if i % 3 == 0 else "")
        folder.mkdir(parents=True, exist_ok=True)
        fmt = FORMATS[i % len(FORMATS)]
        suffix = fmt.upper() if i == 4 else fmt.lower()  # suffixes are matched in any case
        (folder / f"img_{i}.{suffix}").write_bytes(encode(solid(color, 16 + 5 * i, 40 - 3 * i), fmt))
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden.png").write_bytes(encode(solid((1, 2, 3), 8, 8)))
    return root


def colors_of(data):
    """The set of colour indices of every image of an in-memory data set (their centre pixels)."""
    centre = data.images[:, :, data.shape[1] // 2, data.shape[2] // 2].to(torch.int64)
    found = set()
    for rgb in centre.tolist():
        distance = [sum(abs(a - b) for a, b in zip(rgb, color)) for color in FOLDER_COLORS]
        assert min(distance) <= 6, f"{rgb} is none of the fixture colours"
        found.add(distance.index(min(distance)))
    return found


def test_image_folder_resizes_crops_and_splits(tmp_path):
    root = write_image_folder(tmp_path / "faces")
    data = build("image_folder", root=str(root), resolution=12)
    assert isinstance(data, InMemoryImages) and len(data) == 10 and data.shape == (3, 12, 12)
    assert data.num_classes == 0 and colors_of(data) == set(range(10))
    check_batch(data)
    train = build("image_folder", root=str(root), resolution=12, test_size=3)
    test = build("image_folder", root=str(root), resolution=12, test_size=3, split="test")
    assert (len(train), len(test)) == (7, 3)
    assert colors_of(train).isdisjoint(colors_of(test)) and colors_of(train) | colors_of(test) == set(range(10))
    again = build("image_folder", root=str(root), resolution=12, test_size=3, split="test")
    assert torch.equal(again.images, test.images)


def test_held_out_split_is_a_fixed_partition():
    names = [f"img_{i:03d}.png" for i in range(50)]
    test, train = held_out(names, 5, "test", "x"), held_out(names, 5, "train", "x")
    assert sorted(test + train) == list(range(50)) and len(test) == 5
    assert test == [10, 12, 21, 26, 40], "changing the held-out split would silently change every test set"
    assert held_out(names + ["img_999.png"], 5, "test", "x") == test, "a new file leaves the split alone"
    assert held_out(names, 0, "train", "x") == list(range(50))


def test_resize_keeps_the_centre_of_wide_and_tall_images(tmp_path):
    root = tmp_path / "stripes"
    root.mkdir()
    wide = np.zeros((20, 80, 3), dtype=np.uint8)
    wide[:, :20, 0], wide[:, 20:60, 1], wide[:, 60:, 2] = 255, 255, 255
    Image.fromarray(wide).save(root / "wide.png")
    Image.fromarray(wide.transpose(1, 0, 2).copy()).save(root / "tall.png")
    data = build("image_folder", root=str(root), resolution=16)
    assert data.images.shape == (2, 3, 16, 16)
    assert (data.images[:, 1] >= 250).all() and (data.images[:, [0, 2]] <= 5).all(), "only the green centre remains"


def test_lazy_decoding_gives_the_same_batches(tmp_path, monkeypatch):
    root = write_image_folder(tmp_path / "faces")
    in_memory = build("image_folder", root=str(root), resolution=12, flip=True)
    monkeypatch.setattr(images, "MEMORY_LIMIT", 0)
    lazy = build("image_folder", root=str(root), resolution=12, flip=True)
    assert isinstance(lazy, LazyImages) and len(lazy) == 10 and "LazyImages" in repr(lazy)
    x, _ = check_batch(lazy, 32)
    assert torch.equal(x, in_memory.sample(32, gen())[0])


def test_take_gives_fixed_unflipped_images_in_memory_and_lazily(tmp_path, monkeypatch):
    root = write_image_folder(tmp_path / "faces")
    in_memory = build("image_folder", root=str(root), resolution=12, flip=True)
    index = torch.tensor([3, 0, 3, 7])
    x, labels = in_memory.take(index)
    assert labels is None and x.shape == (4, 3, 12, 12)
    assert torch.equal(x, in_memory.images[index].float() / 127.5 - 1)  # exactly the stored images: no flips
    assert torch.equal(in_memory.take(index)[0], x)  # and nothing random
    monkeypatch.setattr(images, "MEMORY_LIMIT", 0)
    lazy = build("image_folder", root=str(root), resolution=12, flip=True)
    assert isinstance(lazy, LazyImages)
    assert torch.equal(lazy.take(index)[0], x)


def test_take_returns_the_labels_of_the_indices():
    data = InMemoryImages(torch.arange(4, dtype=torch.uint8).view(4, 1, 1, 1).expand(4, 1, 2, 2).contiguous(),
                          torch.tensor([2, 0, 1, 2]), name="tiny", num_classes=3)
    x, labels = data.take(torch.tensor([2, 1]))
    assert labels.tolist() == [1, 0]
    assert x[:, 0, 0, 0].tolist() == pytest.approx([2 / 127.5 - 1, 1 / 127.5 - 1], abs=1e-7)


def test_corrupt_and_truncated_images_are_named(tmp_path, monkeypatch):
    root = write_image_folder(tmp_path / "faces")
    noisy = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    (root / "truncated.png").write_bytes(encode(noisy)[:3000])
    data = build("image_folder", root=str(root), resolution=12)  # files are decoded when first needed
    with pytest.raises(DataError, match="truncated.png"):
        data.sample(4, gen())
    (root / "truncated.png").unlink()
    (root / "garbage.jpg").write_bytes(b"\xff\xd8 this is no jpeg")
    with pytest.raises(DataError, match="garbage.jpg"):
        build("image_folder", root=str(root), resolution=12).take(torch.arange(2))
    monkeypatch.setattr(images, "MEMORY_LIMIT", 0)
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "garbage.jpg").write_bytes(b"\xff\xd8 this is no jpeg")
    lazy = build("image_folder", root=str(only_bad), resolution=12)
    with pytest.raises(DataError, match="garbage.jpg"):
        lazy.sample(4, gen())


def test_image_folder_config_errors(tmp_path):
    root = write_image_folder(tmp_path / "faces")
    with pytest.raises(ConfigError, match="data.resolution"):
        build("image_folder", root=str(root))
    with pytest.raises(ConfigError, match="data.root"):
        build("image_folder", resolution=8)
    with pytest.raises(ConfigError, match="data.test_size"):
        build("image_folder", root=str(root), resolution=8, split="test")
    with pytest.raises(ConfigError, match="holds out all 10"):
        build("image_folder", root=str(root), resolution=8, test_size=10)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        build("image_folder", root=str(tmp_path / "empty"), resolution=8)


# --------------------------------------------------------------------------------------------------
# class_folder: a folder or a zip of <class>/<image>

CLASS_COLORS = {"dog": (200, 10, 10), "ant": (10, 200, 10), "cat": (10, 10, 200)}  # sorted: ant 0, cat 1, dog 2


def class_files(prefix=""):
    """Member names and PNG bytes: three images per class, of different sizes."""
    return {f"{prefix}{name}/{i:04d}.png": encode(solid(color, 10 + 4 * i, 12))
            for name, color in CLASS_COLORS.items() for i in range(3)}


def write_zip(path, files, with_folders=False):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        if with_folders:  # like the real CIFAR zips, which list their folders too
            for folder in sorted({name.rsplit("/", 1)[0] + "/" for name in files}):
                archive.writestr(folder, b"")
        for name, raw in files.items():
            archive.writestr(name, raw)
    return path


def check_class_colors(data):
    x, labels = check_batch(data, 48)
    colors = [CLASS_COLORS[name] for name in sorted(CLASS_COLORS)]
    for image, label in zip(to_uint8(x), labels.tolist()):
        assert (image[:, 4, 4] - torch.tensor(colors[label])).abs().max() <= 2


def test_class_folder_from_a_folder_and_a_zip(tmp_path):
    folder = tmp_path / "classes"
    for name, raw in class_files().items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(raw)
    square = write_zip(tmp_path / "square.zip", {f"{name}/0.png": encode(solid(color, 6, 6)) for name, color in
                                                 CLASS_COLORS.items()})
    assert build("class_folder", root=str(square)).shape == (3, 6, 6)
    sources = [folder, write_zip(tmp_path / "plain.zip", class_files()),
               write_zip(tmp_path / "train.zip", class_files("train/"), with_folders=True)]
    reference = None
    for root in sources:
        data = build("class_folder", root=str(root), resolution=8)
        assert len(data) == 9 and data.shape == (3, 8, 8) and data.num_classes == 3
        assert torch.equal(data.labels, torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2]))
        check_class_colors(data)
        reference = data.images if reference is None else reference
        assert torch.equal(data.images, reference)


def test_class_folder_zip_read_lazily_and_errors(tmp_path, monkeypatch):
    path = write_zip(tmp_path / "train.zip", class_files("train/"))
    in_memory = build("class_folder", root=str(path), resolution=8)
    monkeypatch.setattr(images, "MEMORY_LIMIT", 0)
    lazy = build("class_folder", root=str(path), resolution=8)
    assert isinstance(lazy, LazyImages) and lazy.num_classes == 3
    check_class_colors(lazy)
    assert all(torch.equal(a, b) for a, b in zip(lazy.sample(32, gen()), in_memory.sample(32, gen())))

    monkeypatch.setattr(images, "MEMORY_LIMIT", 2**30)
    broken = write_zip(tmp_path / "broken.zip", {**class_files(), "cat/9999.jpg": b"\xff\xd8 not a jpeg"})
    with pytest.raises(DataError, match=r"broken.zip \(member cat/9999.jpg\)"):
        build("class_folder", root=str(broken), resolution=8).sample(2, gen())
    loose = write_zip(tmp_path / "loose.zip", {**class_files(), "stray.png": encode(solid((0, 0, 0), 4, 4))})
    with pytest.raises(DataError, match="'stray.png' is in no class folder"):
        build("class_folder", root=str(loose), resolution=8)
    with pytest.raises(ConfigError, match=r"(?s)data.resolution=0 keeps .*ant/0000.png\) is 10x12, not square"):
        build("class_folder", root=str(path))
    (tmp_path / "not.zip").write_bytes(b"plain bytes")
    with pytest.raises(DataError, match="neither a folder nor a zip"):
        build("class_folder", root=str(tmp_path / "not.zip"), resolution=8)


# --------------------------------------------------------------------------------------------------
# MNIST IDX files

def idx_bytes(array, magic):
    array = np.asarray(array, dtype=np.uint8)
    return struct.pack(f">i{array.ndim}I", magic, *array.shape) + array.tobytes()


def mnist_digits(n, first_label):
    """n digits: digit k has label (first_label + k) % 10, value 20 * label + 10, and a marker at (0, 1)."""
    labels = (first_label + np.arange(n)) % 10
    digits = np.repeat((20 * labels + 10).astype(np.uint8)[:, None, None], 28, 1).repeat(28, 2)
    digits[:, 0, 1] = 255
    return digits, labels


def write_mnist(root, gz):
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n, first in (("train", 12, 0), ("t10k", 5, 7)):
        digits, labels = mnist_digits(n, first)
        for stem, raw in ((f"{prefix}-images-idx3-ubyte", idx_bytes(digits, 2051)),
                          (f"{prefix}-labels-idx1-ubyte", idx_bytes(labels, 2049))):
            (root / (stem + ".gz" if gz else stem)).write_bytes(gzip.compress(raw) if gz else raw)
    return root


def test_mnist_idx_files_plain_and_gzipped(tmp_path):
    for gz in (False, True):
        root = write_mnist(tmp_path / f"mnist-{gz}", gz)
        data = build("mnist", root=str(root))
        assert len(data) == 12 and data.shape == (1, 32, 32) and data.num_classes == 10
        check_batch(data)
        native = build("mnist", root=str(root), resolution=28, split="test")
        assert len(native) == 5 and native.shape == (1, 28, 28)
        x, labels = check_batch(native, 20)
        assert (to_uint8(x)[:, 0, 5, 5] == 20 * labels + 10).all()
        check_flips(native, build("mnist", root=str(root), resolution=28, split="test", flip=True))


def test_mnist_bad_files_are_named(tmp_path):
    root = write_mnist(tmp_path / "mnist", gz=False)
    images_file = root / "train-images-idx3-ubyte"
    good = images_file.read_bytes()
    images_file.write_bytes(struct.pack(">i", 2049) + good[4:])
    with pytest.raises(DataError, match=r"images-idx3-ubyte is not an MNIST image file: its magic number is 2049"):
        build("mnist", root=str(root))
    images_file.write_bytes(good[:-100])
    with pytest.raises(DataError, match="train-images-idx3-ubyte has .* the file is truncated"):
        build("mnist", root=str(root))
    gz_root = write_mnist(tmp_path / "gz", gz=True)
    labels_file = gz_root / "t10k-labels-idx1-ubyte.gz"
    labels_file.write_bytes(labels_file.read_bytes()[:15])
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz"):
        build("mnist", root=str(gz_root), split="test")
    with pytest.raises(DataError, match=r"(?s)not found.*nowhere/t10k-images-idx3-ubyte.gz.*data.root="):
        build("mnist", root=str(tmp_path / "nowhere"), split="test")


def test_stacked_mnist_stacks_three_digits(tmp_path):
    root = write_mnist(tmp_path / "mnist", gz=True)
    data = build("stacked_mnist", root=str(root), resolution=28)
    assert data.shape == (3, 28, 28) and data.num_classes == 1000 and len(data) == 12
    x, labels = check_batch(data, 64)
    digits = (to_uint8(x)[:, :, 5, 5] - 10) // 20
    assert torch.equal(labels, 100 * digits[:, 0] + 10 * digits[:, 1] + digits[:, 2])
    assert (digits[:, 0] != digits[:, 1]).any() and (digits[:, 1] != digits[:, 2]).any()
    assert build("stacked_mnist", root=str(root)).shape == (3, 32, 32)


# --------------------------------------------------------------------------------------------------
# LMDB (LSUN's export format)

def write_lmdb(path, values):
    lmdb = pytest.importorskip("lmdb", reason="the lmdb package is not installed (pip install lmdb)")
    env = lmdb.open(str(path), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for key, value in values.items():
            txn.put(key, value)
    env.close()
    return path


def lmdb_values():
    """LSUN-like records: 40-hex-digit keys, webp, jpeg or png images of different sizes."""
    formats = ["WEBP", "JPEG", "PNG"]
    return {f"{i:040x}".encode(): encode(solid(color, 12 + 3 * i, 20), formats[i % 3])
            for i, color in enumerate(FOLDER_COLORS)}


def test_lmdb_images_split_and_decode_lazily(tmp_path, monkeypatch):
    path = write_lmdb(tmp_path / "bedroom_train_lmdb", lmdb_values())
    data = build("lmdb", root=str(path), resolution=12)
    assert len(data) == 10 and data.shape == (3, 12, 12) and colors_of(data) == set(range(10))
    check_batch(data)
    assert len(build("lmdb", root=str(path / "data.mdb"), resolution=12)) == 10
    train = build("lmdb", root=str(path), resolution=12, test_size=4)
    test = build("lmdb", root=str(path), resolution=12, test_size=4, split="test")
    assert (len(train), len(test)) == (6, 4) and colors_of(train).isdisjoint(colors_of(test))
    monkeypatch.setattr(images, "MEMORY_LIMIT", 0)
    lazy = build("lmdb", root=str(path), resolution=12, test_size=4, split="test")
    assert isinstance(lazy, LazyImages)
    assert torch.equal(lazy.sample(16, gen())[0], test.sample(16, gen())[0])


def test_lmdb_corrupt_record_is_named(tmp_path):
    path = write_lmdb(tmp_path / "db", {b"good": encode(solid((1, 2, 3), 8, 8)), b"bad": b"RIFF junk"})
    with pytest.raises(DataError, match=r"db \(key b'bad'\)"):
        build("lmdb", root=str(path), resolution=8).sample(2, gen())


# --------------------------------------------------------------------------------------------------
# digits: scikit-learn's bundled 8x8 digits (real data)

def test_digits_splits_shapes_and_classes():
    train, test = build("digits"), build("digits", split="test")
    assert (len(train), len(test)) == (1500, 297)
    assert train.shape == (1, 32, 32) and train.num_classes == 10
    check_batch(train)
    native = build("digits", resolution=8)
    test_native = build("digits", resolution=8, split="test")
    everything = torch.cat([native.images, test_native.images]).flatten(1)
    assert len(torch.unique(everything, dim=0)) > 1700, "the splits are (nearly) disjoint images"
    check_flips(native, build("digits", resolution=8, flip=True))


def test_stacked_digits_labels_match_their_channels():
    pool = build("digits", resolution=8)
    data = build("stacked_digits", resolution=8)
    assert data.shape == (3, 8, 8) and data.num_classes == 1000 and len(data) == 1500
    x, labels = check_batch(data, 32)
    flat = pool.images.flatten(1).to(torch.int64)
    for image, label in zip(to_uint8(x), labels.tolist()):
        for channel, digit in zip(image, (label // 100, label // 10 % 10, label % 10)):
            matches = (flat == channel.flatten()).all(1)
            assert (pool.labels[matches] == digit).any()
    assert build("stacked_digits").shape == (3, 32, 32)


# --------------------------------------------------------------------------------------------------
# The real files kept for development in ../shared/data

@pytest.mark.skipif(not (SHARED_DATA / "cifar10-test.zip").is_file(),
                    reason=f"real CIFAR-10 test zip not found at {SHARED_DATA / 'cifar10-test.zip'}")
def test_real_cifar10_test_zip_as_class_folder():
    data = build("class_folder", root=str(SHARED_DATA / "cifar10-test.zip"))  # resolution 0: their own, 32
    assert len(data) == 10_000 and data.num_classes == 10 and data.shape == (3, 32, 32)
    assert torch.equal(torch.bincount(data.labels), torch.full((10,), 1000))
    x, _ = check_batch(data, 64)
    assert x.std() > 0.2


@pytest.mark.skipif(not (SHARED_DATA / "mnist" / "t10k-images-idx3-ubyte.gz").is_file(),
                    reason=f"real MNIST test files not found in {SHARED_DATA / 'mnist'}")
def test_real_mnist_test_files():
    data = build("mnist", root=str(SHARED_DATA / "mnist"), split="test", resolution=28)
    assert len(data) == 10_000 and data.shape == (1, 28, 28)
    assert torch.bincount(data.labels).min() > 800
    assert data.images.float().mean() / 255 == pytest.approx(0.1325, abs=0.002)  # MNIST's well-known mean


# --------------------------------------------------------------------------------------------------
# The command line and the registry

def test_every_data_set_is_registered_and_configurable():
    expected = {"ring8", "grid25", "digits", "stacked_digits", "cifar10", "mnist", "stacked_mnist", "image_folder",
                "class_folder", "lmdb"}
    assert expected <= set(DATASETS)
    assert load_config(None, ["data.name=class_folder", "data.resolution=32"]).data.name == "class_folder"


def test_download_checks_the_md5_and_writes_atomically(tmp_path, monkeypatch, capsys):
    archive, _ = write_cifar(tmp_path)
    monkeypatch.setattr(cifar10, "CIFAR10_URL", archive.as_uri())
    dest = tmp_path / "downloads"
    assert main(["data", "download", "cifar10", "--root", str(dest)]) == 2
    assert "MD5" in capsys.readouterr().err
    assert list(dest.iterdir()) == [], "a download with the wrong checksum leaves nothing behind"

    monkeypatch.setattr(cifar10, "CIFAR10_MD5", hashlib.md5(archive.read_bytes()).hexdigest())
    assert main(["data", "download", "cifar10", "--root", str(dest)]) == 0
    assert (dest / "cifar-10-python.tar.gz").read_bytes() == archive.read_bytes()
    assert [p.name for p in dest.iterdir()] == ["cifar-10-python.tar.gz"]
    assert main(["data", "download", "cifar10", "--root", str(dest)]) == 0
    assert "already there" in capsys.readouterr().out
    assert main(["data", "info", "cifar10", f"data.root={dest}", "data.split=test"]) == 0
    out = capsys.readouterr().out
    assert "images: 6" in out and "shape: (3, 32, 32)" in out and "classes: 10" in out


def test_data_info_reports_errors_in_one_line(tmp_path, capsys):
    assert main(["data", "info", "ring8"]) == 0
    assert "generated on the fly" in capsys.readouterr().out
    assert main(["data", "info", "mnist", f"data.root={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "MNIST file train-images-idx3-ubyte not found" in err and "Traceback" not in err


def test_prefetched_batches_and_generator_states_equal_plain_sampling(tmp_path, monkeypatch):
    """Two shards' generators drawing in turn, a change of batch size, and a generator set back (as a resume
    does): every batch, label set and generator state equals sampling the lazily decoded set directly."""
    from ganscape.data.prefetch import Prefetching

    root = write_image_folder(tmp_path / "faces")
    monkeypatch.setattr(images, "MEMORY_LIMIT", 0)
    lazy = build("image_folder", root=str(root), resolution=12, flip=True)
    prefetching = Prefetching(lazy)
    direct = [torch.Generator().manual_seed(s) for s in (1, 2)]
    ahead = [torch.Generator().manual_seed(s) for s in (1, 2)]
    saved = None
    for call, n in enumerate([4, 4, 4, 4, 6, 6, 4, 6]):
        shard = call % 2
        if call == 5:
            saved = direct[1].get_state()
        if call == 7:  # shard 1 goes back two of its draws, as a resumed run's streams do
            direct[1].set_state(saved)
            ahead[1].set_state(saved)
        want = lazy.sample(n, direct[shard])
        got = prefetching.sample(n, ahead[shard])
        assert torch.equal(got[0], want[0]) and got[0].shape[0] == n
        assert torch.equal(direct[shard].get_state(), ahead[shard].get_state())
    assert prefetching.shape == lazy.shape and len(prefetching) == len(lazy)
