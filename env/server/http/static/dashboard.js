// toolgym dashboard: polls /dashboard/data every second and draws everything itself (SVG, no library,
// nothing fetched from outside this server). Text from episodes goes in through textContent only.
"use strict";

const POLL_MS = 1000;
const SVG = "http://www.w3.org/2000/svg";
// A bearer token, when the server wants one, rides in the URL fragment (never sent to the server as part of the URL).
const TOKEN = new URLSearchParams(location.hash.slice(1)).get("token");
const HEADERS = TOKEN ? { Authorization: "Bearer " + TOKEN } : {};
const shown = new Map(); // episode id -> its table row (finished episodes never change: rows are added, not redrawn)

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("data-")) e.setAttribute(k, v); else e[k] = v;
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
  return e;
}
function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}
const $ = (id) => document.getElementById(id);
const fmt = (x, d = 3) => (x === null || x === undefined || Number.isNaN(x) ? "–" : Number(x).toFixed(d));
const signClass = (x) => (x > 0 ? "pos" : x < 0 ? "neg" : "zero");
function clear(node, ...kids) { node.replaceChildren(...kids); return node; }

// Bars over buckets given by their upper bounds (the last count is above the last bound).
function histogram(counts, bounds, colour) {
  const w = 150, h = 64, pad = 12, n = counts.length, bw = w / n, max = Math.max(1, ...counts);
  const s = svg("svg", { width: w, height: h + pad, viewBox: `0 0 ${w} ${h + pad}`, role: "img" });
  counts.forEach((c, i) => {
    const bh = c ? Math.max(2, (h - 10) * c / max) : 0;
    const lo = i === 0 ? "−∞" : bounds[i - 1], hi = i < bounds.length ? bounds[i] : "+∞";
    const r = svg("rect", { x: i * bw + 1, y: h - bh, width: bw - 2, height: bh, fill: colour(i, bounds), rx: 1 });
    r.append(Object.assign(svg("title"), { textContent: `(${lo}, ${hi}]: ${c}` }));
    s.append(r);
    if (c) s.append(Object.assign(svg("text", { x: i * bw + bw / 2, y: h - bh - 2, "text-anchor": "middle" }), { textContent: c }));
  });
  s.append(svg("line", { x1: 0, y1: h, x2: w, y2: h, stroke: "#c5cad6" }));
  const first = bounds[0], last = bounds[bounds.length - 1];
  s.append(Object.assign(svg("text", { x: 0, y: h + 10 }), { textContent: `≤${first}` }));
  s.append(Object.assign(svg("text", { x: w, y: h + 10, "text-anchor": "end" }), { textContent: `${last}` }));
  return s;
}
const totalColour = (i, b) => (i < b.length && b[i] <= 0 ? (b[i] < 0 ? "#d0453a" : "#8b93a6") : "#2e9e5b");
const compColour = (i, b) => `hsl(${Math.round(120 * Math.min(1, i / (b.length - 1)))}, 55%, 45%)`;

// The bucket above the last bound is empty for components (each is at most 1): no bar for it then.
const trim = (counts, bounds) => (counts.length > bounds.length && !counts[counts.length - 1] ? counts.slice(0, bounds.length) : counts);

function chartGrid(node, entries, bounds, colour) {
  if (!entries.length) return;
  clear(node, ...entries.map(([name, d]) => el("div", { class: "chart" },
    el("div", { class: "title", title: name }, name), el("div", { class: "stats dim" }, `n=${d.n} · mean ${fmt(d.mean)}`),
    histogram(trim(d.counts, bounds), bounds, colour))));
}

function heatTable(r) {
  const cells = Object.values(r.by_category_component);
  if (!cells.length) return;
  const cats = Object.keys(r.by_category), comps = Object.keys(r.by_component);
  const by = new Map(cells.map((c) => [c.category + "/" + c.component, c]));
  const t = el("table", { class: "heat" }, el("thead", {}, el("tr", {}, el("th", {}, "category"), ...comps.map((c) => el("th", {}, c)))));
  const body = el("tbody");
  for (const cat of cats) {
    const tr = el("tr", {}, el("td", {}, cat));
    for (const comp of comps) {
      const c = by.get(cat + "/" + comp);
      const td = el("td", { class: "cell", title: c ? `n=${c.n}` : "" }, c ? fmt(c.mean, 2) : "–");
      if (c) td.style.background = `hsla(${Math.round(120 * c.mean)}, 60%, 50%, 0.25)`;
      tr.append(td);
    }
    body.append(tr);
  }
  t.append(body);
  clear($("heat"), t);
}

function penaltyBars(applied) {
  const kinds = Object.entries(applied);
  if (!kinds.length) return;
  const max = Math.max(1, ...kinds.map(([, n]) => n));
  clear($("penalties"), ...kinds.map(([k, n]) => {
    const fill = el("div", { class: "fill" });
    fill.style.width = `${(100 * n) / max}%`;
    return el("div", { class: "bar" }, el("span", { class: "name" }, k), el("div", { class: "track" }, fill), el("span", { class: "num" }, n));
  }));
}

function kvTable(node, obj) {
  clear(node, ...Object.entries(obj).map(([k, v]) =>
    el("tr", {}, el("td", {}, k), el("td", {}, typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)))));
}

function chips(obj, cls, show = (v) => (typeof v === "number" ? fmt(v, 2) : v)) {
  return el("span", {}, ...Object.entries(obj || {}).map(([k, v]) =>
    el("span", { class: "chip " + (cls || ""), title: k }, `${k} ${show(v)}`)));
}

function episodeRow(ep) {
  const when = new Date(ep.finished_at * 1000).toLocaleTimeString([], { hour12: false });
  const tr = el("tr", { class: "row", "data-episode": ep.id, "data-session": ep.session_id, "data-task": ep.task_id },
    el("td", { class: "num" }, when), el("td", {}, ep.task_id), el("td", {}, ep.category), el("td", {}, ep.template),
    el("td", { class: "num" }, ep.n_steps + (ep.truncated ? " (trunc.)" : "")),
    el("td", { class: "num total " + signClass(ep.total) }, fmt(ep.total)),
    el("td", {}, chips(ep.components)), el("td", {}, chips(ep.penalty_counts, "pen", (n) => "×" + n)));
  tr.addEventListener("click", () => toggle(tr, ep));
  return tr;
}

async function toggle(tr, ep) {
  const next = tr.nextElementSibling;
  if (next && next.classList.contains("detail")) { next.remove(); tr.classList.remove("open"); return; }
  tr.classList.add("open");
  const cell = el("td", { colSpan: 8 }, el("p", { class: "empty" }, "loading…"));
  tr.after(el("tr", { class: "detail" }, cell));
  try {
    const r = await fetch(`/dashboard/episode/${encodeURIComponent(ep.id)}`, { headers: HEADERS });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    clear(cell, detail(await r.json()));
  } catch (e) {
    clear(cell, el("p", { class: "empty" }, `could not load the transcript: ${e.message}`));
  }
}

function detail(ro) {
  const rw = ro.reward || {};
  const weights = (ro.reward_config || {}).weights || {};
  const comp = el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "component"), el("th", {}, "value"), el("th", {}, "weight"))),
    el("tbody", {}, ...Object.entries(rw.components || {}).map(([k, v]) =>
      el("tr", {}, el("td", {}, k), el("td", { class: "num" }, fmt(v)), el("td", { class: "num" }, fmt(weights[k], 2))))));
  const pens = Object.entries(rw.penalty_counts || {});
  const pen = pens.length
    ? el("table", {}, el("tbody", {}, ...pens.map(([k, n]) =>
      el("tr", {}, el("td", {}, k), el("td", { class: "num" }, `×${n}`), el("td", { class: "num neg" }, fmt((rw.penalties || {})[k]))))))
    : el("p", { class: "empty" }, "none");
  const left = el("div", {},
    el("h3", {}, "total"), el("div", { class: signClass(rw.total) }, fmt(rw.total), rw.valid ? "" : " (scoring failed)"),
    el("h3", {}, "components"), comp, el("h3", {}, "penalties"), pen,
    el("h3", {}, "feedback"), el("pre", {}, rw.feedback || ""),
    el("h3", {}, "episode"), el("pre", {}, `session ${ro.session_id}\ntemplate ${ro.template}  seed ${ro.seed}\nconfig ${ro.config_hash}`));
  const turns = [el("div", { class: "turn prompt" }, el("div", { class: "who" }, "prompt"), el("pre", {}, ro.prompt || ""))];
  for (const s of ro.steps || []) {
    turns.push(el("div", { class: "turn model" }, el("div", { class: "who" }, `step ${s.index} · model · ${fmt(s.elapsed_ms, 1)} ms`), el("pre", {}, s.action)));
    if (s.observation) turns.push(el("div", { class: "turn env" }, el("div", { class: "who" }, `step ${s.index} · env · reward ${fmt(s.reward)}`), el("pre", {}, s.observation)));
  }
  return el("div", { class: "cols" }, left, el("div", {}, el("h3", {}, "transcript"), ...turns));
}

function episodes(rows) {
  const body = document.querySelector("#episodes tbody");
  const keep = new Set(rows.map((r) => r.id));
  for (const [id, tr] of shown) {
    if (!keep.has(id)) {
      const next = tr.nextElementSibling;
      if (next && next.classList.contains("detail")) next.remove();
      tr.remove();
      shown.delete(id);
    }
  }
  // rows arrive newest first: insert the new ones above the ones already shown, in order
  let anchor = body.firstChild;
  for (const ep of rows) {
    if (shown.has(ep.id)) break;
    const tr = episodeRow(ep);
    body.insertBefore(tr, anchor);
    shown.set(ep.id, tr);
  }
  $("episodes-empty").hidden = rows.length > 0;
}

function render(d) {
  const s = d.sessions, r = d.reward;
  $("server").textContent = `${d.server.name}${d.server.version ? " " + d.server.version : ""} · up ${Math.round(d.server.uptime_s)} s`;
  $("c-sessions").textContent = `${s.open} / ${s.max}`;
  $("c-sessions-bar").style.width = `${Math.min(100, (100 * s.open) / Math.max(1, s.max))}%`;
  $("c-sessions-sub").textContent = `created ${s.created} · closed ${s.closed} · expired ${s.expired}`;
  $("c-rate").textContent = fmt(d.steps.per_s, 1);
  $("c-window").textContent = `(last ${d.steps.window_s} s)`;
  $("c-steps").textContent = `${d.steps.total} steps in all`;
  const cats = Object.entries(r.by_category);
  const n = cats.reduce((a, [, c]) => a + c.n, 0), sum = cats.reduce((a, [, c]) => a + c.sum, 0);
  $("c-episodes").textContent = d.episodes.finished;
  $("c-episodes-sub").textContent = `${cats.length} categories · since ${new Date(d.episodes.since * 1000).toLocaleTimeString()}`;
  $("c-mean").textContent = n ? fmt(sum / n) : "–";
  $("c-mean").className = "value " + (n ? signClass(sum / n) : "");
  $("c-mean-sub").textContent = `over ${n} episodes`;
  const sb = d.sandbox;
  $("c-sandbox").textContent = `${sb.workers_alive ?? 0}${sb.workers !== undefined ? " / " + sb.workers : ""}`;
  $("c-sandbox-sub").textContent = `calls ${sb.calls ?? 0} · timeouts ${sb.timeouts ?? 0} · restarts ${sb.restarts ?? 0}`;
  chartGrid($("cat-charts"), cats, r.total_buckets, totalColour);
  chartGrid($("comp-charts"), Object.entries(r.by_component), r.component_buckets, compColour);
  heatTable(r);
  penaltyBars(d.penalties.applied);
  episodes(d.recent);
  kvTable($("counts"), { ...Object.fromEntries(Object.entries(s).map(([k, v]) => ["sessions " + k, v])),
    ...Object.fromEntries(Object.entries(sb).map(([k, v]) => ["sandbox " + k, v])) });
  kvTable($("config"), d.config);
}

function status(cls, text) { const e = $("status"); e.className = "status " + cls; e.textContent = text; }

async function poll() {
  try {
    const r = await fetch("/dashboard/data", { headers: HEADERS, cache: "no-store" });
    if (r.status === 401) status("bad", "token needed: open /#token=<token>");
    else if (!r.ok) status("bad", `HTTP ${r.status}`);
    else { render(await r.json()); status("ok", "live · " + new Date().toLocaleTimeString()); }
  } catch (e) {
    status("bad", "disconnected");
  }
  setTimeout(poll, POLL_MS); // after the answer, so a slow server is never asked twice at once
}

poll();
