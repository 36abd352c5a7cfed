"""Post-processing of retrieval embeddings: centring, PCA-whitening, late label fusion, αQE and DBA.

Our embeddings are ResNet features after ReLU and pooling: every coordinate is non-negative, so all of
them lie in one narrow cone of the positive orthant and every cosine reads 0.98–0.99. Ranking still
works, but on differences in the third decimal, which any approximate index (8-bit codes, PQ) blurs. The
steps below, applied by :class:`PostProcessor` in this order, spread the cone out and add evidence.
Costs are for N = 1 M database items of D = 2048 dimensions (ResNet-50), d whitened dimensions, C labels
and k neighbours; the float32 database alone is N·D·4 B = 8.2 GB.

1. **Centring** (``center``): x − μ, with μ the database mean. Removes the common direction that makes
   all cosines ≈ 1. Fit: one pass, O(N·D) (a second); memory D floats.
2. **PCA-whitening** (``whiten = d``; implies centring): project onto the top-d principal components of
   the database and divide each by its standard deviation, so that no few dominant (and, for retrieval,
   uninformative, "bursty") directions decide the cosine, and the vector shrinks to d dimensions. Fit: the
   D×D covariance in float64, N·D² ≈ 4·10¹² multiply-adds (about a minute on a 16-core CPU, far longer
   on 2 cores) with 32 MB for the covariance, then ``numpy.linalg.eigh``, O(D³), seconds. Applying it
   costs N·D·d multiply-adds (10¹² at d = 512) and shrinks the database to N·d·4 B (2 GB at d = 512).
3. **L2-normalisation**, so that inner product is cosine. O(N·D).
4. **Late fusion** (``fusion = w``): append the L2-normalised predicted label-probability vector, so one
   inner product ranks by a weighted sum of embedding similarity and predicted-label similarity and any
   vector index (faiss, Milvus) serves it unchanged. Adds C columns: N·C·4 B (68 MB for 17 labels).
5. **Database-side augmentation** (``dba_k``): replace every database item by a similarity-weighted sum
   of itself and its k nearest database neighbours, which pulls each item towards the cluster it belongs
   to. An exact k-NN self-join of the database: N²·D ≈ 2·10¹⁵ multiply-adds, an hour or more on a CPU and
   minutes on a GPU, once at index build; memory: a second N·D·4 B array (the output) and one chunk of rows.
6. **α-query expansion** (``qe_k``): the same for each query against the post-processed database. One
   extra exact scan per query, N·D ≈ 2·10⁹ multiply-adds (milliseconds per query, batched), so the
   first search is brute force regardless of the index that answers the expanded query.

Steps 1–4 act on each item alone (:meth:`PostProcessor.transform`); 5 needs the whole database
(:meth:`PostProcessor.database`) and 6 the post-processed database (:meth:`PostProcessor.queries`).
Neighbours (5, 6) are exact: ``faiss.knn`` with the inner-product metric, the kernel ``IndexFlatIP``
searches with, called on the database array directly so that it is not copied into an index first.
:meth:`PostProcessor.state` is plain data to save beside an index as JSON; queries of that index must be
post-processed by :meth:`PostProcessor.from_state` of it.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from macl.arrays import finite_matrix, unit_rows
from macl.errors import ArgumentError, ConfigError

STATE_VERSION = 1
# ε = WHITEN_EPS·λ₁ + WHITEN_FLOOR is added to every eigenvalue before dividing by its square root: a
# direction of negligible variance is amplified at most ~1000× relative to the first component, not blown up
# (and an all-equal database, λ = 0, gives finite numbers).
WHITEN_EPS = 1e-6
WHITEN_FLOOR = 1e-12
# Rows processed at once are capped to about this many bytes of float32, so that transforming or augmenting
# a 1 M-item database never holds more than one chunk of temporaries beside its output.
CHUNK_BYTES = 64 * 2**20


def _fail_unless(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"postprocess.{key} {message}")


@dataclass(frozen=True)
class PostProcessing:
    """Which post-processing steps to apply (see the module docstring for what each is for and costs).

    ``center`` subtracts the database mean; ``whiten = d > 0`` PCA-whitens to d dimensions (and centres);
    ``fusion = w ∈ [0, 1)`` is the weight of the predicted-label part of the fused vector; ``qe_k`` and
    ``dba_k`` are the neighbours of α-query expansion and database-side augmentation (0: off), weighted by
    ``max(similarity, 0) ** alpha`` (``alpha = 0`` weighs every neighbour 1: plain average expansion).
    """

    center: bool = False
    whiten: int = 0
    fusion: float = 0.0
    qe_k: int = 0
    qe_alpha: float = 3.0
    dba_k: int = 0
    dba_alpha: float = 3.0

    def __post_init__(self) -> None:
        _fail_unless(isinstance(self.center, bool), "center", f"must be true or false; got {self.center!r}")
        for key in ("whiten", "qe_k", "dba_k"):
            value = getattr(self, key)
            integral = isinstance(value, numbers.Integral) and not isinstance(value, bool)
            _fail_unless(integral, key, f"must be an integer; got {value!r}")
            _fail_unless(value >= 0, key, f"must not be negative; got {value}")
        for key in ("fusion", "qe_alpha", "dba_alpha"):
            value = getattr(self, key)
            real = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
            _fail_unless(real, key, f"must be a finite number; got {value!r}")
        _fail_unless(0 <= self.fusion < 1, "fusion", f"must lie in [0, 1); got {self.fusion}")
        for key in ("qe_alpha", "dba_alpha"):
            _fail_unless(getattr(self, key) >= 0, key, f"must not be negative; got {getattr(self, key)}")

    @property
    def is_identity(self) -> bool:
        """True when post-processing only L2-normalises (the ``alpha`` values then play no part)."""
        return not self.center and self.whiten == 0 and self.fusion == 0 and self.qe_k == 0 and self.dba_k == 0


class PostProcessor:
    """Learns centring and whitening on the database, and applies every step of :class:`PostProcessing`.

    Formulas (μ, Σ: mean and covariance of the database vectors; all norms L2; a zero row stays zero):

    - project: z = x − μ (``center``), or z = Pᵀ(x − μ) with P = [u₁ … u_d]·diag(λᵢ + ε)^(−½) (``whiten = d``),
      where (λᵢ, uᵢ) are the top-d eigenpairs of Σ = Σᵢ (xᵢ − μ)(xᵢ − μ)ᵀ / (N − 1) from ``numpy.linalg.eigh``
      in float64 and ε = 1e-6·λ₁ + 1e-12; otherwise z = x;
    - e = z / ‖z‖;
    - fuse (``fusion = w > 0``, p the predicted label probabilities):
      f = normalise(concat(√(1 − w)·e, √w·p/‖p‖)). Both parts are unit when e, p ≠ 0, so the final
      normalisation changes nothing and fᵃ·fᵇ = (1 − w)·cos(eᵃ, eᵇ) + w·cos(pᵃ, pᵇ) exactly. A row whose p
      (or e) is zero becomes the other part alone, at unit norm — what an index that normalises its rows
      would make of it anyway;
    - DBA (Radenović, Tolias and Chum, "Fine-tuning CNN image retrieval with no human annotation", TPAMI
      2019): xᵢ' = normalise(xᵢ + Σ_{j ∈ Nₖ(i)} max(xᵢ·xⱼ, 0)^α·xⱼ), Nₖ(i) the k most similar database
      items other than i itself (its own row counts once, with weight 1 = (xᵢ·xᵢ)^α); all sums use the
      vectors before augmentation;
    - αQE (same paper): q' = normalise(q + Σ_{j ∈ Nₖ(q)} max(q·yⱼ, 0)^α·yⱼ), y the post-processed (and
      augmented) database.

    k larger than the available neighbours (N − 1 for DBA, N for αQE) uses them all.
    """

    def __init__(self, options: PostProcessing) -> None:
        self.options = options
        self._input_dim: int | None = None
        self._n_labels: int | None = None
        self._mean: np.ndarray | None = None
        self._projection: np.ndarray | None = None

    @property
    def _needs_fit(self) -> bool:
        return self.options.center or self.options.whiten > 0

    @property
    def dim(self) -> int | None:
        """Dimension of the output vectors, once fitted (None before)."""
        if self._input_dim is None:
            return None
        return (self.options.whiten or self._input_dim) + (self._n_labels or 0)

    def fit(self, db_vectors: np.ndarray, db_probs: np.ndarray | None = None) -> PostProcessor:
        """Learn the mean (and whitening) on the database only, so that queries are mapped the same way.

        ``db_probs`` (one row of label probabilities per vector) is required when ``fusion > 0``: it fixes
        the number of labels, hence :attr:`dim`.
        """
        x = finite_matrix(db_vectors, "database vectors")
        n, dim = x.shape
        if n == 0:
            raise ArgumentError("cannot fit post-processing on an empty database (0 vectors)")
        probs = _as_probs(db_probs, n, None, "database")
        if self.options.fusion > 0 and probs is None:
            raise ArgumentError(_MISSING_PROBS.format(w=self.options.fusion, what="fit (pass db_probs)"))
        d = self.options.whiten
        if d > dim:
            raise ArgumentError(f"postprocess.whiten = {d} exceeds the embedding dimension {dim}")
        if d > n - 1:
            raise ArgumentError(
                f"postprocess.whiten = {d} needs at least {d + 1} database items (centred data of N items has "
                f"rank at most N − 1); got {n}"
            )
        mean: np.ndarray | None = None
        projection: np.ndarray | None = None
        if self._needs_fit:
            mean64 = sum((chunk.sum(axis=0, dtype=np.float64) for chunk in _chunks(x)), np.zeros(dim)) / n
            mean = mean64.astype(np.float32)
            if d > 0:
                projection = _whitening(x, mean64, d)
        self._input_dim = dim
        self._n_labels = probs.shape[1] if probs is not None and self.options.fusion > 0 else None
        self._mean, self._projection = mean, projection
        return self

    def project(self, vectors: np.ndarray) -> np.ndarray:
        """The linear step of :meth:`transform`, before normalisation: x − μ, Pᵀ(x − μ) or x (float32).

        Public so that what centring and whitening learnt can be checked directly: projected database
        vectors have mean zero, and after whitening an identity covariance (up to ε).
        """
        self._check_fitted()
        return self._project(finite_matrix(vectors, "vectors", self._input_dim, "post-processing was fitted on"))

    def transform(self, vectors: np.ndarray, probs: np.ndarray | None = None) -> np.ndarray:
        """Centre/whiten, L2-normalise and fuse each row on its own: float32 unit rows (zero rows stay zero)."""
        self._check_fitted()
        x = finite_matrix(vectors, "vectors", self._input_dim, "post-processing was fitted on")
        w = self.options.fusion
        p = _as_probs(probs, len(x), self._n_labels, "")
        if w > 0 and p is None:
            raise ArgumentError(_MISSING_PROBS.format(w=w, what="transform (pass probs)"))
        fused = p if w > 0 else None  # probabilities are checked even when unused: a wrong array is a bug
        labels = 0 if fused is None else fused.shape[1]
        out = np.empty((len(x), (self.options.whiten or x.shape[1]) + labels), dtype=np.float32)
        step = _chunk_rows(max(x.shape[1], out.shape[1]))
        for start in range(0, len(x), step):
            rows = slice(start, start + step)
            e = unit_rows(self._project(x[rows]))
            if fused is not None:
                e = unit_rows(np.concatenate([math.sqrt(1 - w) * e, math.sqrt(w) * unit_rows(fused[rows])], axis=1))
            out[rows] = e
        return out

    def database(self, db_vectors: np.ndarray, db_probs: np.ndarray | None = None) -> np.ndarray:
        """:meth:`transform` the database, then augment it (DBA, when ``dba_k > 0``): what the index holds."""
        x = self.transform(db_vectors, db_probs)
        k = min(self.options.dba_k, len(x) - 1)
        return _expand(x, x, k, self.options.dba_alpha, exclude_self=True) if k > 0 else x

    def queries(self, q_vectors: np.ndarray, q_probs: np.ndarray | None, db: np.ndarray) -> np.ndarray:
        """:meth:`transform` the queries, then expand them (αQE, when ``qe_k > 0``) against ``db``.

        ``db`` is the database as :meth:`database` returned it, i.e. as the index holds it.
        """
        q = self.transform(q_vectors, q_probs)
        if self.options.qe_k == 0:
            return q
        y = finite_matrix(db, "post-processed database vectors", q.shape[1], "the transformed queries have dimension")
        k = min(self.options.qe_k, len(y))
        return _expand(q, y, k, self.options.qe_alpha, exclude_self=False) if k > 0 else q

    def state(self) -> dict[str, Any]:
        """The options and what :meth:`fit` learnt, as JSON-serialisable plain data (exact float32 values)."""
        return {
            "version": STATE_VERSION,
            "options": asdict(self.options),
            "input_dim": self._input_dim,
            "n_labels": self._n_labels,
            "mean": None if self._mean is None else self._mean.tolist(),
            "projection": None if self._projection is None else self._projection.tolist(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PostProcessor:
        """The post-processor :meth:`state` described: it maps vectors exactly as the saved one did."""
        keys = {"version", "options", "input_dim", "n_labels", "mean", "projection"}
        if not isinstance(state, dict) or set(state) != keys:
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ArgumentError(f"post-processing state must be a mapping with keys {sorted(keys)}; got {got}")
        if state["version"] != STATE_VERSION:
            raise ArgumentError(f"post-processing state version {state['version']!r} is not {STATE_VERSION}")
        try:
            options = PostProcessing(**state["options"])
        except TypeError as err:
            raise ArgumentError(f"post-processing state has invalid options {state['options']!r}: {err}") from err
        processor = cls(options)
        dim, labels = state["input_dim"], state["n_labels"]
        fitted = dim is not None
        if fitted and not (isinstance(dim, int) and dim > 0):
            raise ArgumentError(f"post-processing state: input_dim must be a positive integer or null; got {dim!r}")
        if (labels is not None) != (fitted and options.fusion > 0) or not (labels is None or isinstance(labels, int)):
            raise ArgumentError(
                f"post-processing state: n_labels {labels!r} must be an integer exactly when it was fitted with fusion"
            )
        processor._input_dim, processor._n_labels = dim, labels
        arrays: dict[str, np.ndarray | None] = {}
        for key, shape in (
            ("mean", (dim,) if fitted and processor._needs_fit else None),
            ("projection", (dim, options.whiten) if fitted and options.whiten > 0 else None),
        ):
            value = None if state[key] is None else np.asarray(state[key], dtype=np.float32)
            found = None if value is None else value.shape
            if found != shape:
                raise ArgumentError(f"post-processing state: {key} has shape {found}, but the options need {shape}")
            arrays[key] = value
        processor._mean, processor._projection = arrays["mean"], arrays["projection"]
        return processor

    def _check_fitted(self) -> None:
        if self._needs_fit and self._mean is None:
            raise ArgumentError(
                "post-processing centres/whitens with statistics of the database: call fit(database vectors) "
                "before transforming"
            )

    def _project(self, x: np.ndarray) -> np.ndarray:
        """x − μ, Pᵀ(x − μ) or x; :meth:`_check_fitted` has passed."""
        if self._mean is None:
            return x
        centred = x - self._mean
        return centred if self._projection is None else centred @ self._projection


_MISSING_PROBS = (
    "postprocess.fusion = {w} fuses predicted label probabilities into the vectors, but none were given to {what}"
)


def _as_probs(probs: np.ndarray | None, n_rows: int, n_labels: int | None, name: str) -> np.ndarray | None:
    """Label probabilities as a float32 (n_rows, C) matrix of values in [0, 1], or an error."""
    if probs is None:
        return None
    what = f"{name} label probabilities".strip()
    p = np.asarray(probs, dtype=np.float32)
    if p.ndim != 2 or p.shape[0] != n_rows:
        raise ArgumentError(f"{what} must be an ({n_rows}, C) array, one row per vector; got shape {p.shape}")
    if n_labels is not None and p.shape[1] != n_labels:
        raise ArgumentError(f"{what} have {p.shape[1]} labels, but post-processing was fitted with {n_labels}")
    if not np.isfinite(p).all():
        raise ArgumentError(f"{what} contain NaN or inf")
    if p.size and (p.min() < 0 or p.max() > 1):
        raise ArgumentError(
            f"{what} must lie in [0, 1] (sigmoid outputs, not logits); got values in [{p.min()}, {p.max()}]"
        )
    return p


def _whitening(x: np.ndarray, mean: np.ndarray, d: int) -> np.ndarray:
    """P = [u₁ … u_d]·diag(λᵢ + ε)^(−½) from the float64 covariance, accumulated chunk by chunk."""
    covariance = np.zeros((x.shape[1], x.shape[1]))
    for chunk in _chunks(x):
        centred = chunk.astype(np.float64) - mean
        covariance += centred.T @ centred
    covariance /= len(x) - 1
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)  # ascending
    top = np.clip(eigenvalues[::-1][:d], 0, None)  # round-off can make a zero eigenvalue slightly negative
    eps = WHITEN_EPS * top[0] + WHITEN_FLOOR
    return (eigenvectors[:, ::-1][:, :d] / np.sqrt(top + eps)).astype(np.float32)


def _expand(x: np.ndarray, y: np.ndarray, k: int, alpha: float, *, exclude_self: bool) -> np.ndarray:
    """normalise(xᵢ + Σ_{j ∈ Nₖ(i)} max(xᵢ·yⱼ, 0)^α·yⱼ) for every row; ``x is y`` with ``exclude_self`` (DBA)."""
    import faiss as faiss_module  # here, not at import: the config reads PostProcessing without faiss

    faiss: Any = faiss_module  # faiss-cpu's bundled type stubs lack ``faiss.knn`` and the metric constants
    out = np.empty_like(x)
    step = _chunk_rows(x.shape[1])
    for start in range(0, len(x), step):
        block = x[start : start + step]
        sims, ids = faiss.knn(block, y, k + exclude_self, metric=faiss.METRIC_INNER_PRODUCT)
        if exclude_self:
            sims, ids = _drop_self(sims, ids, np.arange(start, start + len(block)), k)
        weights = (np.maximum(sims, 0) ** alpha).astype(np.float32)
        total = block.copy()
        for j in range(k):  # k gathers of (chunk, D), not one (chunk, k, D) array
            total += weights[:, j : j + 1] * y[ids[:, j]]
        out[start : start + step] = unit_rows(total)
    return out


def _drop_self(sims: np.ndarray, ids: np.ndarray, own: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k neighbours of each row other than the row itself, from its k + 1 nearest.

    A row is normally its own nearest neighbour, but an exact duplicate may outrank it and push it out of
    the k + 1: then the last of them is dropped instead.
    """
    keep = ids != own[:, None]
    keep[keep.sum(axis=1) > k, -1] = False
    return sims[keep].reshape(-1, k), ids[keep].reshape(-1, k)


def _chunk_rows(dim: int) -> int:
    return max(1, CHUNK_BYTES // (4 * max(dim, 1)))


def _chunks(x: np.ndarray) -> list[np.ndarray]:
    step = _chunk_rows(x.shape[1])
    return [x[start : start + step] for start in range(0, len(x), step)]
