"""Embedding an archive into shards: equal to embedding it at once, in one or several processes or ranks,
resumable after a kill, refusing to mix models, and readable shard by shard."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch

from macl import pipeline
from macl.config import Config, load_config
from macl.embedding import Embeddings
from macl.errors import ArgumentError
from macl.fileio import file_digest
from macl.index import open_index
from macl.postprocess import PostProcessing
from macl.shards import ShardError, ShardManifest, embed_shards, iter_shards, missing_shards, sample_rows

SPLITS = ["train", "val"]
SHARD = 16
ARCHIVE = ["dataset.args={num_images: 120, image_size: 32, seed: 1}", "train.image_size=32"]


def save_checkpoint(config: Config, path: Path) -> Path:
    """An untrained model saved as training saves one (what ``pipeline.load_model`` reads)."""
    model = pipeline.untrained_model(config)
    state = {"config": asdict(config.train), "model": model.state_dict(), "model_config": model.config}
    torch.save(state, path)
    return path


def concatenated(out_dir: Path) -> Embeddings:
    parts = list(iter_shards(out_dir))
    return Embeddings(
        np.concatenate([p.vectors for p in parts]),
        np.concatenate([p.labels for p in parts]),
        [i for p in parts for i in p.ids],
    )


def assert_same(got: Embeddings, want: Embeddings) -> None:
    assert got.ids == want.ids
    np.testing.assert_array_equal(got.labels, want.labels)
    np.testing.assert_allclose(got.vectors, want.vectors, atol=1e-5)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("shards")


@pytest.fixture(scope="module")
def config(work) -> Config:
    return load_config(None, [*ARCHIVE, f"output={work / 'run'}"])


@pytest.fixture(scope="module")
def checkpoint(config, work) -> Path:
    return save_checkpoint(config, work / "model.pt")


@pytest.fixture(scope="module")
def reference(config, checkpoint, work) -> Path:
    """Shards of train + val written by one uninterrupted, single-process run."""
    calls: list[tuple[int, int]] = []
    embed_shards(config, checkpoint, SPLITS, work / "reference", shard_size=SHARD, progress=lambda *a: calls.append(a))
    assert calls[0] == (0, calls[-1][1]) and calls[-1][0] == calls[-1][1]  # from nothing to every item
    return work / "reference"


def test_shards_equal_embedding_the_splits_at_once(config, checkpoint, reference) -> None:
    model, _ = pipeline.load_model(checkpoint)
    whole, classes = pipeline.embed_splits(config, model, SPLITS)
    assert_same(concatenated(reference), whole)
    manifest = ShardManifest.load(reference)
    assert manifest.n_items == len(whole.ids) and manifest.n_shards == -(-len(whole.ids) // SHARD)
    assert manifest.dim == whole.vectors.shape[1] and manifest.label_names == list(classes)
    assert manifest.image_size == 32 and manifest.normalization is None and manifest.splits == SPLITS
    assert sorted(p.name for p in reference.iterdir()) == ["manifest.json", *(p.name for p in manifest.shard_paths())]
    assert [len(e.ids) for e in iter_shards(reference)][:-1] == [SHARD] * (manifest.n_shards - 1)


def test_a_killed_run_resumes_to_the_same_shards(config, checkpoint, reference, work) -> None:
    out = work / "killed"
    script = (
        "import time; from pathlib import Path; from macl.config import load_config; "
        "from macl.shards import embed_shards; "
        f"embed_shards(load_config(None, {[*ARCHIVE, f'output={work}']!r}), Path({str(checkpoint)!r}), "
        f"{SPLITS!r}, Path({str(out)!r}), shard_size={SHARD}, progress=lambda done, total: time.sleep(0.5))"
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while not (out / "shard-00000.npz").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the embedding run ended without a shard"
            time.sleep(0.02)
    finally:
        proc.kill()  # SIGKILL: nothing runs in the child, as in a crash or an out-of-memory kill
        proc.wait()
    missing = missing_shards(out)
    assert missing, "the run finished before it was killed: the test proves nothing"
    assert all(ShardManifest.load(out).is_complete(int(p.stem[6:])) for p in out.glob("shard-*.npz"))  # none half
    with pytest.raises(ShardError, match=rf"shard-{missing[0]:05d}\.npz.*rerun the embed command"):
        next(iter_shards(out))
    # What a kill during a write leaves, and a finished shard damaged since: both are redone.
    (out / f".shard-{missing[-1]:05d}.npz.abcd1234.tmp").write_bytes(b"half a shard")
    first = out / "shard-00000.npz"
    first.write_bytes(first.read_bytes()[:100])
    assert 0 in missing_shards(out)
    embed_shards(config, checkpoint, SPLITS, out, shard_size=SHARD)
    assert_same(concatenated(out), concatenated(reference))
    assert not list(out.glob(".*.tmp"))


def test_a_folder_of_another_model_or_layout_is_refused(config, checkpoint, reference, work) -> None:
    other = save_checkpoint(replace(config, train=replace(config.train, seed=5)), work / "other.pt")
    old, new = ShardManifest.load(reference).model_hash[:12], file_digest(other)[:12]
    with pytest.raises(ShardError, match=rf"another model \(model {old}, this checkpoint {new}\).*new folder"):
        embed_shards(config, other, SPLITS, reference, shard_size=SHARD)
    with pytest.raises(ShardError, match=r"different shard_size, n_shards \(shard_size: 16 there, 32 now"):
        embed_shards(config, checkpoint, SPLITS, reference, shard_size=32)
    with pytest.raises(ShardError, match=r"different splits, n_items"):
        embed_shards(config, checkpoint, ["train"], reference, shard_size=SHARD)
    orphans = work / "orphans"  # shards whose manifest was deleted: of an unknown model
    orphans.mkdir()
    shutil.copy(reference / "shard-00000.npz", orphans)
    with pytest.raises(ShardError, match=r"holds shards \(shard-00000\.npz, …\) but no manifest\.json"):
        embed_shards(config, checkpoint, SPLITS, orphans, shard_size=SHARD)


def test_ranks_share_the_shards(config, checkpoint, reference, work, monkeypatch) -> None:
    out = work / "ranks"
    with pytest.raises(ShardError, match=r"rank 1 waited 0\.2 s for .*manifest\.json, which rank 0 writes"):
        embed_shards(config, checkpoint, SPLITS, out, shard_size=SHARD, rank=1, world_size=2, manifest_timeout_s=0.2)
    embed_shards(config, checkpoint, SPLITS, out, shard_size=SHARD, rank=0, world_size=2)
    n_shards = ShardManifest.load(out).n_shards
    assert missing_shards(out) == list(range(1, n_shards, 2))  # rank 0 wrote the even shards, only them
    written = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.npz")}
    monkeypatch.setenv("RANK", "1")  # as torchrun sets them
    monkeypatch.setenv("WORLD_SIZE", "2")
    embed_shards(config, checkpoint, SPLITS, out, shard_size=SHARD)
    assert missing_shards(out) == []
    assert {name: (out / name).stat().st_mtime_ns for name in written} == written  # rank 1 left them alone
    assert_same(concatenated(out), concatenated(reference))


def test_sample_rows_is_seeded_and_spans_shards(reference) -> None:
    every = concatenated(reference).vectors
    sample = sample_rows(reference, 20, seed=3)
    np.testing.assert_array_equal(sample, sample_rows(reference, 20, seed=3))
    assert not np.array_equal(sample, sample_rows(reference, 20, seed=4))
    rows = [int(np.flatnonzero((every == row).all(1))[0]) for row in sample]
    assert len(set(rows)) == 20 and len({r // SHARD for r in rows}) > 2
    with pytest.raises(ValueError, match="cannot sample 1000 rows"):
        sample_rows(reference, 1000, seed=0)


def test_worker_processes_write_the_same_shards_and_name_a_failing_one(checkpoint, work) -> None:
    """Two worker processes over a folder archive whose last image (shard 5) is corrupt; then resumed.

    One run covers both (starting workers is what costs here): the shards the workers wrote before the
    failure are kept by the resume and must equal a single-process run.
    """
    root = Path(shutil.copytree(Path(__file__).parent / "data" / "folder", work / "folder"))
    bad = root / "tiles" / "south" / "deep" / "s3.webp"
    original = bad.read_bytes()
    bad.write_bytes(b"not an image")
    config = load_config(None, ["dataset.name=folder", f"dataset.root={root}"])
    out, calls = work / "two", []
    with pytest.raises(ShardError, match=r"shard 5 \(.*shard-00005\.npz\): cannot read image .*s3\.webp"):
        embed_shards(config, checkpoint, ["all"], out, shard_size=1, workers=2, progress=lambda *a: calls.append(a))
    written = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.npz")}
    assert len(written) >= 3 and 5 in missing_shards(out)  # a worker takes shard 5 after finishing its others
    assert calls == [(done, 6) for done in range(len(calls))] and len(calls) - 1 <= len(written)
    bad.write_bytes(original)
    embed_shards(config, checkpoint, ["all"], out, shard_size=1)
    assert {name: (out / name).stat().st_mtime_ns for name in written} == written  # the workers' shards kept
    embed_shards(config, checkpoint, ["all"], work / "one", shard_size=1)
    for got, want in zip(iter_shards(out), iter_shards(work / "one"), strict=True):
        assert_same(got, want)


@pytest.mark.parametrize("backend", ["exact", "ivf-sq8"])
def test_an_index_built_from_shards_equals_one_built_at_once(config, checkpoint, reference, work, backend) -> None:
    cfg = replace(config, index=replace(config.index, backend=backend, rerank=4 if backend == "ivf-sq8" else 0))
    direct = open_index(pipeline.build_index(cfg, checkpoint, work / f"direct-{backend}.index"))
    sharded = open_index(pipeline.build_index(cfg, checkpoint, work / f"shards-{backend}.index", shards=reference))
    assert sharded.ntotal == direct.ntotal and sharded.normalization == direct.normalization
    queries = concatenated(reference).vectors[:10]
    a, b = direct.search(queries, 5), sharded.search(queries, 5)
    np.testing.assert_allclose(a[0], b[0], atol=1e-5)
    assert a[1] == b[1]


def test_a_centred_index_from_shards_equals_one_built_at_once(config, checkpoint, reference, work) -> None:
    """Centring learnt on the shards (every row here: fewer than SHARD_FIT_ROWS) is the database's own."""
    cfg = replace(config, postprocess=PostProcessing(center=True, qe_k=2))
    direct = open_index(pipeline.build_index(cfg, checkpoint, work / "direct-centred.index"))
    sharded = open_index(pipeline.build_index(cfg, checkpoint, work / "shards-centred.index", shards=reference))
    assert sharded.postprocess is not None and direct.postprocess is not None
    np.testing.assert_allclose(sharded.postprocess["mean"], direct.postprocess["mean"], atol=1e-6)
    some = direct.ids[3]
    np.testing.assert_allclose(sharded.embedding_of(some), direct.embedding_of(some), atol=1e-5)
    with pytest.raises(ArgumentError, match="not applied to pre-embedded shards"):
        pipeline.build_index(
            replace(config, postprocess=PostProcessing(dba_k=3)), checkpoint, work / "x", shards=reference
        )
