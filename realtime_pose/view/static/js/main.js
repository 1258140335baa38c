// The live view: wires the WebSocket to the image, the plots and the panels.

import { Connection } from "./connection.js";
import { setText, showResult } from "./dom.js";
import { ImageView } from "./imageview.js";
import { addEvent, renderLegend, renderModel, renderOutputs, renderSession, renderZones } from "./panels.js";
import { Plots } from "./plots.js";

const $ = (id) => document.getElementById(id);
const state = { meta: null, status: null, rules: null, stream: "", drawn: [], lastDrawn: null, drawnCount: 0 };
window.realtimePoseView = state; // read by the tests and handy in the browser console

const wallOffset = () => (state.meta ? state.meta.wall_offset_ns : 0);
const plots = new Plots(document);

const image = new ImageView($("image"), $("stage"), {
  onDrawn(seq, drawn) {
    conn.send({ type: "drawn", seq });
    if (!drawn) return;
    const now = performance.now();
    state.drawn.push(now);
    while (state.drawn.length && state.drawn[0] < now - 3000) state.drawn.shift();
    state.drawnCount += 1;
    const f = image.frame;
    state.lastDrawn = { seq, frame_index: f.frame_index, keypoints: f.keypoints, predicted: f.predicted, at: now };
    setText("frame-index", f.frame_index);
    setText("frame-seq", seq);
    setText("pose-age", (f.age_ms + (now - f.received)).toFixed(1));
  },
  async onZoneEdit(zone, shape) {
    const reply = await conn.action("zone_set", { rule: zone.rule, path: zone.path, zone: shape });
    showResult($("zone-result"), reply, () => `${zone.rule}: zone applied to the running session`);
    if (reply.ok) setRules(reply);
  },
});

const conn = new Connection(onText, (frame) => {
  frame.received = performance.now();
  image.show(frame);
}, (open) => {
  $("conn").textContent = open ? "live" : "disconnected";
  $("conn").className = `badge ${open ? "on" : "off"}`;
});

function onText(msg) {
  switch (msg.type) {
    case "hello":
      state.stream = msg.stream || "";
      $("label-link").hidden = !msg.labelling;
      break;
    case "meta":
      state.meta = msg.meta;
      image.setMeta(msg.meta);
      renderLegend($("legend"), msg.meta);
      renderModel($("model"), msg.meta);
      refreshPanels();
      break;
    case "rules":
      setRules(msg.rules);
      break;
    case "history":
      for (const s of msg.status) onStatus(s);
      for (const e of msg.events) addEvent($("events"), e, wallOffset());
      break;
    case "status":
      onStatus(msg.status);
      break;
    case "event":
      addEvent($("events"), msg.event, wallOffset());
      break;
    case "warning":
      $("warning").hidden = false;
      $("warning").textContent = msg.text;
      addEvent($("events"), { kind: "warning", name: "view", message: msg.text }, 0);
      break;
  }
}

function onStatus(status) {
  state.status = status;
  $("warning").hidden = true;
  plots.add(status, wallOffset());
  setText("loop-fps", status.fps.toFixed(1));
  const n = state.drawn.length;
  setText("drawn-fps", n > 1 ? ((1000 * (n - 1)) / (state.drawn[n - 1] - state.drawn[0])).toFixed(1) : "0");
  refreshPanels();
}

function refreshPanels() {
  renderSession($("session"), state.meta, state.status, state.stream);
  renderOutputs($("outputs").tBodies[0], $("test-output"), state.meta, state.status);
  const recording = !!(state.status && state.status.recording);
  $("record-start").disabled = recording;
  $("record-stop").disabled = !recording;
}

function setRules(rules) {
  state.rules = rules;
  image.setZones(rules.zones || [], rules.enabled || {});
  renderZoneList();
}

function renderZoneList() {
  const rules = state.rules || { zones: [], enabled: {} };
  renderZones($("zones"), rules.zones || [], rules.enabled || {}, image.selected,
    (i) => image.zoneColour(i), (i) => { image.select(i); renderZoneList(); });
}

// -- toolbar ------------------------------------------------------------------------------
$("fit").onclick = () => image.setZoom(null);
$("zoom-1").onclick = () => image.setZoom(1);
$("zoom-in").onclick = () => image.setZoom(image.scale * 1.25);
$("zoom-out").onclick = () => image.setZoom(image.scale / 1.25);
$("pause").onclick = () => {
  image.paused = !image.paused;
  $("pause").setAttribute("aria-pressed", String(image.paused));
  $("pause").textContent = image.paused ? "Resume" : "Pause";
};
$("cutoff").onchange = () => {
  image.cutoff = Number($("cutoff").value);
  image.draw();
};
for (const [id, tool] of [["draw-rect", "rect"], ["draw-circle", "circle"]]) {
  $(id).onclick = () => {
    if (image.selected === null) {
      showResult($("zone-result"), { ok: false, error: "select a zone first (click it in the list)" });
      return;
    }
    image.tool = tool;
  };
}
$("image").addEventListener("pointerup", () => renderZoneList());

// -- actions ------------------------------------------------------------------------------
async function act(cmd, fields, okText) {
  const reply = await conn.action(cmd, fields);
  showResult($("action-result"), reply, okText);
  return reply;
}

$("record-start").onclick = () => act("record_start", {}, (r) => `recording to ${r.path}`);
// slow work goes on on the rig after the reply; an event in the list says when it is done
$("record-stop").onclick = () => act("record_stop", {}, (r) => `recording stopped: ${r.path} (converting to tables)`);
$("snapshot").onclick = () => act("snapshot", {}, (r) => `snapshot being saved on the rig: ${r.png}`);
$("test-pulse").onclick = () => {
  const output = $("test-output").value;
  const ms = Number($("test-ms").value);
  const max = state.meta && state.meta.outputs && state.meta.outputs[output] ? state.meta.outputs[output].max_on_ms : null;
  if (!output) return;
  if (!window.confirm(`Pulse output "${output}" for ${ms} ms (its max on-time is ${max} ms)?`)) return;
  act("output_test", { output, duration_ms: ms }, (r) => `${r.output} pulsed for ${r.duration_ms} ms`);
};
$("model-swap").onclick = async () => {
  const bundle = $("bundle-path").value.trim();
  if (!bundle) {
    showResult($("model-result"), { ok: false, error: "enter the bundle's folder on the rig" });
    return;
  }
  $("model-swap").disabled = true;
  try {
    const reply = await conn.action("model_swap", { bundle });
    showResult($("model-result"), reply, (r) => `swapped to ${(r.model && r.model.name) || bundle}`);
    if (reply.ok && reply.model && state.meta) {
      state.meta = { ...state.meta, model: { ...state.meta.model, ...reply.model } };
      renderModel($("model"), state.meta);
    }
  } catch (err) {
    showResult($("model-result"), { ok: false, error: err.message });
  } finally {
    $("model-swap").disabled = false;
  }
};
$("rules-save").onclick = () => {
  const file = state.rules && state.rules.rules_file;
  if (!file) {
    showResult($("zone-result"), { ok: false, error: "this session has no rules file (its rules are inline in the run config)" });
    return;
  }
  if (!window.confirm(`Replace ${file} with the rules as they run now?`)) return;
  conn.action("rules_save").then((reply) => showResult($("zone-result"), reply, (r) => `saved to ${r.path}`));
};
