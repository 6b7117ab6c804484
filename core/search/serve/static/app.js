// hvl search page: plain JS against the JSON API (no build step).
"use strict";
const $ = (id) => document.getElementById(id);
const state = { last: null, lastText: null, verdicts: {}, info: null, pending: null };

function fmtTime(t) { return t < 60 ? `${t.toFixed(1)}s` : `${Math.floor(t / 60)}:${(t % 60).toFixed(1).padStart(4, "0")}`; }
function setStatus(text, kind = "") { const s = $("status"); s.textContent = text; s.className = kind; }

async function api(path, opts = {}) {
  const r = await fetch(path, opts);
  const body = r.headers.get("content-type")?.includes("json") ? await r.json() : await r.text();
  if (!r.ok) throw new Error(typeof body === "object" ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)) : `${r.status} ${body}`);
  return body;
}

function options() {
  return { k: Number($("k").value) || 12, group: $("group").value || null, agg: $("agg").value };
}

async function run(label, request) {
  $("results").setAttribute("aria-busy", "true");
  $("results").innerHTML = "";
  setStatus(`Searching ${label}…`, "loading");
  $("go").disabled = true;
  try {
    const res = await request();
    state.last = res;
    await loadVerdicts();
    render(res);
    const ms = res.results.length ? "" : " — nothing matched";
    setStatus(`${res.results.length} videos for ${res.kind === "text" ? `"${res.query}"` : res.query} · ${res.method}${ms}`, res.results.length ? "" : "empty");
  } catch (e) {
    state.last = null;
    setStatus(`Error: ${e.message}`, "error");
    $("results").innerHTML = `<p class="error-box">${escapeHtml(e.message)}</p>`;
  } finally {
    $("results").removeAttribute("aria-busy");
    $("go").disabled = false;
    $("export-json").disabled = $("export-csv").disabled = !state.last;
  }
}

// yt-dlp writes upload dates as YYYYMMDD
const fmtDate = (d) => (/^\d{8}$/.test(d || "") ? `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6)}` : d);
function escapeHtml(s) { return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]); }

function searchText() {
  const query = $("q").value.trim();
  if (!query) { setStatus("Type a query first.", "error"); return; }
  state.lastText = query;
  run(`"${query}"`, () => api("/api/search", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query, ...options() }) }));
}

function searchFrame(video_id, t) {
  state.lastText = null;
  run(`like ${video_id} at ${fmtTime(t)}`, () => api("/api/search/frame", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ video_id, t, ...options() }) }));
}

function searchImage(file) {
  state.lastText = null;
  const form = new FormData();
  form.append("file", file);
  const o = options();
  for (const [k, v] of Object.entries(o)) if (v !== null) form.append(k, v);
  run(`like ${file.name}`, () => api("/api/search/image", { method: "POST", body: form }));
}

async function loadVerdicts() {
  state.verdicts = {};
  if (!state.lastText) return;
  const qs = await api("/api/queries");
  const norm = (s) => s.split(/\s+/).join(" ").toLowerCase();
  const q = qs.queries.find((q) => norm(q.text) === norm(state.lastText));
  if (q) { q.relevant.forEach((v) => (state.verdicts[v] = true)); q.not_relevant.forEach((v) => (state.verdicts[v] = false)); }
}

function render(res) {
  const grid = $("results");
  grid.innerHTML = "";
  for (const r of res.results) {
    const card = document.createElement("article");
    card.className = "card";
    card.dataset.video = r.video_id;
    const thumb = `/api/thumbnail/${encodeURIComponent(r.video_id)}?t=${r.best_time}`;
    const chips = r.moments.map((m) => `<button type="button" class="chip" data-t="${m.t}" title="frame score ${m.score.toFixed(3)}">${fmtTime(m.t)}</button>`).join("");
    card.innerHTML = `
      <div class="thumb-wrap">
        <img class="thumb" loading="lazy" alt="${escapeHtml(r.clip)} at ${fmtTime(r.best_time)}" src="${thumb}">
        <button type="button" class="more" title="more like this frame">more like this</button>
      </div>
      <div class="meta">
        <span class="rank">#${r.rank}</span> <span class="clip" title="${escapeHtml(r.clip)}">${escapeHtml(r.meta.title || r.clip)}</span>
        <div class="muted">${escapeHtml([r.group, r.meta.uploader, fmtDate(r.meta.upload_date)].filter(Boolean).join(" · ") || "—")} · score ${r.score.toFixed(3)}</div>
        <div class="chips">${chips}</div>
        <div class="verdict">
          <button type="button" class="mark yes" title="relevant to the query">✓ relevant</button>
          <button type="button" class="mark no" title="not relevant">✗ not</button>
        </div>
      </div>`;
    card.querySelector(".thumb").addEventListener("click", () => play(r, r.best_time));
    card.querySelector(".thumb").addEventListener("error", (e) => { e.target.replaceWith(Object.assign(document.createElement("div"), { className: "thumb broken", textContent: "no thumbnail" })); });
    card.querySelector(".more").addEventListener("click", () => searchFrame(r.video_id, r.best_time));
    card.querySelectorAll(".chip").forEach((c) => c.addEventListener("click", () => play(r, Number(c.dataset.t))));
    card.querySelector(".yes").addEventListener("click", () => judge(r.video_id, state.verdicts[r.video_id] === true ? null : true));
    card.querySelector(".no").addEventListener("click", () => judge(r.video_id, state.verdicts[r.video_id] === false ? null : false));
    const textOnly = !state.lastText;
    card.querySelectorAll(".mark").forEach((b) => { b.disabled = textOnly; if (textOnly) b.title = "judgements belong to a text query"; });
    grid.appendChild(card);
    paintVerdict(r.video_id);
  }
}

function paintVerdict(video_id) {
  const card = document.querySelector(`.card[data-video="${CSS.escape(video_id)}"]`);
  if (!card) return;
  const v = state.verdicts[video_id];
  card.classList.toggle("relevant", v === true);
  card.classList.toggle("irrelevant", v === false);
}

async function judge(video_id, relevant) {
  try {
    const q = await api("/api/judgements", { method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: state.lastText, type: $("qtype").value, video_id, relevant }) });
    if (relevant === null) delete state.verdicts[video_id]; else state.verdicts[video_id] = relevant;
    paintVerdict(video_id);
    $("saved").textContent = `saved: query ${q.id} — ${q.relevant.length} relevant, ${q.not_relevant.length} not`;
    $("saved").className = "ok";
  } catch (e) {
    $("saved").textContent = `not saved: ${e.message}`;
    $("saved").className = "error";
  }
}

function play(r, t) {
  const v = $("player");
  $("now-playing").textContent = `${r.clip} (${r.group || "—"}) from ${fmtTime(t)}`;
  state.pending = t;
  v.dataset.target = String(t);
  if (v.dataset.video !== r.video_id) {
    v.dataset.video = r.video_id;
    v.src = `/api/video/${encodeURIComponent(r.video_id)}`;  // seeks on loadedmetadata
  } else {
    seekTo(t);
  }
}

function seekTo(t) {
  const v = $("player");
  state.pending = null;
  v.pause();
  v.addEventListener("seeked", () => v.play().catch(() => {}), { once: true });  // plays from exactly t
  v.currentTime = Math.min(t, Number.isFinite(v.duration) ? v.duration : t);
}

async function exportAs(format) {
  if (!state.last) return;
  try {
    const r = await fetch("/api/export", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ format, response: state.last }) });
    if (!r.ok) throw new Error((await r.json()).detail);
    const a = Object.assign(document.createElement("a"), { href: URL.createObjectURL(await r.blob()), download: `hvl_results.${format}` });
    a.click();
    URL.revokeObjectURL(a.href);
  } catch (e) { setStatus(`Export failed: ${e.message}`, "error"); }
}

async function init() {
  $("player").addEventListener("loadedmetadata", () => { if (state.pending !== null) seekTo(state.pending); });
  $("player").addEventListener("seeked", (e) => { e.target.dataset.seekedAt = String(e.target.currentTime); });
  $("player").addEventListener("error", () => { $("now-playing").textContent = "This video cannot be played here."; });
  $("search-form").addEventListener("submit", (e) => { e.preventDefault(); searchText(); });
  $("upload").addEventListener("change", (e) => { if (e.target.files[0]) searchImage(e.target.files[0]); e.target.value = ""; });
  $("export-json").addEventListener("click", () => exportAs("json"));
  $("export-csv").addEventListener("click", () => exportAs("csv"));
  try {
    const info = (state.info = await api("/api/info"));
    $("summary").textContent = `${info.videos} videos · ${info.frames} frames · ${info.level} level · judgements → ${info.queries}`;
    for (const g of info.groups) if (g) $("group").append(new Option(g, g));
    $("qtype").replaceChildren(...info.query_types.map((t) => new Option(t, t)));  // the domains' kinds of query
    $("review-link").hidden = !info.review;
    $("q").maxLength = info.limits.query_chars;
    $("k").max = info.limits.k;
    document.body.dataset.ready = "1";
  } catch (e) { setStatus(`Cannot reach the index: ${e.message}`, "error"); }
}
init();
