"""Post-processing as a product feature: stored with the index, applied to every image query the same way
the evaluation applies it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from macl.data.cache import model_input, resize_image
from macl.index import create_index, open_index
from macl.models import Encoder
from macl.pipeline import embed_decoded
from macl.postprocess import PostProcessing, PostProcessor

SIZE = 32


@pytest.fixture(scope="module")
def archive() -> tuple[Encoder, torch.Tensor, np.ndarray, np.ndarray, np.ndarray]:
    """A hybrid encoder (random weights, with a label classifier), 40 decoded images, their vectors,
    predicted label probabilities and labels."""
    torch.manual_seed(0)
    model = Encoder("resnet18", out_dim=8, classes=5).eval()
    images = torch.randint(0, 256, (40, 3, 48, 48), dtype=torch.uint8)
    batch = torch.stack([model_input(resize_image(im, SIZE)) for im in images])
    vectors, probs = model.embed_and_predict(batch)
    labels = (torch.rand(40, 5) < 0.4).numpy().astype(np.uint8)
    return model, images, vectors.numpy(), probs.numpy(), labels


@pytest.mark.parametrize(
    "options",
    [
        PostProcessing(),
        PostProcessing(center=True),
        PostProcessing(whiten=16),
        PostProcessing(fusion=0.5),
        PostProcessing(center=True, fusion=0.3, qe_k=3, dba_k=2),
    ],
    ids=["identity", "center", "whiten", "fusion", "everything"],
)
def test_an_image_query_is_processed_as_the_evaluation_processes_it(archive, tmp_path, options) -> None:
    model, images, vectors, probs, labels = archive
    processor = PostProcessor(options).fit(vectors, probs)
    db = processor.database(vectors, probs)
    index = create_index("exact", db.shape[1], [f"c{i}" for i in range(5)])
    index.postprocess = processor.state()
    index.add(db, [f"img{i}" for i in range(len(db))], labels)
    index.save(tmp_path / "archive.index")
    reopened = open_index(tmp_path / "archive.index")
    assert reopened.postprocess == index.postprocess
    query = images[7]
    got = embed_decoded(model, query, SIZE, reopened)
    wanted = processor.queries(vectors[7:8], probs[7:8], db)
    assert got.shape == (1, db.shape[1])
    np.testing.assert_allclose(got, wanted, atol=1e-5)
    # the index ranks the database image itself first: the query went through the database's steps
    if options.dba_k == 0:
        assert reopened.search(got, 1)[1][0][0] == "img7"


def test_an_index_without_post_processing_gets_the_plain_embedding(archive, tmp_path) -> None:
    model, images, vectors, _, labels = archive
    index = create_index("exact", vectors.shape[1], [f"c{i}" for i in range(5)])
    index.add(vectors, [f"img{i}" for i in range(len(vectors))], labels)
    index.save(tmp_path / "plain.index")
    reopened = open_index(tmp_path / "plain.index")
    assert reopened.postprocess is None
    np.testing.assert_allclose(embed_decoded(model, images[3], SIZE, reopened), vectors[3:4], atol=1e-6)
