"""The steps a user runs, each from a config and files on disk: train, evaluate, embed, index, search.

The CLI parses arguments and displays progress; these functions do the work and return plain values, so
scripts, notebooks and the benchmark harness call them the same way — there is one way to train
(:func:`train`), one to evaluate (:func:`evaluate`), one to embed and index.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from macl import distributed
from macl.archive import ArchiveSplits
from macl.config import Config, to_yaml
from macl.data.cache import model_input, resize_image
from macl.data.images import read_image
from macl.embedding import Embeddings, embed
from macl.errors import ArgumentError, CheckpointError, MissingFileError
from macl.evaluate import ProtocolResult, evaluate_protocol, write_report
from macl.fileio import atomic_write, file_digest
from macl.index import FaissIndex, Hit, LabelFilter, VectorIndex, create_index, open_index
from macl.models import Encoder
from macl.postprocess import PostProcessor
from macl.train import EpochLog, Trainer, build_model

StepCallback = Callable[[float, float], None]
# Rows of the shards that centring / whitening are learnt on when indexing pre-embedded shards: the mean
# and a 2048 × 2048 covariance are estimated well from 200 000 rows, and reading them is one pass.
SHARD_FIT_ROWS = 200_000
Progress = Callable[[int, int], None]


def train(
    config: Config,
    resume: bool = False,
    splits: ArchiveSplits | None = None,
    validate: bool = True,
    on_start: Callable[[Trainer], None] | None = None,
    on_step: StepCallback | None = None,
    on_epoch: Callable[[EpochLog], None] | None = None,
) -> Trainer:
    """Train the configured model into ``config.output``; with ``resume``, continue from its ``last.pt``.

    The training split is decoded once into memory at 1.25× the training side (random crops, then resize
    down). Under ``torchrun`` every process calls this: it joins the process group the environment
    describes (:func:`macl.distributed.session`), trains its slice of every global batch, and rank 0
    alone writes files and calls the callbacks. ``splits`` shares decoded archives between runs (the
    benchmark harness); ``validate=False`` skips the per-epoch validation (and ``best.pt``). The run
    folder records the resolved configuration (``config.yaml``) and the history (``history.json``).
    """
    with distributed.session() as world:
        out = config.run_dir
        out.mkdir(parents=True, exist_ok=True)
        cfg = config.train
        splits = splits or ArchiveSplits(config.dataset)
        train_set = splits.at("train", round(cfg.image_size * 1.25))
        validation = (splits.at("val", cfg.image_size), splits.at("train", cfg.image_size)) if validate else None
        trainer = Trainer(cfg, train_set, validation, out)
        last = out / "last.pt"
        if resume and last.is_file():
            trainer.resume(last)
        if world.is_main:
            with atomic_write(out / "config.yaml") as fh:
                fh.write(to_yaml(config).encode())
        else:  # progress and logs come from rank 0 alone
            on_start = on_step = on_epoch = None
        if on_start is not None:
            on_start(trainer)
        trainer.fit(on_step, on_epoch)
        if world.is_main:
            with atomic_write(out / "history.json") as fh:
                fh.write(json.dumps([asdict(h) for h in trainer.history], indent=1).encode())
        distributed.barrier()  # every process returns a finished run folder
    return trainer


def load_model(checkpoint: Path | str) -> tuple[Encoder, dict[str, Any]]:
    """The model of a checkpoint written by training, in eval mode, and the checkpoint's contents.

    The checkpoint is read with ``weights_only=True`` (tensors and plain data only), and the encoder is
    rebuilt from its recorded architecture and input normalisation — no pretrained weights are fetched
    to be overwritten.
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise MissingFileError(f"checkpoint {path} does not exist; train first ('macl train') or fix the path")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        arch = state["model_config"]
        model = Encoder(
            arch["backbone"],
            "none",
            arch["head"],
            arch["out_dim"],
            arch["embedding"],
            arch.get("normalization"),
            arch.get("classes", 0),
        )
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, EOFError, OSError, TypeError) as err:
        raise CheckpointError(f"cannot load checkpoint {path}: {err}") from err
    return model.eval(), state


def untrained_model(config: Config, splits: ArchiveSplits | None = None) -> Encoder:
    """The configured architecture at its (seeded) initialisation: the baseline a trained model must beat."""
    torch.manual_seed(config.train.seed)
    classes = (splits or ArchiveSplits(config.dataset)).classes
    return build_model(config.train, len(classes)).eval()


def evaluate_model(
    config: Config,
    model: Encoder,
    splits: ArchiveSplits | None = None,
    queries: str | None = None,
    database: list[str] | None = None,
    top_k: int = 0,
) -> ProtocolResult:
    """Every metric of ``model`` on the config's protocol (or ``queries`` against ``database``)."""
    protocol = config.protocol
    literature = (protocol.query_fraction, protocol.split_seed) if protocol.kind == "literature" else None
    return evaluate_protocol(
        model,
        splits or ArchiveSplits(config.dataset),
        queries or config.protocol.queries,
        list(database or config.protocol.database),
        config.train.image_size,
        config.evaluate,
        config.train.workers,
        top_k,
        config.postprocess,
        literature if queries is None and database is None else None,
    )


def evaluate(config: Config, model: Encoder, name: str) -> ProtocolResult:
    """Run the protocol with ``model`` and write ``<output>/<name>.json`` and ``.md``."""
    result = evaluate_model(config, model)
    write_report(result.report, config.run_dir, name, {"protocol": asdict(config.protocol)}, result.literature)
    return result


def embed_splits(
    config: Config, model: Encoder, splits: list[str], progress: Progress | None = None, probabilities: bool = False
) -> tuple[Embeddings, tuple[str, ...]]:
    """Embeddings of the union of ``splits`` (in order), resized image by image (flat memory), and the
    classes; with the predicted label probabilities when ``probabilities`` (late fusion needs them)."""
    archive = ArchiveSplits(config.dataset, decode=False)
    parts = [archive.at(split, config.train.image_size) for split in splits]
    return embed(model, parts, workers=config.train.workers, progress=progress, probabilities=probabilities), (
        archive.classes
    )


def index_parameters(config: Config) -> dict[str, Any]:
    """The configured backend's build and search parameters (``config.index``), as the index takes them."""
    opts = config.index
    if opts.backend == "milvus":
        return {
            "uri": opts.uri or str(config.run_dir / "archive.db"),
            "collection": opts.collection,
            "index_type": opts.milvus_index,
            "hnsw_m": opts.hnsw_m,
            "ef_search": opts.ef_search,
            "nlist": opts.nlist or 1024,
            "nprobe": opts.nprobe,
            "replace": True,  # building an index rebuilds it: the collection's old items go
        }
    return {
        "hnsw_m": opts.hnsw_m,
        "ef_search": opts.ef_search,
        "nlist": opts.nlist,
        "nprobe": opts.nprobe,
        "pq_m": opts.pq_m,
        "rerank": opts.rerank,
        "train_per_list": opts.train_per_list,
    }


def build_index(
    config: Config,
    checkpoint: Path | str,
    out: Path | str | None = None,
    progress: Progress | None = None,
    shards: Path | str | None = None,
) -> Path:
    """Index the protocol's database with the checkpoint's model and save it (default ``<output>/archive.index``).

    The database is embedded here, or read from ``shards`` written by ``macl embed --shards`` (made by
    the same checkpoint: checked): then quantisers are trained on a seeded sample drawn shard by shard
    and the shards are added one at a time, so no process holds the archive's images or all of its
    embeddings at once besides what the index itself keeps.
    """
    model, state = load_model(checkpoint)
    model_hash = file_digest(checkpoint)
    normalization = model.config["normalization"]
    path = Path(out) if out is not None else config.run_dir / "archive.index"
    params = index_parameters(config)
    options = config.postprocess
    if shards is not None:
        from macl.shards import ShardManifest, iter_shards, sample_rows

        if options.fusion > 0 or options.dba_k > 0:
            raise ArgumentError(
                "postprocess.fusion and postprocess.dba_k are not applied to pre-embedded shards (shards hold "
                "no label probabilities, and augmentation needs the whole database at once): build the index "
                "from the images, or keep to center / whiten / qe_k"
            )
        manifest = ShardManifest.load(Path(shards))
        if manifest.model_hash != model_hash:
            raise CheckpointError(
                f"shards in {shards} come from model {manifest.model_hash[:12]}, not {checkpoint} "
                f"({model_hash[:12]}); embed them again with this checkpoint"
            )
        processor = None
        if not options.is_identity:  # centring / whitening learnt on a seeded sample of the shards
            fit_rows = min(manifest.n_items, SHARD_FIT_ROWS)
            processor = PostProcessor(options).fit(sample_rows(Path(shards), fit_rows, seed=1))
        dim = processor.dim if processor is not None and processor.dim is not None else manifest.dim
        index = create_index(config.index.backend, dim, manifest.label_names, model_hash, normalization, **params)
        index.postprocess = processor.state() if processor is not None else None
        if isinstance(index, FaissIndex):  # train on a seeded sample, then stream the shards in
            size = index.training_size(manifest.n_items)
            sample = sample_rows(Path(shards), size, seed=0) if size else np.empty((0, manifest.dim), np.float32)
            index.train(processor.transform(sample) if processor is not None and size else sample,
                        expected_total=manifest.n_items)  # fmt: skip
        done = 0
        for emb in iter_shards(Path(shards)):
            vectors = processor.transform(emb.vectors) if processor is not None else emb.vectors
            index.add(vectors, emb.ids, emb.labels)
            done += len(emb.ids)
            if progress is not None:
                progress(done, manifest.n_items)
    else:
        config = replace(config, train=replace(config.train, image_size=state["config"]["image_size"]))
        emb, classes = embed_splits(config, model, list(config.protocol.database), progress, options.fusion > 0)
        vectors, state_pp = emb.vectors, None
        if not options.is_identity:
            processor = PostProcessor(options).fit(emb.vectors, emb.probabilities)
            vectors, state_pp = processor.database(emb.vectors, emb.probabilities), processor.state()
        index = create_index(config.index.backend, vectors.shape[1], classes, model_hash, normalization, **params)
        index.postprocess = state_pp
        index.add(vectors, emb.ids, emb.labels)
    index.save(path)
    return path


def embed_image(model: Encoder, path: Path | str, image_size: int, index: VectorIndex | None = None) -> np.ndarray:
    """The (1, D) query vector of one image file, sized exactly as the archive's images are for the model
    and post-processed as ``index``'s vectors were (:func:`embed_decoded`)."""
    return embed_decoded(model, read_image(path), image_size, index)


def embed_decoded(model: Encoder, image: torch.Tensor, image_size: int, index: VectorIndex | None = None) -> np.ndarray:
    """The (1, D) query vector of a decoded (3, H, W) ``uint8`` image, sized as the archive's images are.

    With an ``index`` whose vectors were post-processed (``index.postprocess``), the query goes through
    the same steps: centring/whitening learnt on the database, late fusion with the model's predicted
    labels, and query expansion with its top neighbours *in this index* (their stored vectors, weighted
    as :class:`macl.postprocess.PostProcessor` weighs them).
    """
    batch = model_input(resize_image(image, image_size))[None]
    state = index.postprocess if index is not None else None
    if state is None:
        return model.embed(batch).cpu().numpy()
    processor = PostProcessor.from_state(state)
    if processor.options.fusion > 0:
        vector, probs = model.embed_and_predict(batch)
        query = processor.transform(vector.cpu().numpy(), probs.numpy())
    else:
        query = processor.transform(model.embed(batch).cpu().numpy())
    assert index is not None
    return expand_query(query, index, processor.options.qe_k, processor.options.qe_alpha)


def expand_query(query: np.ndarray, index: VectorIndex, k: int, alpha: float) -> np.ndarray:
    """α-query expansion of a (1, D) query with its top-``k`` hits in ``index`` (0: unchanged):
    normalise(q + Σ max(s_j, 0)^α · y_j), the stored vectors y_j, s_j the index's scores (exact cosines
    for exact backends, the backend's estimate otherwise)."""
    if k == 0 or index.ntotal == 0:
        return query
    scores, ids = index.search(query, min(k, index.ntotal))
    total = query[0].astype(np.float64)
    for score, image_id in zip(scores[0], ids[0], strict=False):
        total += max(float(score), 0.0) ** alpha * index.embedding_of(image_id)
    return (total / np.linalg.norm(total)).astype(np.float32)[None]


@dataclass(frozen=True)
class Query:
    """A search by id or by labels as :meth:`VectorIndex.hits` takes it: one definition for the CLI and
    the web page."""

    description: str
    vector: np.ndarray  # (1, D)
    labels: np.ndarray  # (1, C) multi-hot: the item's labels, or the labels asked for
    exclude: list[str | None] | None  # the query item itself, when it is in the index
    where: LabelFilter | None

    def hits(self, index: VectorIndex, k: int) -> list[Hit]:
        return index.hits(self.vector, k, self.labels, exclude=self.exclude, where=self.where)[0]


def id_query(index: VectorIndex, image_id: str, where: LabelFilter | None = None) -> Query:
    """Neighbours of an indexed item, from its stored embedding (the network does not run)."""
    if image_id not in index:
        raise ArgumentError(f"id {image_id!r} is not in the index")
    if where:
        where.check(index.label_names)
    vector, own = index.embedding_of(image_id)[None], index.labels_of([image_id])
    return Query(f"archive image {image_id}", vector, own, [image_id], where)


def labels_query(index: VectorIndex, labels: list[str], where: LabelFilter | None = None) -> Query:
    """Items near the mean embedding of those carrying every label of ``labels`` (the archive's own
    picture of that combination), searched among such items only."""
    wanted = LabelFilter(require=tuple(labels))
    wanted.check(index.label_names)
    if where:
        where.check(index.label_names)
    prototype, carriers = index.prototype(wanted)
    if not carriers:
        raise ArgumentError(f"no indexed image carries all of {labels}; try fewer labels")
    extra = where or LabelFilter()
    combined = LabelFilter(require=(*wanted.require, *extra.require), any_of=extra.any_of)
    asked = np.isin(list(index.label_names), labels)[None]
    return Query(f"labels {', '.join(labels)} ({carriers} images carry them)", prototype, asked, None, combined)


def search(
    index: VectorIndex | Path | str,
    checkpoint: Path | str,
    k: int = 10,
    image: Path | str | None = None,
    image_id: str | None = None,
    labels: list[str] | None = None,
    where: LabelFilter | None = None,
) -> tuple[str, list[Hit]]:
    """Top-``k`` hits for one query given as an image file, an archive id, or a set of label names.

    A label query has no image: it searches with the mean embedding of the indexed images that carry all
    the requested labels (the archive's own picture of that combination) among those images only, and
    reports what each hit shares with the requested labels. ``where`` restricts any query to the items
    passing a :class:`LabelFilter` (applied inside the index's search). Returns a description of the
    query and the hits. Only an image query runs the network.
    """
    if sum(x is not None for x in (image, image_id, labels)) != 1:
        raise ArgumentError("give exactly one of an image path, an archive id, or label names")
    if not isinstance(index, VectorIndex):
        index = open_index(index, expected_model_hash=file_digest(checkpoint))
    if where:
        where.check(index.label_names)
    if image is not None:
        if not Path(image).is_file():
            raise MissingFileError(f"query image {image} does not exist")
        model, state = load_model(checkpoint)
        vector = embed_image(model, image, state["config"]["image_size"], index)
        return f"image {image}", index.hits(vector, k, where=where)[0]
    assert image_id is not None or labels is not None
    query = id_query(index, image_id, where) if image_id is not None else labels_query(index, labels or [], where)
    return query.description, query.hits(index, k)
