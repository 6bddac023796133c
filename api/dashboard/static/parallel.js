// Parallel coordinates: one line per trial across its hyperparameters (log10 for log-scaled
// ones), its stage and its best validation accuracy, each axis scaled to its own range and
// lines coloured by accuracy (five bands). Drawn as SVG lines (no WebGL: software WebGL in a
// GPU-less browser costs seconds); at most MAX_LINES lines, the best ones.
import { draw as plot } from "./common.js";

const MAX_LINES = 300;
const LOG_KINDS = ["log_uniform", "log_int"];
const BANDS = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"];

function axis(name, values, kind) {
  if (values.some((v) => typeof v === "string")) {
    const labels = [...new Set(values.map(String))].sort();
    return { label: name, values: values.map((v) => labels.indexOf(String(v))), ticks: labels };
  }
  if (LOG_KINDS.includes(kind)) return { label: `log10 ${name}`, values: values.map((v) => Math.log10(v)) };
  return { label: name, values };
}

function scaled(values) {
  const low = Math.min(...values);
  const high = Math.max(...values);
  return { low, high, values: values.map((v) => (high > low ? (v - low) / (high - low) : 0.5)) };
}

export function draw(element, detail, points) {
  const scored = points.trial_id.map((_, i) => i).filter((i) => points.val_accuracy[i] !== null);
  const keep = scored
    .sort((a, b) => points.val_accuracy[b] - points.val_accuracy[a])
    .slice(0, MAX_LINES);
  const space = detail.stages.length ? detail.stages[detail.stages.length - 1].space : {};
  const axes = Object.entries(points.params)
    .filter(([, values]) => keep.every((i) => values[i] !== null && values[i] !== undefined))
    .map(([name, values]) => axis(name, keep.map((i) => values[i]), space[name]?.kind));
  axes.push({ label: "stage", values: keep.map((i) => points.stage[i]) });
  axes.push({ label: "val. accuracy", values: keep.map((i) => points.val_accuracy[i]) });
  const columns = axes.map((a) => ({ ...a, ...scaled(a.values) }));
  const accuracy = columns[columns.length - 1];
  const traces = BANDS.map((color, band) => ({
    type: "scatter", mode: "lines", x: [], y: [], name: `accuracy band ${band + 1}`,
    line: { color, width: 1 }, opacity: 0.6, hoverinfo: "skip", showlegend: false,
  }));
  keep.forEach((_, line) => {
    const band = Math.min(BANDS.length - 1, Math.floor(accuracy.values[line] * BANDS.length));
    const trace = traces[band];
    columns.forEach((column, position) => {
      trace.x.push(position);
      trace.y.push(column.values[line]);
    });
    trace.x.push(null);
    trace.y.push(null);
  });
  const fmt = (v) => (Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(1) : v.toPrecision(3));
  const annotations = columns.flatMap((column, position) => [
    { x: position, y: 1.08, text: column.label, showarrow: false, font: { size: 11 } },
    { x: position, y: 1, text: column.ticks ? column.ticks.at(-1) : fmt(column.high), showarrow: false, xanchor: "left", font: { size: 9 } },
    { x: position, y: 0, text: column.ticks ? column.ticks[0] : fmt(column.low), showarrow: false, xanchor: "left", font: { size: 9 } },
  ]);
  const shapes = columns.map((_, position) => ({ type: "line", x0: position, x1: position, y0: 0, y1: 1, line: { color: "#333", width: 1 } }));
  const title = `${keep.length === scored.length ? "all" : `the best ${keep.length} of`} ${scored.length} scored trials`;
  plot(element, traces.filter((t) => t.x.length), {
    xaxis: { visible: false, range: [-0.2, columns.length - 0.6] },
    yaxis: { visible: false, range: [-0.05, 1.15] },
    annotations,
    shapes,
    meta: { lines: keep.length },
    title: { text: title, font: { size: 12 } },
  });
}
