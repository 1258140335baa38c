// The side panels: session, outputs, zones list, event log, keypoint legend.

import { el, replaceChildren } from "./dom.js";
import { PALETTE } from "./imageview.js";

const EVENTS_SHOWN = 200;

export function bytes(n) {
  if (n === undefined || n === null) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function renderSession(dl, meta, status, stream) {
  const rows = [];
  const add = (k, v) => rows.push(el("dt", { text: k }), el("dd", { text: v ?? "–" }));
  if (meta) {
    const model = meta.model || {};
    add("bundle", model.name);
    add("bundle folder", model.bundle);
    const size = meta.frame_size ? `${meta.frame_size[0]}×${meta.frame_size[1]}` : "";
    add("source", `${meta.source ?? "?"} ${size} @ ${meta.fps ?? "?"} fps`);
    const engine = meta.engine || {};
    add("engine", [engine.backend, engine.provider, engine.threads ? `${engine.threads} threads` : ""].filter(Boolean).join(", "));
    add("keypoints", (meta.keypoints || []).join(", "));
    add("prediction", meta.prediction ? "on" : "off");
    add("rules file", meta.rules_file || "(inline in the config)");
  }
  add("stream", stream);
  if (status) {
    add("recording", status.recording ? status.recording : "off");
    add("free disk", bytes(status.disk_free_bytes));
    add("frames", `${status.frames} processed, ${status.dropped_frames} dropped`);
    if (status.lead_ms !== undefined) add("prediction lead", `${status.lead_ms} ms`);
  }
  replaceChildren(dl, rows);
}

export function renderModel(dl, meta) {
  const model = (meta && meta.model) || {};
  const rows = [el("dt", { text: "name" }), el("dd", { text: model.name ?? "–", data: { field: "name" } })];
  if (model.sha256) {
    const short = `${String(model.sha256).slice(0, 16)}…`;
    rows.push(el("dt", { text: "sha256" }), el("dd", { text: short, title: model.sha256, data: { field: "sha256" } }));
  }
  replaceChildren(dl, rows);
}

export function renderOutputs(tbody, select, meta, status) {
  const outputs = (meta && meta.outputs) || {};
  const on = (status && status.outputs_on) || {};
  replaceChildren(tbody, Object.entries(outputs).map(([name, o]) => el("tr", { data: { output: name } }, [
    el("td", { text: name }),
    el("td", { text: o.device }),
    el("td", { text: `${o.max_on_ms} ms` }),
    el("td", { text: on[name] ? "ON" : "off", cls: on[name] ? "state-on" : "" }),
  ])));
  const names = Object.keys(outputs);
  const current = [...select.options].map((o) => o.value);
  if (JSON.stringify(current) !== JSON.stringify(names)) {
    replaceChildren(select, names.map((n) => {
      const option = el("option", { text: n });
      option.value = n;
      return option;
    }));
  }
}

export function renderLegend(ul, meta) {
  replaceChildren(ul, (meta.keypoints || []).map((name, k) => {
    const swatch = el("span", { cls: "swatch" });
    swatch.style.background = PALETTE[k % PALETTE.length];
    return el("li", { data: { colour: PALETTE[k % PALETTE.length] } }, [swatch, el("span", { cls: "name", text: name })]);
  }));
}

export function renderZones(ul, zones, enabled, selected, colourOf, onSelect) {
  replaceChildren(ul, zones.map((z, i) => {
    const shape = z.rectangle ? `rectangle [${z.rectangle.join(", ")}]`
      : z.circle ? `circle [${z.circle.join(", ")}]` : `polygon of ${z.polygon.length}`;
    const li = el("li", {
      cls: [i === selected ? "selected" : "", enabled[z.rule] === false ? "disabled" : ""].join(" "),
      data: { rule: z.rule, path: z.path },
    }, [
      el("b", { text: z.rule }),
      el("span", { text: ` · ${z.keypoint} ${z.inside ? "inside" : "outside"} · ${shape}${enabled[z.rule] === false ? " · disabled" : ""}` }),
    ]);
    li.style.borderLeftColor = colourOf(i);
    li.addEventListener("click", () => onSelect(i));
    return li;
  }));
}

export function eventText(e) {
  const parts = [e.kind, e.name];
  if (e.state) parts.push(e.state);
  if (e.action) parts.push(e.action + (e.duration_s ? ` ${Math.round(e.duration_s * 1000)} ms` : ""));
  if (e.rule) parts.push(`(rule ${e.rule})`);
  if (e.source && e.kind !== "rule") parts.push(`[${e.source}]`);
  if (e.event) parts.push(e.event);
  if (e.message) parts.push(e.message);
  if (e.zone) parts.push(JSON.stringify(e.zone));
  if (e.error) parts.push(e.error);
  if (e.conversion_error) parts.push(`conversion failed: ${e.conversion_error}`);
  return parts.filter((p) => p !== undefined && p !== null && p !== "").join(" ");
}

export function addEvent(ol, e, wallOffsetNs) {
  const t = e.t_publish_ns ?? e.t_ns;
  const when = t ? new Date((t + wallOffsetNs) / 1e6).toLocaleTimeString() : "";
  const item = el("li", { cls: e.kind || "", text: `${when} frame ${e.frame_index ?? "–"}: ${eventText(e)}` });
  ol.prepend(item);
  while (ol.children.length > EVENTS_SHOWN) ol.lastChild.remove();
}
