// Parallel coordinates: one line per trial over its hyperparameters (log10 for log-scaled
// ones), its stage and its best validation accuracy, coloured by that accuracy.
import { draw as plot } from "./common.js";

const LOG_KINDS = ["log_uniform", "log_int"];

function dimension(name, values, kind) {
  if (values.some((v) => typeof v === "string")) {
    const labels = [...new Set(values.map(String))];
    return { label: name, values: values.map((v) => labels.indexOf(String(v))), tickvals: labels.map((_, i) => i), ticktext: labels };
  }
  if (LOG_KINDS.includes(kind)) return { label: `log10 ${name}`, values: values.map((v) => Math.log10(v)) };
  return { label: name, values };
}

export function draw(element, detail, points) {
  const keep = points.trial_id.map((_, i) => i).filter((i) => points.val_accuracy[i] !== null);
  const space = detail.stages.length ? detail.stages[detail.stages.length - 1].space : {};
  const dimensions = Object.entries(points.params)
    .filter(([, values]) => keep.every((i) => values[i] !== null && values[i] !== undefined))
    .map(([name, values]) => dimension(name, keep.map((i) => values[i]), space[name]?.kind));
  const accuracy = keep.map((i) => points.val_accuracy[i]);
  dimensions.push({ label: "stage", values: keep.map((i) => points.stage[i]) });
  dimensions.push({ label: "val. accuracy", values: accuracy });
  const trace = {
    type: "parcoords",
    dimensions,
    line: { color: accuracy, colorscale: "Viridis", showscale: true },
    meta: { lines: keep.length },
  };
  plot(element, [trace], { margin: { t: 40, r: 60, b: 30, l: 60 } });
}
