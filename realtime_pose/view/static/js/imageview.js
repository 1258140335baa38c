// The live image: the newest preview, its pose (measured, predicted, below the cut-off), the
// skeleton and every zone, with zoom/fit and zone editing by mouse.

import { contains, drawn, handles, moved, resized, rounded, shapeOf } from "./geometry.js";

export const PALETTE = [
  "#ff3b30", "#34c759", "#0a84ff", "#ffcc00", "#ff2dd4", "#00e5ff", "#ff9500", "#b4ff00",
  "#af52de", "#ffffff",
];
const ZONE_COLOURS = ["#ffd60a", "#64d2ff", "#ff9f0a", "#bf5af2", "#30d158", "#ff6482"];
const HANDLE_PX = 7;

export class ImageView {
  constructor(canvas, stage, { onDrawn, onZoneEdit }) {
    this.canvas = canvas;
    this.stage = stage;
    this.ctx = canvas.getContext("2d");
    this.onDrawn = onDrawn;
    this.onZoneEdit = onZoneEdit;
    this.meta = null;
    this.zones = [];
    this.enabled = {};
    this.selected = null; // index into zones
    this.edit = null; // {index, shape, mode, handle, x0, y0, start}
    this.tool = null; // "rect" | "circle" while drawing a new shape
    this.frame = null;
    this.bitmap = null;
    this.paused = false;
    this.cutoff = 0.5;
    this.zoom = null; // null: fit
    this.scale = 1; // CSS px per frame px
    this.frameW = 0;
    this.frameH = 0;
    this.decoding = false;
    this.queued = null;
    canvas.addEventListener("pointerdown", (e) => this.down(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    canvas.addEventListener("pointerup", (e) => this.up(e));
    new ResizeObserver(() => this.layout()).observe(stage);
  }

  setMeta(meta) {
    this.meta = meta;
    const [w, h] = meta.frame_size || [640, 480];
    this.resize(w, h);
  }

  setZones(zones, enabled) {
    this.zones = zones;
    this.enabled = enabled || {};
    if (this.selected !== null && this.selected >= zones.length) this.selected = null;
    if (!this.edit) this.draw();
  }

  zoneColour(index) {
    return ZONE_COLOURS[index % ZONE_COLOURS.length];
  }

  resize(w, h) {
    if (this.frameW !== w || this.frameH !== h) {
      this.frameW = w;
      this.frameH = h;
      this.layout();
    }
  }

  setZoom(zoom) {
    this.zoom = zoom;
    this.layout();
  }

  // The canvas has as many pixels as it covers on screen (crisp overlays at any zoom); the
  // drawing is in frame pixels through the context's transform.
  layout() {
    const w = this.frameW || 640;
    const h = this.frameH || 480;
    const fit = Math.min((this.stage.clientWidth - 2) / w, (window.innerHeight * 0.75) / h);
    this.scale = this.zoom ?? Math.max(0.1, fit);
    const dpr = window.devicePixelRatio || 1;
    const cw = Math.round(w * this.scale * dpr);
    const ch = Math.round(h * this.scale * dpr);
    this.canvas.style.width = `${Math.round(w * this.scale)}px`;
    this.canvas.style.height = `${Math.round(h * this.scale)}px`;
    if (this.canvas.width !== cw || this.canvas.height !== ch) {
      this.canvas.width = cw;
      this.canvas.height = ch;
    }
    this.draw();
  }

  // A frame from the server: decode off the main thread, draw at the next animation frame.
  async show(frame) {
    if (this.paused) {
      this.onDrawn(frame.seq, false);
      return;
    }
    if (this.decoding) {
      if (this.queued) this.onDrawn(this.queued.seq, false);
      this.queued = frame;
      return;
    }
    this.decoding = true;
    try {
      const bitmap = await createImageBitmap(frame.jpeg);
      await new Promise((resolve) => requestAnimationFrame(resolve));
      if (this.bitmap) this.bitmap.close();
      this.bitmap = bitmap;
      this.frame = frame;
      this.resize(frame.width, frame.height);
      this.draw();
      this.onDrawn(frame.seq, true);
    } finally {
      this.decoding = false;
    }
    if (this.queued) {
      const next = this.queued;
      this.queued = null;
      this.show(next);
    }
  }

  draw() {
    const ctx = this.ctx;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    if (!this.frameW) return;
    const k = this.canvas.width / this.frameW;
    ctx.setTransform(k, 0, 0, k, 0, 0);
    if (this.bitmap) ctx.drawImage(this.bitmap, 0, 0, this.frameW, this.frameH);
    const px = 1 / this.scale; // one screen pixel in frame pixels
    this.drawZones(px);
    if (this.frame && this.meta) this.drawPose(this.frame, px);
  }

  drawZones(px) {
    const ctx = this.ctx;
    this.zones.forEach((zone, i) => {
      const shape = this.edit && this.edit.index === i ? this.edit.shape : shapeOf(zone);
      const colour = this.zoneColour(i);
      const on = this.enabled[zone.rule] !== false;
      ctx.save();
      ctx.strokeStyle = colour;
      ctx.fillStyle = colour + "22";
      ctx.lineWidth = (i === this.selected ? 3 : 2) * px;
      if (!on || (this.edit && this.edit.index === i)) ctx.setLineDash([6 * px, 4 * px]);
      tracePath(ctx, shape);
      ctx.fill();
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = colour;
      ctx.font = `${12 * px}px system-ui, sans-serif`;
      const [lx, ly] = labelAt(shape);
      ctx.fillText(`${zone.rule} (${zone.keypoint}${zone.inside ? "" : ", outside"})`, lx, ly - 4 * px);
      if (i === this.selected) {
        for (const h of handles(shape)) {
          ctx.fillRect(h.x - (HANDLE_PX / 2) * px, h.y - (HANDLE_PX / 2) * px, HANDLE_PX * px, HANDLE_PX * px);
        }
      }
      ctx.restore();
    });
  }

  drawPose(frame, px) {
    const ctx = this.ctx;
    const names = this.meta.keypoints;
    const index = new Map(names.map((n, i) => [n, i]));
    const cut = this.cutoff;
    for (let a = 0; a < frame.keypoints.length; a++) {
      const kp = frame.keypoints[a];
      const ok = (p) => p && p[0] !== null && p[1] !== null && p[2] !== null && p[2] >= cut;
      ctx.lineWidth = 2 * px;
      ctx.strokeStyle = "rgba(255,255,255,0.7)";
      for (const [na, nb] of this.meta.skeleton || []) {
        const p = kp[index.get(na)];
        const q = kp[index.get(nb)];
        if (ok(p) && ok(q)) {
          ctx.beginPath();
          ctx.moveTo(p[0], p[1]);
          ctx.lineTo(q[0], q[1]);
          ctx.stroke();
        }
      }
      const predicted = frame.predicted && frame.predicted.keypoints[a];
      // every ring first, then every dot: a ring never covers a measured keypoint
      (predicted || []).forEach((q, k) => {
        if (!q || q[0] === null || q[1] === null) return;
        ctx.strokeStyle = PALETTE[k % PALETTE.length];
        ctx.lineWidth = 1.5 * px;
        ctx.beginPath();
        ctx.arc(q[0], q[1], 7 * px, 0, 2 * Math.PI);
        ctx.stroke();
      });
      kp.forEach((p, k) => {
        if (!p || p[0] === null || p[1] === null) return;
        if (ok(p)) {
          ctx.fillStyle = PALETTE[k % PALETTE.length];
          ctx.beginPath();
          ctx.arc(p[0], p[1], 4 * px, 0, 2 * Math.PI);
          ctx.fill();
        } else {
          ctx.strokeStyle = "#9a9a9a";
          ctx.lineWidth = 1.5 * px;
          const s = 4 * px;
          ctx.beginPath();
          ctx.moveTo(p[0] - s, p[1] - s);
          ctx.lineTo(p[0] + s, p[1] + s);
          ctx.moveTo(p[0] + s, p[1] - s);
          ctx.lineTo(p[0] - s, p[1] + s);
          ctx.stroke();
        }
      });
    }
  }

  // -- zone editing ---------------------------------------------------------------------
  at(event) {
    const rect = this.canvas.getBoundingClientRect();
    return [
      ((event.clientX - rect.left) / rect.width) * this.frameW,
      ((event.clientY - rect.top) / rect.height) * this.frameH,
    ];
  }

  select(index) {
    this.selected = index;
    this.draw();
  }

  down(event) {
    const [x, y] = this.at(event);
    const grab = (index, mode, handle) => {
      const shape = shapeOf(this.zones[index]);
      this.edit = { index, shape, start: shape, mode, handle, x0: x, y0: y };
      this.canvas.setPointerCapture(event.pointerId);
      this.select(index);
    };
    if (this.tool && this.selected !== null) {
      return grab(this.selected, "draw", this.tool);
    }
    if (this.selected !== null) {
      const tolerance = HANDLE_PX / this.scale;
      const shape = shapeOf(this.zones[this.selected]);
      const h = handles(shape).find((h) => Math.abs(h.x - x) <= tolerance && Math.abs(h.y - y) <= tolerance);
      if (h) return grab(this.selected, "resize", h.id);
    }
    for (let i = this.zones.length - 1; i >= 0; i--) {
      if (contains(shapeOf(this.zones[i]), x, y)) return grab(i, "move");
    }
  }

  move(event) {
    if (!this.edit) return;
    const [x, y] = this.at(event);
    const e = this.edit;
    if (e.mode === "move") e.shape = moved(e.start, x - e.x0, y - e.y0);
    else if (e.mode === "resize") e.shape = resized(e.start, e.handle, x, y);
    else e.shape = drawn(e.handle === "circle" ? "circle" : "rectangle", e.x0, e.y0, x, y);
    this.draw();
  }

  up(event) {
    if (!this.edit) return;
    this.move(event);
    const e = this.edit;
    this.tool = null;
    const unchanged = JSON.stringify(e.shape) === JSON.stringify(e.start);
    if (unchanged) {
      this.edit = null;
      this.draw();
      return;
    }
    const zone = this.zones[e.index];
    this.onZoneEdit(zone, rounded(e.shape)).finally(() => {
      this.edit = null;
      this.draw();
    });
  }
}

function tracePath(ctx, shape) {
  ctx.beginPath();
  if (shape.rectangle) {
    const [x0, y0, x1, y1] = shape.rectangle;
    ctx.rect(x0, y0, x1 - x0, y1 - y0);
  } else if (shape.circle) {
    const [cx, cy, r] = shape.circle;
    ctx.arc(cx, cy, r, 0, 2 * Math.PI);
  } else {
    shape.polygon.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    ctx.closePath();
  }
}

function labelAt(shape) {
  if (shape.rectangle) return [shape.rectangle[0], shape.rectangle[1]];
  if (shape.circle) return [shape.circle[0] - shape.circle[2], shape.circle[1] - shape.circle[2]];
  return shape.polygon.reduce(([ax, ay], [x, y]) => [Math.min(ax, x), Math.min(ay, y)], [Infinity, Infinity]);
}
