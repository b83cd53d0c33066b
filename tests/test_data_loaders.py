"""Dataset loaders: canonical CIFAR-10 batches (and their download), IDX files, the registry, `diffusec data`.

Downloads are exercised against a real HTTP server on loopback serving a tiny fake archive with
the canonical layout, so nothing here needs the internet.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import json
import os
import pickle
import socket
import struct
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from shared.data import DataNotFoundError, load_split
from shared.data.cifar_batches import download_cifar10, load_cifar10_batches
from shared.data.download import DownloadError
from shared.data.idx import FASHION_CLASSES, load_idx_split, read_idx, write_idx
from shared.data.paths import REPO_ROOT

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
PER_TRAIN_BATCH, PER_TEST = 3, 4
MNIST_TEST = REPO_ROOT.parent / "shared" / "data" / "mnist-test"
MNIST_TEST_IMAGES_MD5 = "2c57910da66b1e3036e350d10c8c03e1"     # ../shared/data/README.md
DEBIAN_FMNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Keep unpacked archives out of the user's cache, and ignore a DIFFUSEC_DATA they set."""
    monkeypatch.setenv("DIFFUSEC_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DIFFUSEC_DATA", raising=False)


# ---------------------------------------------------------------- fake canonical CIFAR-10

def _pickle_batch(payload: dict, numpy1_names: bool = False) -> bytes:
    """Pickle like the real batches (protocol 2). ``numpy1_names`` rewrites the array global to
    NumPy 1's ``numpy.core.multiarray``, which is what the files from Toronto contain."""
    raw = pickle.dumps(payload, protocol=2)
    if numpy1_names:
        raw = raw.replace(b"numpy._core.multiarray\n_reconstruct", b"numpy.core.multiarray\n_reconstruct")
        assert b"numpy.core.multiarray\n_reconstruct" in raw
    return raw


def make_cifar_batches(rng: np.random.Generator) -> dict[str, tuple[np.ndarray, list[int]]]:
    """Random pixels [N, 3072] and labels per batch file name."""
    sizes = {f"data_batch_{i}": PER_TRAIN_BATCH for i in range(1, 6)} | {"test_batch": PER_TEST}
    return {name: (rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 10, n).tolist())
            for name, n in sizes.items()}


def write_cifar_folder(folder: Path, batches: dict) -> Path:
    """Write ``cifar-10-batches-py``-style files into ``folder`` (real keys, bytes strings)."""
    folder.mkdir(parents=True)
    meta = {b"num_cases_per_batch": PER_TRAIN_BATCH, b"label_names": [c.encode() for c in CIFAR_CLASSES],
            b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(_pickle_batch(meta))
    for i, (name, (data, labels)) in enumerate(batches.items()):
        payload = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                   b"filenames": [f"img_{name}_{j}.png".encode() for j in range(len(labels))]}
        (folder / name).write_bytes(_pickle_batch(payload, numpy1_names=(i == 0)))
    return folder


def make_cifar_archive(where: Path, batches: dict) -> Path:
    """``where/cifar-10-python.tar.gz`` holding ``cifar-10-batches-py/`` like the real archive."""
    folder = write_cifar_folder(where / "build" / "cifar-10-batches-py", batches)
    archive = where / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    return archive


@pytest.fixture
def cifar(tmp_path):
    batches = make_cifar_batches(np.random.default_rng(0))
    served = tmp_path / "served"
    served.mkdir()
    archive = make_cifar_archive(served, batches)
    return batches, archive, hashlib.md5(archive.read_bytes()).hexdigest()


@pytest.fixture
def http_root(tmp_path):
    """(folder, base URL) of a real HTTP server on 127.0.0.1 serving ``tmp_path/served``."""
    served = tmp_path / "served"
    served.mkdir(exist_ok=True)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)   # quick shutdown
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _closed_port_url() -> str:
    with socket.socket() as sock:      # bind then release: nothing listens there afterwards
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/cifar-10-python.tar.gz"


def test_download_then_load_cifar10_round_trip(tmp_path, cifar, http_root):
    batches, archive, md5 = cifar
    _, base = http_root
    dest = tmp_path / "data"
    got = download_cifar10(dest, url=f"{base}/{archive.name}", md5=md5, progress=False)
    assert got == dest / "cifar-10-python.tar.gz" and got.read_bytes() == archive.read_bytes()
    assert sorted(p.name for p in dest.iterdir()) == ["cifar-10-python.tar.gz"]   # no temp file left

    train = load_split("cifar10", "train", data_root=dest)
    test = load_split("cifar10", "test", data_root=dest)
    assert train.images.shape == (5 * PER_TRAIN_BATCH, 3, 32, 32) and train.images.dtype == torch.uint8
    assert test.images.shape == (PER_TEST, 3, 32, 32)
    assert train.labels.dtype == torch.int64
    assert train.classes == CIFAR_CLASSES
    assert train.description == "CIFAR-10 (canonical python batches), train split"
    assert train.checksum == md5 and test.checksum == md5

    train_data = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)])
    train_labels = sum((batches[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    assert np.array_equal(train.images.numpy(), train_data.reshape(-1, 3, 32, 32))
    assert train.labels.tolist() == train_labels
    assert test.labels.tolist() == batches["test_batch"][1]
    # Rows are channel-major: green (c=1) pixel at y=2, x=3 is byte 1024 + 2*32 + 3.
    assert test.images[1, 1, 2, 3].item() == batches["test_batch"][0][1, 1024 + 2 * 32 + 3]
    assert (Path(os.environ["DIFFUSEC_CACHE"]) / "unpacked").is_dir()     # unpacked in the private cache


def test_download_skips_existing_verified_file(tmp_path, cifar):
    _, archive, md5 = cifar
    dest = tmp_path / "data"
    dest.mkdir()
    (dest / archive.name).write_bytes(archive.read_bytes())
    # No server at this URL: succeeding proves the verified file was kept without a request.
    assert download_cifar10(dest, url=_closed_port_url(), md5=md5, progress=False) == dest / archive.name


def test_download_wrong_md5_raises_and_leaves_nothing(tmp_path, cifar, http_root):
    _, archive, md5 = cifar
    _, base = http_root
    dest = tmp_path / "data"
    with pytest.raises(ValueError) as info:
        download_cifar10(dest, url=f"{base}/{archive.name}", md5="0" * 32, progress=False)
    message = str(info.value)
    assert "0" * 32 in message and md5 in message and "deleted" in message
    assert list(dest.iterdir()) == []


def test_download_network_failure_is_explained(tmp_path):
    url = _closed_port_url()
    dest = tmp_path / "data"
    with pytest.raises(DownloadError) as info:
        download_cifar10(dest, url=url, progress=False)
    message = str(info.value)
    assert url in message and "offline" in message and "--data-root" in message
    assert list(dest.iterdir()) == []


def test_download_truncated_body_is_refused(tmp_path):
    class Truncating(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)       # then the connection closes

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Truncating)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        dest = tmp_path / "data"
        with pytest.raises(DownloadError, match=r"after 10 (of 1000 )?bytes"):
            download_cifar10(dest, url=f"http://127.0.0.1:{server.server_address[1]}/x.tar.gz", progress=False)
        assert list(dest.iterdir()) == []
    finally:
        server.shutdown()
        server.server_close()


def test_cifar_folder_missing_batch_is_named(tmp_path):
    folder = write_cifar_folder(tmp_path / "root" / "cifar-10-batches-py", make_cifar_batches(np.random.default_rng(1)))
    (folder / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        load_cifar10_batches(folder, "train", "CIFAR-10")
    assert len(load_cifar10_batches(folder, "test", "CIFAR-10")) == PER_TEST     # test split still fine
    with pytest.raises(DataNotFoundError, match="data_batch_3"):
        load_split("cifar10", "train", data_root=tmp_path / "root")


def test_cifar_batch_that_runs_code_is_refused(tmp_path):
    folder = write_cifar_folder(tmp_path / "cifar-10-batches-py", make_cifar_batches(np.random.default_rng(2)))

    class Evil:
        def __reduce__(self):
            return (os.getcwd, ())

    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="getcwd"):
        load_cifar10_batches(folder, "test", "CIFAR-10")
    with pytest.raises(DataNotFoundError, match="unreadable, UnpicklingError"):   # refused, and said so
        load_split("cifar10", "test", data_root=tmp_path)


def test_damaged_files_are_named_with_what_to_do(tmp_path):
    (tmp_path / "cifar10-jpeg-q75.tar.gz").write_bytes(b"\x1f\x8b not really gzip" * 50)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in ("batches.meta", "test_batch"):
        (folder / name).write_bytes(pickle.dumps({b"labels": list(range(100))}, protocol=2)[:40])  # truncated
    with pytest.raises(DataNotFoundError) as info:
        load_split("cifar10", "test", data_root=tmp_path)
    message = str(info.value)
    assert "cifar10-jpeg-q75.tar.gz (unreadable, ReadError" in message
    assert "cifar-10-batches-py (unreadable, UnpicklingError" in message and "fetch it again" in message


# ---------------------------------------------------------------- IDX

def _idx_bytes(code: int, shape: tuple[int, ...], body: bytes) -> bytes:
    """An IDX file written straight from the format description (independent of write_idx)."""
    return struct.pack(">BBBB", 0, 0, code, len(shape)) + struct.pack(f">{len(shape)}I", *shape) + body


def test_read_idx_plain_and_gzip(tmp_path):
    pixels = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = _idx_bytes(0x08, (2, 3, 4), pixels.tobytes())
    (tmp_path / "a-idx3-ubyte").write_bytes(raw)
    (tmp_path / "a-idx3-ubyte.gz").write_bytes(gzip.compress(raw))
    for name in ("a-idx3-ubyte", "a-idx3-ubyte.gz"):
        out = read_idx(tmp_path / name)
        assert out.dtype == np.uint8 and np.array_equal(out, pixels)

    ints = np.array([[1, -2], [70000, 3]], dtype=np.int32)
    (tmp_path / "i").write_bytes(_idx_bytes(0x0C, (2, 2), ints.astype(">i4").tobytes()))   # big-endian body
    assert read_idx(tmp_path / "i").tolist() == ints.tolist()

    floats = np.linspace(-1, 1, 5, dtype=np.float32)
    write_idx(tmp_path / "f.gz", floats)
    assert np.array_equal(read_idx(tmp_path / "f.gz"), floats)


def test_read_idx_rejects_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x00\x00\x07\x01" + b"\x00" * 8)          # unknown type code
    with pytest.raises(ValueError, match="not an IDX"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(_idx_bytes(0x08, (10,), b"\x00" * 9))       # one byte missing
    with pytest.raises(ValueError, match="needs"):
        read_idx(tmp_path / "short")


def write_mnist_folder(folder: Path, rng: np.random.Generator, splits=("train", "test"), n: int = 5) -> dict:
    """Tiny MNIST-style folder: train files plain, test files gzipped (both forms get used)."""
    folder.mkdir(parents=True)
    written = {}
    for split in splits:
        prefix, suffix = ("train", "") if split == "train" else ("t10k", ".gz")
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
        written[split] = images, labels
    return written


def test_load_idx_split(tmp_path):
    rng = np.random.default_rng(3)
    written = write_mnist_folder(tmp_path / "fashion-mnist", rng)
    for split in ("train", "test"):
        got = load_idx_split(tmp_path / "fashion-mnist", split, "Fashion-MNIST")
        images, labels = written[split]
        assert got.images.shape == (5, 1, 28, 28) and got.images.dtype == torch.uint8
        assert np.array_equal(got.images[:, 0].numpy(), images)
        assert got.labels.dtype == torch.int64 and got.labels.tolist() == labels.tolist()
        assert got.classes == FASHION_CLASSES
        assert got.description == f"Fashion-MNIST, {split} split"
    name = "t10k-images-idx3-ubyte.gz"
    assert got.checksum == hashlib.md5((tmp_path / "fashion-mnist" / name).read_bytes()).hexdigest()

    write_mnist_folder(tmp_path / "mnist", rng, splits=("test",))
    assert load_idx_split(tmp_path / "mnist", "test", "MNIST").classes == [str(d) for d in range(10)]
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_idx_split(tmp_path / "mnist", "train", "MNIST")


# ---------------------------------------------------------------- real data, when present

@pytest.mark.skipif(not MNIST_TEST.is_dir(), reason="../shared/data/mnist-test is absent")
def test_real_mnist_test_split():
    test = load_split("mnist", "test", data_root=MNIST_TEST.parent)
    assert test.images.shape == (10000, 1, 28, 28)
    assert test.checksum == MNIST_TEST_IMAGES_MD5
    assert test.description == "MNIST, test split"
    assert test.labels[:5].tolist() == [7, 2, 1, 0, 4]          # the well-known first test digits
    assert torch.bincount(test.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert test.images.max().item() == 255 and test.images.min().item() == 0
    with pytest.raises(DataNotFoundError, match="train-images-idx3-ubyte"):   # the train split is not here
        load_split("mnist", "train", data_root=MNIST_TEST.parent)


@pytest.mark.skipif(not DEBIAN_FMNIST.is_dir(), reason="dataset-fashion-mnist is not installed")
def test_debian_fashion_mnist():
    for split, n in (("test", 10000), ("train", 60000)):
        got = load_split("fmnist", split, data_root="/usr/share/datasets")
        assert got.images.shape == (n, 1, 28, 28)
        assert got.classes == FASHION_CLASSES
        assert torch.bincount(got.labels).tolist() == [n // 10] * 10   # Fashion-MNIST is balanced


# ---------------------------------------------------------------- registry errors and CLI

def test_missing_data_root_lists_paths_tried(tmp_path):
    root = tmp_path / "nope"
    with pytest.raises(DataNotFoundError) as info:
        load_split("cifar10", "test", data_root=root)
    message = str(info.value)
    for name in ("cifar10-jpeg-q75.tar.gz", "cifar10-jpeg-q75", "cifar-10-batches-py", "cifar-10-python.tar.gz"):
        assert str(root / name) in message
    assert "diffusec data download cifar10" in message
    assert isinstance(info.value, FileNotFoundError)


def _cli(*args: str):
    from diffusec.cli import main
    return CliRunner().invoke(main, ["data", *args], catch_exceptions=False)


def test_cli_info_json(tmp_path):
    root = tmp_path / "root"
    write_cifar_folder(root / "cifar-10-batches-py", make_cifar_batches(np.random.default_rng(4)))
    write_mnist_folder(root / "mnist", np.random.default_rng(5), splits=("test",))
    result = _cli("info", "--data-root", str(root), "--json")
    assert result.exit_code == 0, result.output
    rows = {(r["dataset"], r["split"]): r for r in json.loads(result.output)}
    assert set(rows) == {(d, s) for d in ("cifar10", "mnist", "fmnist") for s in ("train", "test")}
    assert rows["cifar10", "train"]["found"] and rows["cifar10", "train"]["path"] == str(root / "cifar-10-batches-py")
    assert rows["cifar10", "test"]["source"] == "CIFAR-10 (canonical python batches)"
    assert rows["mnist", "test"]["path"] == str(root / "mnist")
    assert not rows["mnist", "train"]["found"] and "train-images-idx3-ubyte" in rows["mnist", "train"]["error"]
    assert not rows["fmnist", "test"]["found"] and str(root / "fashion-mnist") in rows["fmnist", "test"]["error"]

    text = _cli("info", "--data-root", str(root))
    assert text.exit_code == 0 and "not found" in text.output and str(root / "mnist") in text.output


def test_cli_download_errors_are_friendly(tmp_path, cifar, http_root):
    _, archive, _ = cifar
    _, base = http_root
    dest = tmp_path / "dl"
    # The fake archive cannot match the canonical md5, so the CLI must refuse it and clean up.
    bad = _cli("download", "cifar10", "--dest", str(dest), "--url", f"{base}/{archive.name}", "--quiet")
    assert bad.exit_code != 0 and "checksum mismatch" in bad.output and "deleted" in bad.output
    assert list(dest.iterdir()) == []
    offline = _cli("download", "mnist", "--dest", str(dest), "--url", _closed_port_url().rsplit("/", 1)[0], "--quiet")
    assert offline.exit_code != 0 and "offline" in offline.output and "Traceback" not in offline.output
    assert not any((dest / "mnist").iterdir())


def test_the_heldout_images_are_the_ones_training_leaves_out():
    """split_heldout: disjoint from the images training sees, together all of the split, the same every call."""
    import torch

    from shared.data import ImageSet
    from shared.data.heldout import split_heldout

    images = torch.arange(250, dtype=torch.uint8).view(250, 1, 1, 1).expand(250, 1, 2, 2).contiguous()
    full = ImageSet(images, torch.arange(250) % 10, [str(c) for c in range(10)], "toy train split", "0")
    train, heldout = split_heldout(full)
    assert len(heldout) == 25 and len(train) == 225 and "held-out" in heldout.description
    seen = set(train.images[:, 0, 0, 0].tolist())
    assert seen.isdisjoint(heldout.images[:, 0, 0, 0].tolist()) and len(seen) + len(heldout) == 250
    assert torch.equal(split_heldout(full)[1].images, heldout.images)
