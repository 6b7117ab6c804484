// hvl zero-shot review page: the video with ground truth / prediction / smoothed ribbons, kept in sync.
"use strict";
const $ = (id) => document.getElementById(id);
const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
const S = { list: null, cur: null, span: 1 };

async function api(path) {
  const r = await fetch(path);
  const body = await r.json();
  if (!r.ok) throw new Error(typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail));
  return body;
}
const colour = (c) => PALETTE[c % PALETTE.length];
const pct = (x) => `${(100 * x).toFixed(1)}`;
function setStatus(text, kind = "") { const s = $("status"); s.textContent = text; s.className = kind; }

// Everything from the predictions files (class names, ids) is inserted as text, never as markup.
function el(tag, props = {}, children = []) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

function metricsTable(table, rows) {
  rows = rows.filter(([, m]) => m);  // no metrics without ground truth (`hvl predict` timelines)
  if (!rows.length) { table.replaceChildren(el("tr", {}, [el("td", { textContent: "no ground truth" })])); return; }
  const head = el("tr", {}, ["", "accuracy", "macro-F1", "Jaccard"].map((h) => el("th", { textContent: h })));
  table.replaceChildren(head, ...rows.map(([name, m]) => el("tr", {}, [
    el("th", { textContent: name }),
    ...[m.accuracy, m.f1_macro, m.jaccard].map((x) => el("td", { textContent: pct(x) })),
  ])));
}

function drawRibbon(ribbon, seq, d) {
  ribbon.replaceChildren();
  const step = 1 / d.fps;
  let i = 0;
  while (i < seq.length) {  // one block per run of equal classes
    let j = i;
    while (j + 1 < seq.length && seq[j + 1] === seq[i]) j++;
    const seg = document.createElement("div");
    seg.className = "seg";
    seg.style.left = `${(100 * d.t[i]) / S.span}%`;
    seg.style.width = `${(100 * (d.t[j] + step - d.t[i])) / S.span}%`;
    seg.style.background = colour(seq[i]);
    seg.title = `${d.classes[seq[i]]}: ${d.t[i].toFixed(1)}–${(d.t[j] + step).toFixed(1)} s`;
    ribbon.appendChild(seg);
    i = j + 1;
  }
}

async function show(videoId) {
  setStatus(`Loading ${videoId}…`, "loading");
  try {
    const d = (S.cur = await api(`/api/review/${encodeURIComponent(videoId)}`));
    S.span = d.t.length ? d.t[d.t.length - 1] + 1 / d.fps : 1;  // ribbons cover the scored frames
    $("ribbon-truth").parentElement.hidden = !d.truth;  // a timeline of `hvl predict`: nothing to compare with
    if (d.truth) drawRibbon($("ribbon-truth"), d.truth, d);
    drawRibbon($("ribbon-pred"), d.pred, d);
    drawRibbon($("ribbon-smoothed"), d.smoothed, d);
    $("legend").replaceChildren(...d.classes.map((c, i) => {
      const swatch = el("i");
      swatch.style.background = colour(i);
      return el("span", { className: "key" }, [swatch, c]);
    }));
    metricsTable($("video-metrics"), [["prediction", d.metrics], ["smoothed", d.smoothed_metrics]]);
    const v = $("player");
    v.src = `/api/review/${encodeURIComponent(videoId)}/video`;
    document.body.dataset.video = videoId;
    setStatus(`${videoId}: ${d.n_frames} frames at ${d.fps} fps`);
  } catch (e) { setStatus(`Error: ${e.message}`, "error"); }
}

function frameAt(t) {
  const d = S.cur;
  if (!d || !d.t.length) return -1;
  let k = Math.floor(t * d.fps + 1e-6);
  return Math.max(0, Math.min(d.t.length - 1, k));
}

function tick() {
  const v = $("player");
  if (S.cur) {
    const t = v.currentTime;
    $("playhead").style.left = `${Math.min(100, (100 * t) / S.span)}%`;
    const k = frameAt(t);
    if (k >= 0) {
      const d = S.cur, p = d.probs[k];
      const truth = d.truth ? ` · truth ${d.classes[d.truth[k]]}` : "";
      $("frame-info").textContent = `${t.toFixed(2)} s${truth} · predicted ${d.classes[d.pred[k]]} (p = ${p[d.pred[k]].toFixed(2)}) · smoothed ${d.classes[d.smoothed[k]]}`;
    }
  }
  requestAnimationFrame(tick);
}

function onRibbonClick(e) {
  const rect = e.currentTarget.getBoundingClientRect();
  const frac = Math.max(0, Math.min(1, (e.clientX - rect.left) / rect.width));
  const v = $("player");
  const t = frac * S.span;
  v.dataset.target = String(t);
  v.currentTime = Number.isFinite(v.duration) ? Math.min(t, v.duration) : t;
}

async function init() {
  $("player").addEventListener("seeked", (e) => { e.target.dataset.seekedAt = String(e.target.currentTime); });
  $("player").addEventListener("error", () => setStatus("This video cannot be played here.", "error"));
  document.querySelectorAll(".ribbon").forEach((r) => r.addEventListener("click", onRibbonClick));
  $("video-select").addEventListener("change", (e) => show(e.target.value));
  try {
    const list = (S.list = await api("/api/review"));
    $("summary").textContent = `${list.videos.length} videos · ${list.classes.length} classes · ${list.level} level · ${list.fps} fps`;
    $("smoothed-label").textContent = `smoothed (${list.smoothing.method} ${list.smoothing.window})`;
    for (const v of list.videos) $("video-select").append(new Option(v.metrics ? `${v.video_id} — acc ${pct(v.metrics.accuracy)}` : v.video_id, v.video_id));
    metricsTable($("all-metrics"), [["mean over videos", list.metrics]]);
    await show(list.videos[0].video_id);
    document.body.dataset.ready = "1";
    requestAnimationFrame(tick);
  } catch (e) { setStatus(`Error: ${e.message}`, "error"); }
}
init();
