"""The page of `macl serve` in a real browser: a headless Chromium driven by Playwright against a real
server (uvicorn, on 127.0.0.1) over a tiny trained run.

It walks what a user does: search by id, click a hit to make it the query, filter with a label facet,
go back, page, query by labels and by an uploaded image, and export the hits as CSV and JSON; the
exports must hold exactly the rows on screen. Every request the page makes must go to the server
itself (the page works offline). A screenshot of each step lands in the test's tmp folder.

The browser is Debian's Chromium (`/usr/bin/chromium`; `make test` installs it where it can), never
one Playwright downloads. Without it, or without the `playwright` package, the test skips and says why.
"""

from __future__ import annotations

import csv
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from PIL import Image

from macl import pipeline
from macl.archive import ArchiveSplits
from macl.config import load_config
from macl.web.app import create_app

CHROMIUM = Path("/usr/bin/chromium")
# No sandbox: the test may run as root in a container. The rest keeps Chromium from calling home.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
K = 8

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the browser test needs playwright (pip install -e '.[test]')"
)
if not CHROMIUM.is_file():
    pytest.skip(
        f"the browser test needs Chromium at {CHROMIUM} (apt-get install chromium; `make test` does it as root)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict[str, Any]:
    """A tiny run: one epoch on 120 synthetic 32-px images, its index, and its evaluation (per-label AP)."""
    out = tmp_path_factory.mktemp("web-run")
    config = load_config(
        None,
        [
            "dataset.args={num_images: 120, image_size: 32, seed: 1}",
            "train.image_size=32",
            "train.epochs=1",
            "train.batch_size=16",
            f"output={out}",
        ],
    )
    pipeline.train(config, validate=False)
    checkpoint = out / "last.pt"
    index = pipeline.build_index(config, checkpoint)
    pipeline.evaluate(config, pipeline.load_model(checkpoint)[0], "metrics_trained")
    return {"config": config, "index": index, "checkpoint": checkpoint, "dir": out}


@pytest.fixture(scope="module")
def server(run) -> Iterator[str]:
    """The app in uvicorn on a port the OS picked (the socket is bound here: no race for a free port)."""
    app = create_app(run["config"], run["index"], run["checkpoint"])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server) -> Iterator[Any]:
    """A fresh tab on the page; fails the test on a script error or a request that leaves the server."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda err: problems.append(f"script error: {err}"))
    tab.on(
        "request",
        lambda r: None if r.url.startswith((server, "data:", "blob:")) else problems.append(f"outside: {r.url}"),
    )
    tab.goto(server)
    tab.wait_for_selector("#facets .facet")  # /api/labels has answered
    yield tab
    context.close()
    assert not problems, problems


def settle(page, search: str | None = None) -> list[dict[str, Any]]:
    """Wait until the search for the address ``search`` (default: whatever is current) has been shown,
    with its thumbnails decoded; return the grid as ``{id, score, rank, shown, labels}`` per card
    (``shown``: the score as printed; ``labels``: the hit's own, not the query labels it lacks)."""
    try:
        page.wait_for_function(
            """(search) => (search === null || location.search === search)
                && document.getElementById('hits').dataset.state === 'ready'
                && [...document.querySelectorAll('#hits img')].every((img) => img.complete && img.naturalWidth > 0)""",
            arg=search,
            timeout=15_000,
        )
    except sync_api.TimeoutError as err:
        seen = page.evaluate("[location.search, document.getElementById('hits').dataset.state]")
        shown = page.text_content("#error")
        raise AssertionError(
            f"no results shown for {search}: address {seen[0]}, grid {seen[1]}, error {shown!r}"
        ) from err
    return page.eval_on_selector_all(
        "li.hit",
        """(cards) => cards.map((card) => ({
            id: card.dataset.id,
            score: Number(card.dataset.score),
            rank: Number(card.dataset.rank),
            shown: card.querySelector('.score').textContent,
            labels: [...card.querySelectorAll('.lab:not(.missing)')].map((chip) => chip.textContent),
        }))""",
    )


def search_by_id(page, item_id: str) -> list[dict[str, Any]]:
    page.fill("#k-input", str(K))
    page.dispatch_event("#k-input", "change")
    page.fill("#id-input", item_id)
    page.click("#id-form button[type=submit]")
    return settle(page, f"?id={item_id}&k={K}&offset=0")


def query_string(page) -> dict[str, str]:
    pairs = page.evaluate("location.search").lstrip("?").split("&")
    return dict(pair.split("=", 1) for pair in pairs if pair)


def a_labelled_id(run) -> str:
    """An indexed id whose item carries at least one label (so shared/missing labels show)."""
    splits = ArchiveSplits(run["config"].dataset)
    where = splits.locate(list(run["config"].protocol.database))
    for item_id, (dataset, position) in where.items():
        if dataset.label_matrix[position].any():
            return item_id
    raise AssertionError("no labelled item in the tiny archive")


def test_search_click_filter_and_back(page, run, tmp_path):
    first_id = a_labelled_id(run)

    grid = search_by_id(page, first_id)
    page.screenshot(path=tmp_path / "1-search-by-id.png", full_page=True)
    assert len(grid) == K, "the grid shows k hits"
    assert [h["rank"] for h in grid] == list(range(1, K + 1))
    assert all(-1 <= h["score"] <= 1 and h["shown"] == f"{h['score']:.3f}" for h in grid)
    assert [h["score"] for h in grid] == sorted((h["score"] for h in grid), reverse=True)
    assert first_id not in {h["id"] for h in grid}, "the query item is not its own hit"
    assert query_string(page) == {"id": first_id, "k": str(K), "offset": "0"}
    first_url = page.url
    shared = page.locator("li.hit .lab.shared").count()
    assert shared > 0, "labels shared with the query are marked"

    clicked = grid[1]["id"]
    page.click(f'li.hit[data-id="{clicked}"] button')
    second = settle(page, f"?id={clicked}&k={K}&offset=0")
    page.screenshot(path=tmp_path / "2-clicked-hit.png", full_page=True)
    assert clicked in page.text_content("#query-summary")
    assert clicked not in {h["id"] for h in second}
    assert [h["id"] for h in second] != [h["id"] for h in grid], "the grid shows the new query's hits"
    second_url = page.url

    # The label most of the current hits carry: filtering by it still leaves hits to show.
    counts: dict[str, int] = {}
    for hit in second:
        for name in hit["labels"]:
            counts[name] = counts.get(name, 0) + 1
    label = max(counts, key=lambda name: counts[name])
    page.click(f'.facet[data-label="{label}"] .toggle.all')
    filtered = settle(page, f"?id={clicked}&require={label}&k={K}&offset=0")
    page.screenshot(path=tmp_path / "3-filter-all-of.png", full_page=True)
    assert filtered, f"hits carrying {label!r}"
    assert all(label in h["labels"] for h in filtered), f"every hit carries {label!r}"
    assert page.get_attribute(f'.facet[data-label="{label}"] .toggle.all', "aria-pressed") == "true"

    page.go_back()
    assert settle(page, f"?id={clicked}&k={K}&offset=0") == second
    assert page.url == second_url
    assert page.get_attribute(f'.facet[data-label="{label}"] .toggle.all', "aria-pressed") == "false"
    page.screenshot(path=tmp_path / "4-back.png", full_page=True)
    page.go_back()
    assert settle(page, f"?id={first_id}&k={K}&offset=0") == grid
    assert page.url == first_url
    assert page.input_value("#id-input") == first_id
    page.go_forward()
    assert settle(page, f"?id={clicked}&k={K}&offset=0") == second

    page.click("#next")
    next_page = settle(page, f"?id={clicked}&k={K}&offset={K}")
    page.screenshot(path=tmp_path / "5-next-page.png", full_page=True)
    assert [h["rank"] for h in next_page] == list(range(K + 1, K + 1 + len(next_page)))
    assert not {h["id"] for h in next_page} & {h["id"] for h in second}


def test_exports_match_the_grid(page, run, tmp_path):
    grid = search_by_id(page, a_labelled_id(run))
    page.screenshot(path=tmp_path / "grid.png", full_page=True)

    with page.expect_download() as csv_download:
        page.click("#export-csv")
    path = tmp_path / csv_download.value.suggested_filename
    csv_download.value.save_as(path)
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert [(int(r["rank"]), r["id"], float(r["score"])) for r in rows] == [
        (h["rank"], h["id"], h["score"]) for h in grid
    ]
    assert [r["labels"].split(";") if r["labels"] else [] for r in rows] == [h["labels"] for h in grid]

    with page.expect_download() as json_download:
        page.click("#export-json")
    path = tmp_path / json_download.value.suggested_filename
    json_download.value.save_as(path)
    exported = json.loads(path.read_text())
    assert [(h["rank"], h["id"], h["score"], h["labels"]) for h in exported["hits"]] == [
        (h["rank"], h["id"], h["score"], h["labels"]) for h in grid
    ]
    assert exported["query"]["kind"] == "id" and exported["offset"] == 0 and exported["k"] == K


def test_label_query_upload_and_run_panel(page, run, tmp_path):
    counts = page.eval_on_selector_all(
        "#facets .facet", "(items) => items.map((item) => [item.dataset.label, Number(item.dataset.count)])"
    )
    assert counts, "the label facets are listed"
    wanted = max(counts, key=lambda pair: pair[1])[0]
    page.click(f'.facet[data-label="{wanted}"] .add')
    page.click("#labels-search")
    grid = settle(page, f"?labels={wanted}&k=24&offset=0")
    page.screenshot(path=tmp_path / "labels-query.png", full_page=True)
    assert grid and all(wanted in h["labels"] for h in grid), "a label query returns carriers of the label"

    splits = ArchiveSplits(run["config"].dataset)
    dataset, position = next(iter(splits.locate(list(run["config"].protocol.database)).values()))
    picture = tmp_path / "query.png"
    Image.fromarray(dataset.read(position).permute(1, 2, 0).numpy()).save(picture)
    page.set_input_files("#file-input", str(picture))
    uploaded = settle(page, "?upload=1&k=24&offset=0")
    page.screenshot(path=tmp_path / "upload-query.png", full_page=True)
    assert uploaded and "Uploaded image query.png" in page.text_content("#query-summary")
    assert "cannot be shared" in page.text_content("#query-summary")

    page.reload()  # the address of an upload cannot bring the image back: the page says so
    page.wait_for_selector("#hits[data-state=error]", state="attached")
    assert "upload the image again" in page.text_content("#error")

    page.click("#run-panel summary")
    page.wait_for_selector(".ap-table tr:nth-child(2)")
    page.screenshot(path=tmp_path / "run-panel.png", full_page=True)
    body = page.text_content("#run-body")
    assert "last.pt" in body and "synthetic" in body and "map@10" in body
    assert page.locator(".ap-table tr").count() == 1 + len(counts), "one AP row per label"
