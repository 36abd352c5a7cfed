"""The web API on a real tiny run: it answers as `macl search` does, pages consistently, and refuses hostile
input with a 4xx while it keeps serving."""

from __future__ import annotations

import http.client
import io
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from macl import pipeline
from macl.archive import ArchiveSplits
from macl.config import load_config
from macl.fileio import file_digest
from macl.index import LabelFilter, open_index
from macl.web.app import create_app
from macl.web.search import DUPLICATE_COSINE


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Iterator[dict]:
    """A trained tiny run with its index, a hand-written evaluation file, and the app serving it; also
    `macl serve` on it in a subprocess, started here so that its start-up overlaps the other tests."""
    out = tmp_path_factory.mktemp("webrun")
    overrides = [
        "dataset.args={num_images: 120, image_size: 32, seed: 1}",
        "train.image_size=32",
        "train.epochs=1",
        "train.batch_size=16",
        f"output={out}",
    ]
    config = load_config(None, overrides)
    pipeline.train(config, validate=False)
    checkpoint = out / "last.pt"
    index_path = pipeline.build_index(config, checkpoint)
    index = open_index(index_path)
    names = list(index.label_names)
    evaluation = {  # the shape `macl evaluate` writes; NaN is what an AP without positives looks like
        "metrics": {"map": 0.5, "ndcg@10": float("nan")},
        "per_label_ap": {name: (float("nan") if n == 0 else 0.1 * n) for n, name in enumerate(names)},
        "rare_labels": names[:2],
    }
    (out / "metrics_trained.json").write_text(json.dumps(evaluation))
    app = create_app(config, index_path, checkpoint)
    port = free_port()
    command = [sys.executable, "-m", "macl.cli", "serve", "-c", str(out / "config.yaml"), "--port", str(port)]
    log = out / "serve.log"
    with open(log, "w") as sink:
        server = subprocess.Popen([*command, "--checkpoint", str(checkpoint)], stdout=sink, stderr=sink)
    yield {
        "server": server,
        "port": port,
        "log": log,
        "config": config,
        "checkpoint": checkpoint,
        "index_path": index_path,
        "index": index,
        "app": app,
        "client": TestClient(app, raise_server_exceptions=False),
        "ids": sorted(ArchiveSplits(config.dataset).locate(list(config.protocol.database))),
    }
    server.kill()  # a graceful shutdown is uvicorn's business, and the interpreter's exit takes seconds
    server.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ids_scores(hits: list) -> tuple[list[str], list[float]]:
    if hits and isinstance(hits[0], dict):
        return [h["id"] for h in hits], [h["score"] for h in hits]
    return [h.id for h in hits], [h.score for h in hits]


def still_serving(client: TestClient) -> None:
    assert client.get("/api/health").status_code == 200


def png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_health_run_labels_items_and_thumbnails(run) -> None:
    client, index = run["client"], run["index"]
    assert client.get("/api/health").json() == {"status": "ok", "items": index.ntotal, "backend": "exact"}

    info = client.get("/api/run").json()
    assert info["config"] == {
        "dataset": "synthetic",
        "queries": "test",
        "database": ["train", "val"],
        "loss": "macl",
        "backbone": "resnet18",
        "image_size": 32,
    }
    assert info["model"]["checkpoint"] == "last.pt" and info["model"]["hash"] == file_digest(run["checkpoint"])[:12]
    assert info["index"] == {"backend": "exact", "items": index.ntotal, "path": "archive.index"}
    assert info["metrics"] == {"map": 0.5, "ndcg@10": None}  # NaN cannot travel as JSON: null
    assert info["writable"] is False

    names = list(index.label_names)
    every = [i for i in run["ids"] if i in index]
    counts = index.labels_of(every).sum(0)
    labels = client.get("/api/labels").json()["labels"]
    assert [entry["name"] for entry in labels] == names
    assert [entry["count"] for entry in labels] == counts.tolist()
    assert [entry["rare"] for entry in labels] == [n < 2 for n in range(len(names))]
    assert labels[0]["ap"] is None and labels[1]["ap"] == pytest.approx(0.1)

    item_id = every[3]
    item = client.get(f"/api/items/{item_id}").json()
    own = index.labels_of([item_id])[0]
    assert item == {"id": item_id, "labels": [n for n, on in zip(names, own, strict=True) if on],
                    "thumbnail": f"/thumbs/{item_id}"}  # fmt: skip
    thumb = client.get(item["thumbnail"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/png"
    assert max(Image.open(io.BytesIO(thumb.content)).size) == 160

    schema = client.get("/openapi.json").json()
    assert {"/api/search", "/api/search/image", "/api/labels", "/api/run"} <= set(schema["paths"])
    assert "any" in schema["components"]["schemas"]["SearchRequest"]["properties"]


def test_search_by_id_equals_the_pipeline_without_running_the_network(run, monkeypatch) -> None:
    client = run["client"]
    monkeypatch.setattr(run["app"].state.searcher, "model", None)  # an id query must not need it
    for item_id in run["ids"][:3]:
        body = client.post("/api/search", json={"id": item_id, "k": 10}).json()
        _, expected = pipeline.search(run["index"], run["checkpoint"], 10, image_id=item_id)
        got_ids, got_scores = ids_scores(body["hits"])
        want_ids, want_scores = ids_scores(expected)
        assert got_ids == want_ids and got_scores == pytest.approx(want_scores, abs=1e-6)
        assert [h["shared"] for h in body["hits"]] == [list(h.shared) for h in expected]
        assert body["query"] == {"kind": "id", "id": item_id, "labels": body["query"]["labels"]}
        assert item_id not in got_ids


def test_uploaded_image_equals_the_pipeline(run, tmp_path) -> None:
    dataset = ArchiveSplits(run["config"].dataset).raw("test")
    path = tmp_path / "query.png"
    Image.fromarray(dataset.read(5).permute(1, 2, 0).numpy()).save(path)
    response = run["client"].post(
        "/api/search/image", files={"file": ("query.png", path.read_bytes(), "image/png")}, data={"k": "8"}
    )
    assert response.status_code == 200, response.text
    _, expected = pipeline.search(run["index"], run["checkpoint"], 8, image=path)
    got_ids, got_scores = ids_scores(response.json()["hits"])
    want_ids, want_scores = ids_scores(expected)
    assert got_ids == want_ids and got_scores == pytest.approx(want_scores, abs=1e-6)
    assert response.json()["query"] == {"kind": "image", "id": None, "labels": []}


def test_label_query_with_require_returns_only_carriers(run) -> None:
    index = run["index"]
    names = list(index.label_names)
    counts = index.labels_of([i for i in run["ids"] if i in index]).astype(np.int64).sum(0)
    common, second = (names[c] for c in np.argsort(-counts)[:2])
    body = run["client"].post("/api/search", json={"labels": [common], "require": [second], "k": 50}).json()
    _, expected = pipeline.search(index, run["checkpoint"], 50, labels=[common], where=LabelFilter(require=(second,)))
    assert body["hits"] and ids_scores(body["hits"])[0] == ids_scores(expected)[0]
    assert all(common in h["labels"] and second in h["labels"] for h in body["hits"])
    assert body["query"] == {"kind": "labels", "id": None, "labels": [common]}


def test_pages_are_slices_of_a_bigger_k(run) -> None:
    client, query = run["client"], {"id": run["ids"][0]}
    whole = client.post("/api/search", json={**query, "k": 15}).json()
    pages = [client.post("/api/search", json={**query, "k": 5, "offset": o}).json() for o in (0, 5, 10)]
    assert [h for page in pages for h in page["hits"]] == whole["hits"]
    assert [h["rank"] for h in whole["hits"]] == list(range(1, 16))
    assert all(page["has_more"] for page in pages)
    last = client.post("/api/search", json={**query, "k": 10, "offset": run["index"].ntotal - 5}).json()
    assert len(last["hits"]) == 4 and not last["has_more"]  # the query item itself is never a hit


def test_min_score_and_dedupe(run) -> None:
    client, index, query_id = run["client"], run["index"], run["ids"][1]
    everything = client.post("/api/search", json={"id": query_id, "k": 200}).json()["hits"]
    scores = [h["score"] for h in everything]
    threshold = scores[len(scores) // 3]
    kept = client.post("/api/search", json={"id": query_id, "k": 200, "min_score": threshold}).json()
    assert kept["hits"] == [h for h in everything if h["score"] >= threshold] and not kept["has_more"]

    vectors = np.stack([index.embedding_of(h["id"]) for h in everything])
    survivors: list[int] = []  # the rule, applied independently to the whole ranking
    for j in range(len(everything)):
        if not survivors or (vectors[survivors] @ vectors[j]).max() < DUPLICATE_COSINE:
            survivors.append(j)
    deduped = client.post("/api/search", json={"id": query_id, "k": 10, "dedupe": True}).json()
    assert [h["id"] for h in deduped["hits"]] == [everything[j]["id"] for j in survivors[:10]]
    assert [h["rank"] for h in deduped["hits"]] == list(range(1, len(deduped["hits"]) + 1))
    second = client.post("/api/search", json={"id": query_id, "k": 10, "offset": 10, "dedupe": True}).json()
    assert [h["id"] for h in second["hits"]] == [everything[j]["id"] for j in survivors[10:20]]


@pytest.mark.parametrize(
    "url",
    [
        "/thumbs/..%2F..%2Fetc%2Fpasswd",
        "/thumbs/%2Fetc%2Fpasswd",
        "/thumbs/../../etc/passwd",
        "/thumbs/%2E%2E/%2E%2E/etc/passwd",
        "/api/items/..%2F..%2Fetc%2Fpasswd",
        "/api/items/%2Fetc%2Fpasswd",
        "/api/items/../../../etc/passwd",
        "/static/..%2F..%2F..%2Fconfig.py",
    ],
)
def test_paths_in_urls_reach_no_file(run, url) -> None:
    response = run["client"].get(url)
    assert response.status_code == 404 and "root:" not in response.text
    still_serving(run["client"])


def bomb() -> bytes:
    """A 20000×20000 PNG (400 megapixels, 1.6 GB as RGB) in about 50 KB."""
    return png_bytes(Image.new("1", (20_000, 20_000)))


@pytest.mark.parametrize(
    ("name", "content", "status", "message"),
    [
        ("huge.png", b"\0" * (50 * 2**20), 413, "over"),
        ("exactly-too-big.png", b"\0" * (10 * 2**20 + 1), 413, "10 MB"),
        ("notes.png", b"these are not pixels\n" * 50, 415, "not an image"),
        ("bomb.png", None, 413, "megapixels"),
        ("wide.png", png_bytes(Image.new("1", (8000, 6000))), 413, "8000×6000"),
        ("empty.png", b"", 400, "empty"),
    ],
)
def test_hostile_uploads_are_refused(run, name, content, status, message) -> None:
    content = bomb() if content is None else content
    response = run["client"].post("/api/search/image", files={"file": (name, content, "image/png")})
    assert response.status_code == status and message in response.json()["detail"]
    still_serving(run["client"])


def test_an_oversized_body_without_length_is_cut_off(run) -> None:
    def chunks():
        for _ in range(12):
            yield b"\0" * 2**20

    response = run["client"].post(
        "/api/search/image", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"}
    )
    assert response.status_code == 413
    still_serving(run["client"])


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ('{"id": "syn0', 422, "not valid JSON"),
        ({"labels": ["no-such-label"]}, 400, "unknown label 'no-such-label'"),
        ({"id": "__ID__", "require": ["watr"]}, 400, "did you mean 'water'"),
        ({"id": "__ID__", "k": 10**9}, 422, "k:"),
        ({"id": "__ID__", "offset": -1}, 422, "offset:"),
        ({"id": "__ID__", "min_score": "high"}, 422, "min_score:"),
        ({"id": "__ID__", "labels": ["water"]}, 400, "exactly one"),
        ({"k": 5}, 400, "exactly one"),
        ({"id": "no-such-id"}, 404, "no-such-id"),
        ({"id": "__ID__", "any_of": ["water"]}, 422, "any_of"),
        ({"labels": []}, 422, "labels:"),
    ],
)
def test_bad_queries_are_client_errors(run, body, status, message) -> None:
    client = run["client"]
    if isinstance(body, str):
        response = client.post("/api/search", content=body, headers={"content-type": "application/json"})
    else:
        body = {key: (run["ids"][0] if value == "__ID__" else value) for key, value in body.items()}
        response = client.post("/api/search", json=body)
    assert response.status_code == status, response.text
    assert isinstance(response.json()["detail"], str) and message in response.json()["detail"]
    still_serving(client)


def test_bad_upload_fields_are_client_errors(run) -> None:
    image = png_bytes(Image.new("RGB", (40, 30), "green"))
    for fields, status in (({"k": str(10**9)}, 422), ({"any": "watr"}, 400), ({"min_score": "nan"}, 422)):
        response = run["client"].post("/api/search/image", files={"file": ("a.png", image, "image/png")}, data=fields)
        assert response.status_code == status, response.text
    still_serving(run["client"])


def test_a_server_error_is_a_plain_500(run, monkeypatch) -> None:
    def broken(image_id: str) -> bytes:
        raise RuntimeError(f"disk gone under /srv/secret/{image_id}")

    monkeypatch.setattr(run["app"].state.thumbnails, "png", broken)
    response = run["client"].get(f"/thumbs/{run['ids'][0]}")
    assert response.status_code == 500
    assert "secret" not in response.text and "Traceback" not in response.text
    still_serving(run["client"])


def test_macl_serve_answers_over_http(run) -> None:
    """The real command and server: raw requests, with no client normalising `..` away."""
    server, port = run["server"], run["port"]
    deadline, health = time.time() + 120, None
    while health is None and time.time() < deadline and server.poll() is None:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/api/health")
            health = json.loads(connection.getresponse().read())
            connection.close()
        except OSError:
            time.sleep(0.2)
    assert health is not None, run["log"].read_text()
    assert health["items"] == run["index"].ntotal
    for path in ("/thumbs/../../../etc/passwd", "/api/items/../../etc/passwd", "/static/../app.py"):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", path)
        answer = connection.getresponse()
        assert answer.status == 404 and b"root:" not in answer.read()
        connection.close()
