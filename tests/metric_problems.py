"""Random retrieval problems shared by the metric tests: embeddings, labels, and queries drawn from the database."""

from __future__ import annotations

import numpy as np


def random_problem(
    seed: int,
    n_query: int,
    n_db: int,
    *,
    n_labels: int = 6,
    dim: int = 5,
    tied: bool = False,
    frequencies: tuple[float, float] = (0.04, 0.6),
    from_database: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(query_emb, query_labels, db_emb, db_labels, query_db_index)`` for an oracle comparison.

    ``tied`` draws signed one-hot embeddings, so every similarity is exactly -1, 0 or 1 and ties are
    everywhere; otherwise two database rows are exact duplicates (a tie inside a continuous ranking).
    Label frequencies run linearly over ``frequencies`` so that some labels are rare; query 0 and
    database item 1 carry no label. The first ``from_database`` queries are copies of (possibly repeated)
    database items and name them in ``query_db_index`` (-1 elsewhere), to exercise self-exclusion.
    """
    rng = np.random.default_rng(seed)
    if tied:

        def embed(n: int) -> np.ndarray:
            out = np.zeros((n, dim))
            out[np.arange(n), rng.integers(0, dim, n)] = rng.choice([-1.0, 1.0], n)
            return out

        query_emb, db_emb = embed(n_query), embed(n_db)
    else:
        query_emb, db_emb = rng.normal(size=(n_query, dim)), rng.normal(size=(n_db, dim))
        db_emb[5] = db_emb[3]
    p = np.linspace(*frequencies, n_labels)
    query_labels = (rng.random((n_query, n_labels)) < p).astype(np.int64)
    db_labels = (rng.random((n_db, n_labels)) < p).astype(np.int64)
    query_labels[0] = 0
    db_labels[1] = 0
    index = np.full(n_query, -1)
    if from_database:
        inside = rng.integers(0, n_db, from_database)  # repeats are fine: two queries may be the same item
        index[:from_database] = inside
        query_emb[:from_database] = db_emb[inside]
        query_labels[:from_database] = db_labels[inside]
    return query_emb, query_labels, db_emb, db_labels, index
