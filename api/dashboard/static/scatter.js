// Validation accuracy against each hyperparameter: one panel per parameter (log axis when
// its space is log-scaled), points coloured by stage, each stage's range as a band and
// border warnings as dashed red lines at the border the best values sit on.
import { draw as plot, stageColor } from "./common.js";

const LOG_KINDS = ["log_uniform", "log_int"];

function kindOf(detail, name) {
  for (const stage of [...detail.stages].reverse()) {
    if (stage.space[name]) return stage.space[name].kind;
  }
  return (detail.spec.space || {})[name]?.kind || "uniform";
}

function axisNames(index) {
  const suffix = index === 0 ? "" : String(index + 1);
  return { x: `x${suffix}`, y: `y${suffix}`, xaxis: `xaxis${suffix}`, yaxis: `yaxis${suffix}` };
}

function tracesFor(name, index, points) {
  const axes = axisNames(index);
  const byStage = new Map();
  points.trial_id.forEach((trialId, i) => {
    const value = points.params[name][i];
    if (value === null || value === undefined || points.val_accuracy[i] === null) return;
    const stage = points.stage[i];
    if (!byStage.has(stage)) byStage.set(stage, { x: [], y: [], customdata: [] });
    const t = byStage.get(stage);
    t.x.push(value);
    t.y.push(points.val_accuracy[i]);
    t.customdata.push(trialId);
  });
  return [...byStage.entries()].map(([stage, t]) => ({
    ...t,
    type: "scatter",
    mode: "markers",
    name: `stage ${stage}`,
    legendgroup: `stage ${stage}`,
    showlegend: index === 0,
    marker: { color: stageColor(stage), size: 6, opacity: 0.75 },
    meta: { param: name, stage },
    xaxis: axes.x,
    yaxis: axes.y,
    hovertemplate: `${name}=%{x:.3g}<br>val. acc. %{y:.4f}<br>trial %{customdata}<extra>stage ${stage}</extra>`,
  }));
}

function bandsFor(name, index, detail) {
  const axes = axisNames(index);
  const shapes = [];
  for (const stage of detail.stages) {
    const range = stage.space[name];
    if (range && typeof range.low === "number" && typeof range.high === "number") {
      shapes.push({
        type: "rect", xref: axes.x, yref: `${axes.y} domain`, x0: range.low, x1: range.high, y0: 0, y1: 1,
        fillcolor: stageColor(stage.stage), opacity: 0.08, line: { width: 0 }, layer: "below",
      });
    }
    for (const warning of stage.warnings.filter((w) => w.param === name)) {
      const x = warning.side === "low" ? warning.range[0] : warning.range[1];
      shapes.push({
        type: "line", xref: axes.x, yref: `${axes.y} domain`, x0: x, x1: x, y0: 0, y1: 1,
        line: { color: "#d00", width: 2, dash: "dash" }, name: "border warning",
      });
    }
  }
  return shapes;
}

export function draw(element, detail, points) {
  const names = Object.keys(points.params);
  const columns = Math.min(3, Math.max(1, names.length));
  const rows = Math.max(1, Math.ceil(names.length / columns));
  const layout = {
    grid: { rows, columns, pattern: "independent" },
    height: 300 * rows + 60,
    shapes: [],
    title: { text: `${points.shown} of ${points.total} trials`, font: { size: 12 } },
  };
  const traces = [];
  names.forEach((name, index) => {
    const axes = axisNames(index);
    const log = LOG_KINDS.includes(kindOf(detail, name));
    layout[axes.xaxis] = { title: { text: name }, type: log ? "log" : "-" };
    layout[axes.yaxis] = { title: { text: "val. accuracy" } };
    traces.push(...tracesFor(name, index, points));
    layout.shapes.push(...bandsFor(name, index, detail));
  });
  element.style.height = `${layout.height}px`;
  plot(element, traces, layout, bindClick);
}

function bindClick(element) {
  if (!element.dataset.clickBound) {
    element.on("plotly_click", (event) => window.location.assign(`/ui/trials/${event.points[0].customdata}`));
    element.dataset.clickBound = "1";
  }
}
