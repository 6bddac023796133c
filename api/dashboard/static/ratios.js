// Update / weight ratio per parameter per epoch (log y), with the healthy 1e-3 guide line.
import { draw as plot } from "./common.js";

export function draw(element, figures) {
  const traces = Object.entries(figures.update_ratios).map(([name, values]) => ({
    type: "scatter", name, x: figures.epoch, y: values,
  }));
  plot(element, traces, {
    xaxis: { title: { text: "epoch" } },
    yaxis: { title: { text: "||update|| / ||weights||" }, type: "log" },
    shapes: [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: 1e-3, y1: 1e-3, line: { color: "#d00", dash: "dash" } }],
    annotations: [{ xref: "paper", x: 1, y: -3, yref: "y", text: "1e-3", showarrow: false, xanchor: "right", yanchor: "bottom" }],
  });
}
