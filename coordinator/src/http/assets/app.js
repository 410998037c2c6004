// concur dashboard: the cluster and jobs from a server-sent event stream, and a job's timeline
// drawn as SVG (one lane group per worker process, one lane per slot; a shard's items on its
// threads or tasks when clicked). No framework, no build step. The server embeds the data of
// the first render in the page, so it draws before the page has loaded (and tools that read
// the page once loaded, such as a headless browser, see it whole).
"use strict";

const $ = (sel) => document.querySelector(sel);
const SVG = "http://www.w3.org/2000/svg";
let snapshot = null;
let view = { job: null, from: null, to: null, shard: null, timer: null };

function fmtS(s) {
  if (s === null || s === undefined || !isFinite(s)) return "–";
  if (s < 1) return (s * 1000).toFixed(0) + " ms";
  if (s < 120) return s.toFixed(s < 10 ? 2 : 1) + " s";
  return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
}
function fmtN(n) { return Number(n).toLocaleString("en"); }
// A job's concurrency: 0 stands for auto (each worker tunes its in-flight limit).
function conc(n) { return n === 0 ? "auto" : "×" + n; }
function esc(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function progressBar(p) {
  return `<span class="progress"><span style="width:${(100 * p).toFixed(1)}%"></span></span> ${(100 * p).toFixed(1)}%`;
}

function renderOverview() {
  if (!snapshot) return;
  const c = snapshot.cluster;
  $("#cluster-summary").textContent =
    `${c.workers.length} workers on ${c.hosts} hosts, ${c.running} of ${c.slots} slots busy` +
    (c.refusing ? ` — read-only: ${c.refusing}` : "");
  $("#workers tbody").innerHTML = c.workers.map((w) =>
    `<tr class="worker"><td>${w.worker_id}</td><td>${esc(w.host)}:${w.pid}</td><td>${w.cores}</td><td>${w.slots}</td>` +
    `<td>${w.running}</td><td class="state-${w.state}">${w.state}</td><td>${fmtN(w.shards_done)}</td><td>${fmtS(w.last_heartbeat_s)} ago</td></tr>`
  ).join("") || `<tr><td colspan="8" class="muted">no workers attached</td></tr>`;
  $("#jobs tbody").innerHTML = snapshot.jobs.map((j) =>
    `<tr class="clickable job" data-job="${j.job_id}"><td>${j.job_id}${j.label ? " " + esc(j.label) : ""}</td>` +
    `<td class="state-${j.state}">${j.state}</td><td>${esc(j.workload)}</td><td>${esc(j.strategy)} ${conc(j.concurrency)}</td>` +
    `<td class="job-progress">${progressBar(j.progress)}</td>` +
    `<td>${fmtN(j.items.ok)} / ${fmtN(j.items.failed)} / ${fmtN(j.items.total)}</td>` +
    `<td>${fmtN(Math.round(j.items_per_s))}/s</td><td>${fmtS(j.eta_s)}</td><td>${fmtS(j.wall_s)}</td></tr>`
  ).join("") || `<tr><td colspan="9" class="muted">no jobs yet</td></tr>`;
  for (const row of document.querySelectorAll("tr.job")) {
    row.onclick = () => { location.href = "/jobs/" + row.dataset.job; };
  }
}

function connect() {
  const events = new EventSource("/api/events");
  events.addEventListener("snapshot", (e) => {
    snapshot = JSON.parse(e.data);
    $("#status").textContent = "live · " + new Date().toLocaleTimeString();
    renderOverview();
  });
  events.onerror = () => { $("#status").textContent = "disconnected; retrying…"; };
}

async function getJson(path) {
  const response = await fetch(path);
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

// Lays out processes and lanes; returns the SVG.
function drawTimeline(t, laneName, onBar, onSelect) {
  const width = Math.max(600, $("#timeline").clientWidth || 1000);
  const left = 150, right = 20, top = 24, laneH = 16, gap = 10;
  const span = Math.max(t.to_s - t.from_s, 1e-6);
  const x = (s) => left + ((s - t.from_s) / span) * (width - left - right);
  let lanes = 0;
  for (const p of t.processes) lanes += Math.max(p.lanes.length, 1);
  const height = top + lanes * laneH + t.processes.length * (gap + 16) + 10;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("id", "timeline-svg");
  const add = (name, attrs, text) => {
    const el = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    svg.appendChild(el);
    return el;
  };
  for (let i = 0; i <= 8; i++) {
    const s = t.from_s + (span * i) / 8;
    add("line", { x1: x(s), x2: x(s), y1: top - 6, y2: height, class: "grid" });
    add("text", { x: x(s) + 2, y: 12, class: "axis" }, fmtS(s));
  }
  let y = top;
  for (const p of t.processes) {
    add("text", { x: 4, y: y + 12, class: "group-label" }, `${p.host}:${p.pid}`);
    y += 16;
    for (const lane of p.lanes) {
      add("text", { x: 14, y: y + 12, class: "lane-label" }, `${laneName} ${lane.lane}`);
      for (const b of lane.bars) {
        const x0 = x(Math.max(b.start_s, t.from_s));
        const w = Math.max(1, x(Math.min(b.end_s, t.to_s)) - x0);
        const rect = add("rect", {
          x: x0, y: y + 2, width: w, height: laneH - 4, rx: 2,
          class: `bar ${b.state}` + (b.attempt > 1 ? " rerun" : ""),
          "data-id": b.id,
        });
        const title = document.createElementNS(SVG, "title");
        title.textContent = (b.count > 1 ? `${b.count} merged, from #${b.id}` : `#${b.id}`) +
          ` · ${b.state} · attempt ${b.attempt} · ${fmtS(b.start_s)} → ${fmtS(b.end_s)}` +
          ` (±${fmtS(b.error_s)}) · ${fmtN(b.items)} items` +
          (b.concurrency ? ` · concurrency ${b.concurrency}` : "") +
          (b.status ? ` · HTTP ${b.status}` : "") + (b.bytes ? ` · ${fmtN(b.bytes)} B` : "") +
          (b.error ? ` · ${b.error}` : "");
        rect.appendChild(title);
        if (onBar) rect.onclick = (e) => { e.stopPropagation(); onBar(b); };
      }
      y += laneH;
    }
    y += gap;
  }
  if (onSelect) {
    let start = null, sel = null;
    const toS = (px) => t.from_s + ((px - left) / (width - left - right)) * span;
    svg.onmousedown = (e) => {
      if (e.target.classList.contains("bar")) return;
      start = e.offsetX;
      sel = add("rect", { x: start, y: top, width: 0, height: height - top, class: "selection" });
    };
    svg.onmousemove = (e) => {
      if (sel) { sel.setAttribute("x", Math.min(start, e.offsetX)); sel.setAttribute("width", Math.abs(e.offsetX - start)); }
    };
    svg.onmouseup = (e) => {
      if (sel && Math.abs(e.offsetX - start) > 4) onSelect(toS(Math.min(start, e.offsetX)), toS(Math.max(start, e.offsetX)));
      if (sel) sel.remove();
      start = null; sel = null;
    };
  }
  return svg;
}

async function showShard(jobId, shardId, embedded) {
  view.shard = shardId;
  $("#shard-title").textContent = `Shard ${shardId}: its items on their threads or tasks`;
  try {
    const t = embedded || await getJson(`/api/jobs/${jobId}/shards/${shardId}`);
    const box = $("#shard");
    box.replaceChildren(drawTimeline(t, "thread/task", null, null));
    if (t.bucket_s) box.appendChild(Object.assign(document.createElement("p"), { className: "muted", textContent: `${fmtN(t.bars)} bars, items merged per ${fmtS(t.bucket_s)}` }));
  } catch (err) {
    $("#shard").textContent = err.message;
  }
}

async function refreshJob() {
  const id = view.job;
  if (id === null) return;
  let q = [];
  if (view.from !== null) q.push("from=" + view.from);
  if (view.to !== null) q.push("to=" + view.to);
  let t;
  try {
    t = await getJson(`/api/jobs/${id}/timeline` + (q.length ? "?" + q.join("&") : ""));
  } catch (err) {
    $("#job-summary").textContent = err.message;
    return;
  }
  if (view.job !== id) return;
  renderJob(t);
}

function renderJob(t) {
  const id = view.job;
  const j = t.job;
  $("#job-title").textContent = `Job ${j.job_id}${j.label ? " — " + j.label : ""}`;
  $("#job-summary").innerHTML =
    `<span class="state-${j.state}">${j.state}</span> · ${esc(j.workload)} · ${esc(j.strategy)} ${conc(j.concurrency)} · ` +
    `<span class="job-progress">${progressBar(j.progress)}</span> · ${fmtN(j.items.ok)} ok, ${fmtN(j.items.failed)} failed of ${fmtN(j.items.total)} · ` +
    `${fmtN(Math.round(j.items_per_s))} items/s · ETA ${fmtS(j.eta_s)} · wall ${fmtS(j.wall_s)} · ` +
    `${j.shards_done}/${j.shards_total} shards, ${j.shards_running} running`;
  $("#timeline").replaceChildren(drawTimeline(t, "slot",
    (b) => showShard(id, b.id),
    (from, to) => { view.from = from; view.to = to; refreshJob(); }));
  $("#timeline-note").textContent =
    `${t.processes.length} ${t.processes.length === 1 ? "process" : "processes"}, ${fmtN(t.bars)} bars` +
    (t.bucket_s ? `; shards merged per lane and ${fmtS(t.bucket_s)} bucket — drag to zoom in` : "") +
    `. Bars are placed on the coordinator's clock from its own lease and result timestamps; hover for the placement error.`;
  clearTimeout(view.timer);
  if (!["succeeded", "failed", "cancelled"].includes(j.state)) view.timer = setTimeout(refreshJob, 1000);
}

function route(initial) {
  const m = location.pathname.match(/^\/jobs\/(\d+)/);
  if (initial && initial.error) {
    $("#overview").hidden = true;
    $("#job").hidden = false;
    $("#job-title").textContent = initial.error;
    return;
  }
  if (m) {
    view = { job: Number(m[1]), from: null, to: null, shard: null, timer: null };
    $("#overview").hidden = true;
    $("#job").hidden = false;
    if (initial && initial.timeline) renderJob(initial.timeline); else refreshJob();
    const shard = new URLSearchParams(location.search).get("shard");
    if (shard !== null) showShard(view.job, Number(shard), initial && initial.shard);
  } else {
    $("#overview").hidden = false;
    $("#job").hidden = true;
  }
  if (initial && initial.snapshot) { snapshot = initial.snapshot; renderOverview(); }
}

$("#zoom-reset").onclick = () => { view.from = null; view.to = null; refreshJob(); };
$("#zoom-out").onclick = () => {
  if (view.from === null) return;
  const w = view.to - view.from;
  view.from = Math.max(0, view.from - w / 2);
  view.to = view.to + w / 2;
  refreshJob();
};
const embedded = document.getElementById("initial");
route(embedded ? JSON.parse(embedded.textContent) : null);
connect();
