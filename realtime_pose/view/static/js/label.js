// The labelling page: one captured frame at a time on a canvas, its keypoints dragged into
// place, the frames marked done saved by the server into DeepLabCut's CollectedData files.
// Keypoint names are drawn as canvas text and listed as textContent, never parsed as HTML.

import { el, replaceChildren, setText, showResult } from "./dom.js";
import { PALETTE } from "./imageview.js";

const API = "/label/api";
const HIT_PX = 10; // how near (screen px) a press must be to grab a keypoint
const ZOOM_STEP = 1.25;
const $ = (id) => document.getElementById(id);
const canvas = $("image");
const stage = $("stage");
const ctx = canvas.getContext("2d");

// image -> {image, points: [[x, y] | null], likelihood, source, done, saved, history, lastSeen}
const records = new Map();
const page = {
  folder: "",
  keypoints: [],
  frames: [], // [{image, frame_index, state, reasons}]
  scorer: null,
  index: -1,
  wanted: -1, // the frame asked for last (it may still be loading)
  shown: null, // the image drawn, once it and its labels are loaded
  selected: null, // keypoint index
  drag: null,
  zoom: null, // null: fit
  scale: 1, // CSS px per image px
  image: null,
  ticket: 0,
  saves: 0,
  lastSave: null,
  // a plain copy of what the page holds, for the tests and the benchmark's driver
  snapshot() {
    const rec = current();
    return {
      folder: page.folder,
      keypoints: page.keypoints,
      shown: page.shown,
      index: page.index,
      selected: page.selected,
      scale: page.scale,
      imageSize: page.image ? [page.image.naturalWidth, page.image.naturalHeight] : null,
      points: rec ? rec.points : null,
      done: rec ? rec.done : false,
      history: rec ? rec.history.length : 0,
      frames: page.frames.map((f) => {
        const r = records.get(f.image);
        return { image: f.image, state: f.state, done: !!(r && r.done), points: r ? r.points : null };
      }),
      saves: page.saves,
      lastSave: page.lastSave,
      asking: $("confirm-overwrite").open ? $("confirm-text").textContent : null,
    };
  },
};
window.labelPage = page;

function current() {
  const frame = page.frames[page.index];
  return frame && page.shown === frame.image ? records.get(frame.image) : null;
}

const copy = (points) => points.map((p) => (p ? [...p] : null));

async function getJson(url) {
  const response = await fetch(url);
  const reply = await response.json().catch(() => ({ ok: false, error: `${response.status} ${response.statusText}` }));
  if (!response.ok || !reply.ok) throw new Error(reply.error || `${response.status} ${response.statusText}`);
  return reply;
}

// -- frames ---------------------------------------------------------------------------------
async function loadRecord(image) {
  if (!records.has(image)) {
    const reply = await getJson(`${API}/labels/${encodeURIComponent(image)}`);
    if (!records.has(image)) {
      records.set(image, {
        image,
        points: copy(reply.points),
        likelihood: reply.likelihood,
        source: reply.source,
        done: false,
        saved: reply.state === "labelled",
        history: [],
        lastSeen: copy(reply.points),
      });
    }
  }
  return records.get(image);
}

async function loadImage(image) {
  const img = new Image();
  img.src = `${API}/frame/${encodeURIComponent(image)}`;
  await img.decode();
  return img;
}

async function show(index) {
  if (index < 0 || index >= page.frames.length) return;
  const ticket = ++page.ticket;
  page.wanted = index;
  const image = page.frames[index].image;
  try {
    const [, img] = await Promise.all([loadRecord(image), loadImage(image)]);
    if (ticket !== page.ticket) return; // another frame was asked for meanwhile
    page.index = index;
    page.image = img;
    page.drag = null;
    page.shown = image;
    layout();
    render();
  } catch (err) {
    showResult($("save-result"), { ok: false, error: `${image}: ${err.message}` });
  }
}

const step = (delta) => show(Math.min(page.frames.length - 1, Math.max(0, page.wanted + delta)));

// -- drawing --------------------------------------------------------------------------------
function layout() {
  const img = page.image;
  if (!img) return;
  const w = img.naturalWidth;
  const h = img.naturalHeight;
  const fit = Math.min((stage.clientWidth - 2) / w, (window.innerHeight * 0.75 - 4) / h);
  page.scale = page.zoom ?? Math.max(0.05, fit);
  const dpr = window.devicePixelRatio || 1;
  canvas.style.width = `${Math.round(w * page.scale)}px`;
  canvas.style.height = `${Math.round(h * page.scale)}px`;
  const cw = Math.round(w * page.scale * dpr);
  const ch = Math.round(h * page.scale * dpr);
  if (canvas.width !== cw || canvas.height !== ch) {
    canvas.width = cw;
    canvas.height = ch;
  }
  draw();
}

function draw() {
  const img = page.image;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!img) return;
  const k = canvas.width / img.naturalWidth;
  ctx.setTransform(k, 0, 0, k, 0, 0);
  ctx.imageSmoothingEnabled = page.scale < 3; // zoomed in: see the pixels
  ctx.drawImage(img, 0, 0, img.naturalWidth, img.naturalHeight);
  const rec = current();
  if (!rec) return;
  const px = 1 / page.scale; // one screen pixel in image pixels
  ctx.font = `${12 * px}px system-ui, sans-serif`;
  ctx.lineJoin = "round";
  rec.points.forEach((p, k) => {
    if (!p) return;
    const colour = PALETTE[k % PALETTE.length];
    ctx.beginPath();
    ctx.arc(p[0], p[1], 5 * px, 0, 2 * Math.PI);
    ctx.fillStyle = colour;
    ctx.fill();
    ctx.lineWidth = 1.5 * px;
    ctx.strokeStyle = "#000";
    ctx.stroke();
    if (k === page.selected) {
      ctx.beginPath();
      ctx.arc(p[0], p[1], 9 * px, 0, 2 * Math.PI);
      ctx.lineWidth = 2 * px;
      ctx.strokeStyle = "#fff";
      ctx.stroke();
    }
    ctx.lineWidth = 3 * px;
    ctx.strokeStyle = "rgba(0, 0, 0, 0.8)";
    ctx.strokeText(page.keypoints[k], p[0] + 8 * px, p[1] - 8 * px);
    ctx.fillStyle = colour;
    ctx.fillText(page.keypoints[k], p[0] + 8 * px, p[1] - 8 * px);
  });
}

function render() {
  draw();
  renderHeader();
  renderKeypoints();
  renderFrames();
}

function renderHeader() {
  const rec = current();
  setText("position", page.frames.length ? `${page.index + 1}/${page.frames.length}` : "–");
  setText("image-name", page.shown || "");
  const state = !rec ? "" : rec.done ? "done" : rec.saved ? "labelled" : rec.source === "machine" ? "machine guess" : "no guess";
  const badge = $("frame-state");
  badge.textContent = state;
  badge.className = `badge ${rec && rec.done ? "done" : rec && rec.saved ? "labelled" : ""}`;
  $("done").setAttribute("aria-pressed", String(!!(rec && rec.done)));
  $("undo").disabled = !(rec && rec.history.length);
  const all = [...records.values()];
  setText("done-count", all.filter((r) => r.done).length);
  setText("saved-count", page.frames.filter((f) => f.state === "labelled").length);
  setText("frame-count", page.frames.length);
}

function renderKeypoints() {
  const rec = current();
  replaceChildren($("keypoints"), page.keypoints.map((name, k) => {
    const p = rec ? rec.points[k] : null;
    const guess = rec && rec.source === "machine" && !rec.history.length && rec.likelihood;
    const likelihood = guess && rec.likelihood[k] !== null ? ` p=${rec.likelihood[k].toFixed(2)}` : "";
    const swatch = el("span", { cls: "swatch" });
    swatch.style.background = PALETTE[k % PALETTE.length];
    const li = el("li", {
      cls: [k === page.selected ? "selected" : "", p ? "" : "hidden"].join(" "),
      data: { keypoint: name },
    }, [
      swatch,
      el("span", { cls: "name", text: name }),
      el("span", { cls: "where", text: p ? `${p[0].toFixed(1)}, ${p[1].toFixed(1)}${likelihood}` : "not visible" }),
    ]);
    li.addEventListener("click", () => select(k));
    return li;
  }));
}

function renderFrames() {
  const list = $("frames");
  replaceChildren(list, page.frames.map((f, i) => {
    const rec = records.get(f.image);
    const done = !!(rec && rec.done);
    const mark = done ? " ✓ done" : f.state === "labelled" ? " saved" : "";
    const li = el("li", {
      cls: [i === page.index ? "current" : "", done ? "done" : f.state === "labelled" ? "saved" : ""].join(" "),
      data: { image: f.image },
    }, [el("span", { text: `${f.image}${mark}` })]);
    if (f.reasons && f.reasons.length) li.append(el("div", { cls: "reasons", text: f.reasons.join("; ") }));
    li.addEventListener("click", () => show(i));
    return li;
  }));
  const here = list.children[page.index];
  if (here) here.scrollIntoView({ block: "nearest" });
}

function select(k) {
  page.selected = k;
  draw();
  renderKeypoints();
}

// -- editing --------------------------------------------------------------------------------
function change(rec, edit) {
  rec.history.push(copy(rec.points));
  edit(rec.points);
  rec.done = true; // a frame the user edited is labelled
  render();
}

function undo() {
  const rec = current();
  if (!rec || !rec.history.length) return;
  rec.points = rec.history.pop();
  render();
}

function toggleVisible(k) {
  const rec = current();
  if (!rec) return;
  const img = page.image;
  change(rec, (points) => {
    if (points[k]) {
      rec.lastSeen[k] = [...points[k]];
      points[k] = null;
    } else {
      points[k] = rec.lastSeen[k] ? [...rec.lastSeen[k]] : [img.naturalWidth / 2, img.naturalHeight / 2];
    }
  });
  select(k);
}

function clamp([x, y]) {
  const img = page.image;
  return [Math.min(img.naturalWidth, Math.max(0, x)), Math.min(img.naturalHeight, Math.max(0, y))];
}

// image pixels per CSS pixel, from the canvas as laid out (not the rounded zoom)
function perCssPx() {
  const r = canvas.getBoundingClientRect();
  return [page.image.naturalWidth / r.width, page.image.naturalHeight / r.height, r];
}

function at(event) {
  const [kx, ky, r] = perCssPx();
  return [(event.clientX - r.left) * kx, (event.clientY - r.top) * ky];
}

function hit(x, y) {
  const rec = current();
  if (!rec) return null;
  const reach = HIT_PX / page.scale;
  const distance = (k) => (rec.points[k] ? Math.hypot(rec.points[k][0] - x, rec.points[k][1] - y) : Infinity);
  if (page.selected !== null && distance(page.selected) <= reach) return page.selected;
  let best = null;
  rec.points.forEach((_, k) => {
    if (distance(k) <= reach && (best === null || distance(k) < distance(best))) best = k;
  });
  return best;
}

canvas.addEventListener("pointerdown", (event) => {
  const rec = current();
  if (!rec || event.button !== 0) return;
  const [x, y] = at(event);
  const k = hit(x, y);
  if (k !== null) {
    page.drag = { k, x0: event.clientX, y0: event.clientY, start: [...rec.points[k]], before: copy(rec.points), moved: false };
    canvas.setPointerCapture(event.pointerId);
    select(k);
  } else if (page.selected !== null && !rec.points[page.selected]) {
    const k = page.selected;
    change(rec, (points) => { points[k] = clamp([x, y]); });
  }
});

// The point moves with the pointer from where it was grabbed: grabbing it off-centre does not
// make it jump.
function dragTo(event) {
  const d = page.drag;
  const rec = current();
  if (!d || !rec) return;
  const [kx, ky] = perCssPx();
  rec.points[d.k] = clamp([d.start[0] + (event.clientX - d.x0) * kx, d.start[1] + (event.clientY - d.y0) * ky]);
  d.moved = d.moved || event.clientX !== d.x0 || event.clientY !== d.y0;
  draw();
}

canvas.addEventListener("pointermove", dragTo);

function endDrag(event) {
  const d = page.drag;
  const rec = current();
  if (!d || !rec) return;
  dragTo(event);
  page.drag = null;
  if (d.moved) {
    rec.history.push(d.before);
    rec.done = true;
  }
  render();
}

canvas.addEventListener("pointerup", endDrag);
canvas.addEventListener("pointercancel", endDrag);
canvas.addEventListener("contextmenu", (event) => {
  event.preventDefault();
  const k = hit(...at(event));
  if (k !== null) toggleVisible(k);
});

// -- zoom -----------------------------------------------------------------------------------
// anchor: an event whose image point stays under the pointer
function setZoom(zoom, anchor) {
  if (!page.image) return;
  const before = anchor ? at(anchor) : null;
  page.zoom = zoom === null ? null : Math.min(40, Math.max(0.05, zoom));
  layout();
  if (before) {
    const [kx, ky, r] = perCssPx();
    stage.scrollLeft += r.left + before[0] / kx - anchor.clientX;
    stage.scrollTop += r.top + before[1] / ky - anchor.clientY;
  }
}

const zoomBy = (factor, anchor) => setZoom(page.scale * factor, anchor);

stage.addEventListener("wheel", (event) => {
  if (!page.image) return;
  event.preventDefault();
  zoomBy(event.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP, event);
}, { passive: false });
new ResizeObserver(() => layout()).observe(stage);

// -- keys and buttons -----------------------------------------------------------------------
function markDoneAndNext() {
  const rec = current();
  if (!rec) return;
  rec.done = true;
  render();
  step(1);
}

document.addEventListener("keydown", (event) => {
  if ($("confirm-overwrite").open) return;
  if (event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement) return;
  if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
    event.preventDefault();
    undo();
    return;
  }
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const actions = {
    n: () => step(1),
    ArrowRight: () => step(1),
    p: () => step(-1),
    ArrowLeft: () => step(-1),
    Enter: markDoneAndNext,
    "+": () => zoomBy(ZOOM_STEP),
    "=": () => zoomBy(ZOOM_STEP),
    "-": () => zoomBy(1 / ZOOM_STEP),
    0: () => setZoom(null),
    v: () => page.selected !== null && toggleVisible(page.selected),
  };
  const action = actions[event.key];
  if (!action) return;
  event.preventDefault();
  action();
});

const buttons = {
  prev: () => step(-1),
  next: () => step(1),
  done: () => {
    const rec = current();
    if (!rec) return;
    rec.done = !rec.done;
    render();
  },
  undo,
  fit: () => setZoom(null),
  "zoom-in": () => zoomBy(ZOOM_STEP),
  "zoom-out": () => zoomBy(1 / ZOOM_STEP),
  save: () => save(false),
};
for (const [id, action] of Object.entries(buttons)) {
  $(id).addEventListener("click", (event) => {
    if (event.detail) $(id).blur(); // clicked: Enter and the arrows go back to the frames
    action();
  });
}

// -- saving ---------------------------------------------------------------------------------
async function save(overwrite) {
  const out = $("save-result");
  const labels = {};
  for (const rec of records.values()) if (rec.done) labels[rec.image] = rec.points;
  if (!Object.keys(labels).length) {
    showResult(out, { ok: false, error: "no frame is marked done: edit a frame, or press Enter to accept it" });
    return;
  }
  const body = { labels, overwrite };
  if (!page.scorer) {
    const scorer = $("scorer").value.trim();
    if (!scorer) {
      showResult(out, { ok: false, error: "enter your name (the scorer) first" });
      $("scorer").focus();
      return;
    }
    body.scorer = scorer;
  }
  $("save").disabled = true;
  let status = 0;
  let reply;
  try {
    const response = await fetch(`${API}/labels`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    status = response.status;
    reply = await response.json().catch(() => ({ ok: false, error: `${response.status} ${response.statusText}` }));
  } catch (err) {
    reply = { ok: false, error: `the server did not answer: ${err.message}` };
  } finally {
    $("save").disabled = false;
  }
  if (status === 409 && !overwrite) {
    if (await askReplace(reply.error)) return save(true);
    reply = { ok: false, error: `not saved: ${reply.error}` };
  }
  page.lastSave = { status, reply };
  showResult(out, reply, (r) => `saved ${r.saved.length} frame(s) to ${r.files.join(" and ")}`);
  if (reply.ok) {
    for (const image of reply.saved) {
      const rec = records.get(image);
      if (rec) rec.saved = true;
      const frame = page.frames.find((f) => f.image === image);
      if (frame) frame.state = "labelled";
    }
    if (body.scorer) setScorer(body.scorer);
    render();
  }
  page.saves += 1;
}

// Asked in the page rather than with window.confirm: styled like the page, and a test driver
// answers it with a click like a person.
function askReplace(text) {
  const dialog = $("confirm-overwrite");
  setText("confirm-text", text);
  dialog.showModal();
  return new Promise((resolve) => {
    const answer = (replace) => {
      if (dialog.open) dialog.close();
      resolve(replace);
    };
    $("confirm-replace").onclick = () => answer(true);
    $("confirm-cancel").onclick = () => answer(false);
    dialog.oncancel = () => answer(false); // Escape
  });
}

function setScorer(scorer) {
  page.scorer = scorer;
  setText("scorer-name", scorer || "(not set: enter your name to save)");
  $("scorer-field").hidden = !!scorer;
}

async function start() {
  const reply = await getJson(`${API}/frames`);
  page.folder = reply.folder;
  page.keypoints = reply.keypoints;
  page.frames = reply.frames;
  setText("folder", reply.folder);
  setScorer(reply.scorer);
  if (!page.frames.length) throw new Error("this folder has no frames");
  await show(0);
}

start().catch((err) => showResult($("save-result"), { ok: false, error: err.message }));
