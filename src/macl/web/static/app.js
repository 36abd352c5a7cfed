// The single page of `macl serve`: plain JavaScript, no build step, nothing fetched from outside the server.
//
// One object, `state`, is the query (an archive id, label names, or an uploaded image) with its filters
// and paging. Every user action makes a new state and calls `go`, which writes it into the address bar
// (history.pushState) and runs the search, so an address can be shared and Back/Forward replay earlier
// queries. An uploaded image cannot live in an address; it is kept in memory for this tab only.
//
// Data from the server (ids, label names, messages) only ever reaches the page through textContent and
// attributes, never as HTML. Modules: dom.js (element helpers), run.js (the loaded run's panel).

import { button, chip, el } from "./dom.js";
import { renderRun } from "./run.js";

const DEFAULT_K = 24;
const MAX_K = 200;
const MAX_OFFSET = 10000;
const $ = (id) => document.getElementById(id);

let state = emptyState();
let labelsInfo = []; // /api/labels, in the index's label order
let draftLabels = []; // labels picked for a label query and not searched yet
let lastResult = null; // the answer on screen: what the exports write
let searchSeq = 0; // answers to a search that a newer one superseded are dropped
const uploads = new Map(); // upload number → {file, url}: lets Back/Forward re-run an image query in this tab
let uploadCount = 0;

function emptyState() {
  return { kind: null, id: null, labels: [], upload: null, require: [], any: [], k: DEFAULT_K, offset: 0, minScore: null, dedupe: false };
}

/** The server's thumbnail path, used only when it is one of its own /thumbs/ paths. */
function thumbUrl(id, given) {
  return typeof given === "string" && given.startsWith("/thumbs/") ? given : `/thumbs/${encodeURIComponent(id)}`;
}

function clampInt(text, low, high, fallback) {
  const value = Number.parseInt(text, 10);
  return Number.isFinite(value) ? Math.min(high, Math.max(low, value)) : fallback;
}

// --- the address bar ---------------------------------------------------------------------------------
// Lists are comma-joined with each name percent-encoded on its own, so `require=a,b` stays readable and
// a name that contains a comma still survives the round trip.

function decodePart(text) {
  try {
    return decodeURIComponent(text.replace(/\+/g, " "));
  } catch {
    return text; // a malformed escape: keep the text as typed
  }
}

function stateToSearch(s) {
  const parts = [];
  const add = (key, value) => parts.push(`${key}=${value}`);
  const list = (names) => names.map(encodeURIComponent).join(",");
  if (s.kind === "id") add("id", encodeURIComponent(s.id));
  if (s.kind === "labels") add("labels", list(s.labels));
  if (s.kind === "image") add("upload", String(s.upload));
  if (s.require.length) add("require", list(s.require));
  if (s.any.length) add("any", list(s.any));
  add("k", String(s.k));
  add("offset", String(s.offset));
  if (s.minScore !== null) add("min_score", String(s.minScore));
  if (s.dedupe) add("dedupe", "1");
  return `?${parts.join("&")}`;
}

function stateFromSearch(search) {
  const raw = new Map();
  for (const part of search.replace(/^\?/, "").split("&")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    raw.set(decodePart(eq < 0 ? part : part.slice(0, eq)), eq < 0 ? "" : part.slice(eq + 1));
  }
  const one = (key) => (raw.has(key) ? decodePart(raw.get(key)) : null);
  const list = (key) => (raw.get(key) || "").split(",").map(decodePart).filter(Boolean);
  const s = emptyState();
  if (one("id")) {
    s.kind = "id";
    s.id = one("id");
  } else if (list("labels").length) {
    s.kind = "labels";
    s.labels = list("labels");
  } else if (one("upload")) {
    s.kind = "image";
    s.upload = clampInt(one("upload"), 0, Number.MAX_SAFE_INTEGER, 0);
  }
  s.require = list("require");
  s.any = list("any");
  s.k = clampInt(one("k"), 1, MAX_K, DEFAULT_K);
  s.offset = clampInt(one("offset"), 0, MAX_OFFSET, 0);
  const minScore = Number.parseFloat(one("min_score"));
  s.minScore = Number.isFinite(minScore) ? minScore : null;
  s.dedupe = ["1", "true", "yes", "on"].includes(one("dedupe"));
  return s;
}

/** Make `next` the current state: record it in the history (unless replaying it) and search. */
function go(next, push = true) {
  state = next;
  if (next.kind === "labels") draftLabels = [...next.labels];
  const search = stateToSearch(next);
  if (push && search !== window.location.search) window.history.pushState(null, "", search);
  syncControls();
  runSearch();
}

/** The current query with some fields changed; any change but paging starts again at the first page. */
function withChanges(changes) {
  return { ...state, offset: 0, ...changes };
}

// --- talking to the server ---------------------------------------------------------------------------

async function api(path, options) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (err) {
    throw new Error(`the server cannot be reached (${err.message})`);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null; // not JSON: the status line is all there is to report
  }
  if (!response.ok) throw new Error(describeError(response, data));
  if (data === null) throw new Error(`${path} answered with something that is not JSON`);
  return data;
}

function describeError(response, data) {
  const detail = data && data.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => (d && d.msg ? `${(d.loc || []).join(".")}: ${d.msg}` : JSON.stringify(d))).join("; ");
  }
  return `${response.status} ${response.statusText}`.trim();
}

function searchRequest(s) {
  if (s.kind === "image") {
    const upload = uploads.get(s.upload);
    if (!upload) {
      throw new Error("This address was made for an uploaded image, which an address cannot hold: upload the image again.");
    }
    const form = new FormData();
    form.append("file", upload.file, upload.file.name);
    if (s.require.length) form.append("require", s.require.join(","));
    if (s.any.length) form.append("any", s.any.join(","));
    form.append("k", String(s.k));
    form.append("offset", String(s.offset));
    if (s.minScore !== null) form.append("min_score", String(s.minScore));
    form.append("dedupe", s.dedupe ? "true" : "false");
    return ["/api/search/image", { method: "POST", body: form }];
  }
  const body = {
    id: s.kind === "id" ? s.id : null,
    labels: s.kind === "labels" ? s.labels : null,
    require: s.require,
    any: s.any,
    k: s.k,
    offset: s.offset,
    min_score: s.minScore,
    dedupe: s.dedupe,
  };
  return ["/api/search", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }];
}

async function runSearch() {
  const seq = ++searchSeq;
  const hits = $("hits");
  showError(null);
  if (!state.kind) {
    showResult(null);
    hits.dataset.state = "idle";
    return;
  }
  hits.dataset.state = "loading";
  hits.setAttribute("aria-busy", "true");
  $("range").textContent = "searching…";
  let answer = null;
  let failure = null;
  try {
    const [path, options] = searchRequest(state);
    answer = await api(path, options);
  } catch (err) {
    failure = err;
  }
  if (seq !== searchSeq) return;
  hits.removeAttribute("aria-busy");
  showResult(answer);
  if (failure) showError(failure.message);
  hits.dataset.state = failure ? "error" : "ready";
}

// --- rendering the answer ----------------------------------------------------------------------------

function showError(message) {
  const node = $("error");
  node.hidden = !message;
  node.textContent = message || "";
}

function showResult(answer) {
  lastResult = answer;
  renderSummary(answer);
  const list = $("hits");
  list.replaceChildren();
  const hits = answer ? answer.hits : [];
  for (const hit of hits) list.append(hitCard(hit));
  if (!answer) $("range").textContent = "";
  else if (!hits.length) $("range").textContent = answer.offset ? "no more hits" : "no hits";
  else $("range").textContent = `hits ${hits[0].rank}–${hits[hits.length - 1].rank}`;
  $("prev").disabled = !answer || state.offset === 0;
  $("next").disabled = !answer || !answer.has_more;
  $("export-csv").disabled = !hits.length;
  $("export-json").disabled = !hits.length;
}

function renderSummary(answer) {
  const box = $("query-summary");
  box.replaceChildren();
  if (!state.kind) {
    box.append(el("p", "muted", "Search by an archive id, an image, or labels."));
    return;
  }
  const head = el("div", "summary-head");
  if (state.kind === "id") {
    if (answer) {
      const img = el("img", "query-thumb"); // only for an id the server knows: no broken image for a typo
      img.src = thumbUrl(state.id);
      img.alt = `query item ${state.id}`;
      head.append(img);
    }
    head.append(el("h2", "", `Archive item ${state.id}`));
  } else if (state.kind === "labels") {
    head.append(el("h2", "", `Images with ${state.labels.join(" + ")}`));
  } else {
    const upload = uploads.get(state.upload);
    if (upload) {
      const img = el("img", "query-thumb");
      img.src = upload.url;
      img.alt = "the uploaded query image";
      head.append(img);
    }
    head.append(el("h2", "", `Uploaded image${upload ? ` ${upload.file.name}` : ""}`));
  }
  box.append(head);
  const labels = answer ? answer.query.labels : state.kind === "labels" ? state.labels : [];
  if (labels.length) {
    const chips = el("ul", "chips");
    for (const name of labels) chips.append(chip(name, "query"));
    box.append(chips);
  } else if (answer && state.kind === "id") {
    box.append(el("p", "muted", "this item carries no labels"));
  }
  const note =
    state.kind === "image"
      ? "An uploaded image is not part of the address: this view cannot be shared, and a reload forgets it."
      : "The address bar holds this query: copy it to share the view.";
  box.append(el("p", "hint", note));
}

function hitCard(hit) {
  const item = el("li", "hit");
  item.dataset.id = hit.id;
  item.dataset.score = String(hit.score);
  item.dataset.rank = String(hit.rank);
  const card = button("", `search with ${hit.id}`, () => go(withChanges({ kind: "id", id: hit.id, labels: [], upload: null })));
  card.className = "hit-card";
  const img = el("img");
  img.src = thumbUrl(hit.id, hit.thumbnail);
  img.alt = `archive item ${hit.id}`;
  img.loading = "lazy";
  const meta = el("div", "hit-meta");
  meta.append(el("span", "rank", `#${hit.rank}`), el("span", "score", hit.score.toFixed(3)));
  const shared = new Set(hit.shared);
  const labels = el("ul", "chips");
  for (const name of hit.labels) {
    labels.append(shared.has(name) ? chip(name, "shared", "shared with the query") : chip(name, "", null));
  }
  for (const name of hit.missing) labels.append(chip(name, "missing", "a query label this hit lacks"));
  card.append(img, meta, el("div", "hit-id", hit.id), labels);
  item.append(card);
  return item;
}

// --- the controls ------------------------------------------------------------------------------------

function syncControls() {
  $("id-input").value = state.kind === "id" ? state.id : "";
  $("k-input").value = String(state.k);
  $("min-score-input").value = state.minScore === null ? "" : String(state.minScore);
  $("dedupe-input").checked = state.dedupe;
  renderDraft();
  renderFilters();
  renderFacets();
}

function renderDraft() {
  const box = $("query-chips");
  box.replaceChildren();
  if (!draftLabels.length) box.append(el("span", "muted", "pick labels with “+” in the list below"));
  for (const name of draftLabels) {
    box.append(button(`${name} ×`, `remove ${name} from the label query`, () => toggleDraft(name)));
  }
  $("labels-search").disabled = !draftLabels.length;
}

function toggleDraft(name) {
  draftLabels = draftLabels.includes(name) ? draftLabels.filter((n) => n !== name) : [...draftLabels, name];
  renderDraft();
  renderFacets();
}

function renderFilters() {
  const box = $("active-filters");
  box.replaceChildren();
  const group = (title, names, key) => {
    if (!names.length) return;
    box.append(el("span", "muted", title));
    for (const name of names) {
      box.append(button(`${name} ×`, `drop the filter on ${name}`, () => setFilter(name, key)));
    }
  };
  group("all of:", state.require, "require");
  group("any of:", state.any, "any");
  if (!state.require.length && !state.any.length) box.append(el("span", "muted", "no label filter"));
}

/** Toggle `name` in the filter list `key` ('require' or 'any'); a label sits in at most one of them. */
function setFilter(name, key) {
  const other = key === "require" ? "any" : "require";
  const on = !state[key].includes(name);
  go(
    withChanges({
      [key]: on ? [...state[key], name] : state[key].filter((n) => n !== name),
      [other]: state[other].filter((n) => n !== name),
    }),
  );
}

function renderFacets() {
  const list = $("facets");
  list.replaceChildren();
  const needle = $("facet-filter").value.trim().toLowerCase();
  for (const info of labelsInfo) {
    if (needle && !info.name.toLowerCase().includes(needle)) continue;
    const item = el("li", `facet${info.rare ? " rare" : ""}${info.count ? "" : " empty"}`);
    item.dataset.label = info.name;
    item.dataset.count = String(info.count);
    const add = button("+", `add ${info.name} to a label query`, () => toggleDraft(info.name));
    add.className = "add";
    add.disabled = !info.count && !draftLabels.includes(info.name); // no indexed image to search with
    add.setAttribute("aria-pressed", String(draftLabels.includes(info.name)));
    const name = el("span", "facet-name", info.name);
    if (info.rare) name.append(el("span", "badge", "rare"));
    const count = el("span", "count", info.count);
    count.title = `${info.count} indexed items carry ${info.name} (${(100 * info.frequency).toFixed(1)}%)`;
    const ap = el("span", "ap", info.ap === null || info.ap === undefined ? "—" : info.ap.toFixed(2));
    ap.title = "average precision of this label in the loaded run";
    const all = button("all", `only hits carrying ${info.name} (with every other “all” label)`, () => setFilter(info.name, "require"));
    all.className = "toggle all";
    all.setAttribute("aria-pressed", String(state.require.includes(info.name)));
    const any = button("any", `hits carrying at least one of the “any” labels, ${info.name} among them`, () => setFilter(info.name, "any"));
    any.className = "toggle any";
    any.setAttribute("aria-pressed", String(state.any.includes(info.name)));
    item.append(add, name, count, ap, all, any);
    list.append(item);
  }
}

function takeUpload(file) {
  if (!file) return;
  uploadCount += 1;
  uploads.set(uploadCount, { file, url: URL.createObjectURL(file) });
  go(withChanges({ kind: "image", upload: uploadCount, id: null, labels: [] }));
}

function bindControls() {
  $("id-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = $("id-input").value.trim();
    if (!id) return showError("Type an archive id to search with.");
    go(withChanges({ kind: "id", id, labels: [], upload: null }));
  });
  $("file-input").addEventListener("change", (event) => {
    takeUpload(event.target.files[0]);
    event.target.value = ""; // picking the same file again must still fire `change`
  });
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    takeUpload(event.dataTransfer.files[0]);
  });
  $("labels-search").addEventListener("click", () =>
    go(withChanges({ kind: "labels", labels: [...draftLabels], id: null, upload: null })),
  );
  $("k-input").addEventListener("change", (event) => go(withChanges({ k: clampInt(event.target.value, 1, MAX_K, DEFAULT_K) })));
  $("min-score-input").addEventListener("change", (event) => {
    const value = Number.parseFloat(event.target.value);
    go(withChanges({ minScore: Number.isFinite(value) ? value : null }));
  });
  $("dedupe-input").addEventListener("change", (event) => go(withChanges({ dedupe: event.target.checked })));
  $("facet-filter").addEventListener("input", renderFacets);
  $("prev").addEventListener("click", () => go({ ...state, offset: Math.max(0, state.offset - state.k) }));
  $("next").addEventListener("click", () => go({ ...state, offset: Math.min(MAX_OFFSET, state.offset + state.k) }));
  $("export-csv").addEventListener("click", exportCsv);
  $("export-json").addEventListener("click", exportJson);
  window.addEventListener("popstate", () => go(stateFromSearch(window.location.search), false));
}

// --- exports -----------------------------------------------------------------------------------------

/** A CSV text cell: quoted when needed, and a leading = + - @ defused so a spreadsheet shows no formula. */
function csvText(text) {
  const safe = /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

function exportName(extension) {
  const what = state.kind === "id" ? state.id : state.kind === "labels" ? `labels-${state.labels.join("+")}` : "image";
  const first = lastResult.offset + 1;
  return `macl-${what.replace(/[^A-Za-z0-9._+-]+/g, "_")}-${first}-${first + lastResult.hits.length - 1}.${extension}`;
}

function download(blob, name) {
  const link = el("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000); // after the browser has read it
}

function exportCsv() {
  const rows = [["rank", "id", "score", "labels", "shared", "missing"].join(",")];
  for (const h of lastResult.hits) {
    rows.push(
      [String(h.rank), csvText(h.id), String(h.score), csvText(h.labels.join(";")), csvText(h.shared.join(";")), csvText(h.missing.join(";"))].join(","),
    );
  }
  download(new Blob([`${rows.join("\r\n")}\r\n`], { type: "text/csv" }), exportName("csv"));
}

function exportJson() {
  const payload = {
    query: lastResult.query,
    filters: { require: state.require, any: state.any, min_score: state.minScore, dedupe: state.dedupe },
    offset: lastResult.offset,
    k: lastResult.k,
    has_more: lastResult.has_more,
    hits: lastResult.hits,
  };
  download(new Blob([JSON.stringify(payload, null, 1)], { type: "application/json" }), exportName("json"));
}

// --- the header, the label list and the run panel ---------------------------------------------------

async function loadSideInfo() {
  const [health, labels, run] = await Promise.allSettled([api("/api/health"), api("/api/labels"), api("/api/run")]);
  $("health").textContent =
    health.status === "fulfilled"
      ? `${health.value.items} items · ${health.value.backend} index`
      : `server not answering: ${health.reason.message}`;
  if (labels.status === "fulfilled") {
    labelsInfo = labels.value.labels;
    renderFacets();
  } else {
    $("facets").replaceChildren(el("li", "error", `labels unavailable: ${labels.reason.message}`));
  }
  if (run.status === "fulfilled") renderRun(run.value, $("run-body"));
  else $("run-body").replaceChildren(el("p", "error", `run unavailable: ${run.reason.message}`));
}

bindControls();
go(stateFromSearch(window.location.search), false);
loadSideInfo();
