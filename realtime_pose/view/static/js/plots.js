// The last 60 s of the session's status: frame rate and drops, per-stage latency p50/p99,
// capture -> publish latency. One point per status message (about one a second).

import uPlot from "../vendor/uPlot.esm.js";

const WINDOW_S = 60;
const STAGES = ["grab", "preprocess", "inference", "peaks", "predict", "publish"];
const STAGE_COLOURS = ["#8e8e93", "#64d2ff", "#ff9f0a", "#30d158", "#bf5af2", "#ffd60a"];

function chart(el, title, series, unit) {
  const opts = {
    title,
    width: Math.max(300, el.clientWidth - 4),
    height: 180,
    scales: { x: { time: true } },
    axes: [
      { stroke: "#9aa4b1", grid: { stroke: "#2c3038" } },
      { stroke: "#9aa4b1", grid: { stroke: "#2c3038" }, label: unit, size: 50 },
    ],
    series: [{}, ...series.map(([label, stroke, dash]) => ({ label, stroke, width: 1.5, dash }))],
    legend: { live: false },
  };
  const data = [[], ...series.map(() => [])];
  const plot = new uPlot(opts, data, el);
  new ResizeObserver(() => plot.setSize({ width: Math.max(300, el.clientWidth - 4), height: 180 })).observe(el);
  return { plot, data };
}

export class Plots {
  constructor(root) {
    this.charts = {
      fps: chart(root.querySelector("#plot-fps"), "Frames per second and drops", [
        ["fps", "#30d158"],
        ["dropped / s", "#ff453a"],
      ], "per s"),
      total: chart(root.querySelector("#plot-total"), "Capture → publish latency", [
        ["p50", "#64d2ff"],
        ["p99", "#ff9f0a"],
      ], "ms"),
      p50: chart(root.querySelector("#plot-p50"), "Per-stage latency p50",
        STAGES.map((s, i) => [s, STAGE_COLOURS[i]]), "ms"),
      p99: chart(root.querySelector("#plot-p99"), "Per-stage latency p99",
        STAGES.map((s, i) => [s, STAGE_COLOURS[i], [4, 3]]), "ms"),
    };
    this.lastDropped = null;
    this.lastT = null;
  }

  add(status, wallOffsetNs) {
    const t = (status.t_publish_ns + wallOffsetNs) / 1e9;
    const lat = status.latency_us || {};
    const ms = (stage, q) => (lat[stage] ? lat[stage][q] / 1000 : null);
    let dropRate = 0;
    if (this.lastDropped !== null && t > this.lastT) {
      dropRate = Math.max(0, (status.dropped_frames - this.lastDropped) / (t - this.lastT));
    }
    this.lastDropped = status.dropped_frames;
    this.lastT = t;
    this.push("fps", t, [status.fps, dropRate]);
    this.push("total", t, [ms("total", "p50"), ms("total", "p99")]);
    this.push("p50", t, STAGES.map((s) => ms(s, "p50")));
    this.push("p99", t, STAGES.map((s) => ms(s, "p99")));
  }

  push(name, t, values) {
    const { plot, data } = this.charts[name];
    data[0].push(t);
    values.forEach((v, i) => data[i + 1].push(v));
    while (data[0].length && data[0][0] < t - WINDOW_S) data.forEach((column) => column.shift());
    plot.setData(data);
  }
}
