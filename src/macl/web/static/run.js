// The "loaded run" panel: what `/api/run` says about the model, data and index being served, the run's
// retrieval metrics, and its per-label AP (so a user sees which labels retrieve well), rare labels marked.

import { el } from "./dom.js";

const HEADLINE_METRICS = ["map", "map@10", "map@100", "p@10", "ndcg@10", "acg@10", "label_map_macro", "label_map_rare"];

function fmt(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(4);
  if (Array.isArray(value)) return value.map(fmt).join(", ");
  if (typeof value === "object") return Object.entries(value).map(([k, v]) => `${k}: ${fmt(v)}`).join("; ");
  return String(value);
}

function definitionList(entries) {
  const list = el("dl", "facts");
  for (const [key, value] of entries) list.append(el("dt", "", key), el("dd", "", fmt(value)));
  return list;
}

function metricsTable(metrics, keys) {
  const table = el("table", "metrics");
  for (const key of keys) {
    const row = el("tr");
    row.append(el("th", "", key), el("td", "num", fmt(metrics[key])));
    table.append(row);
  }
  return table;
}

function apTable(perLabel, rare) {
  const table = el("table", "ap-table");
  const head = el("tr");
  head.append(el("th", "", "label"), el("th", "", "AP"), el("th", "", ""));
  table.append(head);
  const rows = Object.entries(perLabel).sort((a, b) => (b[1] ?? -1) - (a[1] ?? -1));
  for (const [name, ap] of rows) {
    const row = el("tr", rare.has(name) ? "rare" : "");
    const label = el("td", "", name);
    if (rare.has(name)) label.append(el("span", "badge", "rare"));
    const bar = el("span", "bar");
    bar.style.width = `${Math.max(0, Math.min(1, ap ?? 0)) * 100}%`;
    const barCell = el("td", "bar-cell");
    barCell.append(bar);
    row.append(label, el("td", "num", fmt(ap)), barCell);
    table.append(row);
  }
  return table;
}

/** Fill `body` with the run's facts and evaluation. */
export function renderRun(run, body) {
  body.replaceChildren();
  const section = (title, ...nodes) => {
    const box = el("section", "run-section");
    box.append(el("h3", "", title), ...nodes);
    body.append(box);
  };
  section("Data and training", definitionList(Object.entries(run.config || {})));
  section("Model", definitionList(Object.entries(run.model || {})));
  section("Index", definitionList(Object.entries(run.index || {})));
  if (run.metrics) {
    const headline = HEADLINE_METRICS.filter((key) => key in run.metrics);
    const all = el("details");
    all.append(el("summary", "", "all metrics"), metricsTable(run.metrics, Object.keys(run.metrics)));
    section("Retrieval quality (test queries)", metricsTable(run.metrics, headline), all);
  } else {
    section("Retrieval quality", el("p", "muted", "this run has not been evaluated (no metrics_trained.json)"));
  }
  if (run.per_label_ap) {
    const rare = new Set(run.rare_labels || []);
    section(
      "Per-label AP",
      el("p", "hint", "How well each label retrieves: queries with a low-AP label get fewer relevant hits. Rare labels are marked."),
      apTable(run.per_label_ap, rare),
    );
  }
}
