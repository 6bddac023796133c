// Histograms per layer across epochs as heatmaps (x: epoch, y: bin, colour: share of values).
import { draw as plot } from "./common.js";

function centers(edges, kind) {
  const middle = edges.slice(0, -1).map((e, i) => (e + edges[i + 1]) / 2);
  return kind === "gradient" ? middle.map((c) => c.toExponential(0)) : middle;
}

export function draw(element, heatmaps, epochs, kind) {
  const layers = Object.keys(heatmaps);
  const traces = layers.map((layer, index) => {
    const { edges, fractions } = heatmaps[layer];
    const suffix = index === 0 ? "" : String(index + 1);
    return {
      type: "heatmap",
      name: layer,
      x: epochs,
      y: centers(edges, kind),
      z: edges.slice(0, -1).map((_, bin) => fractions.map((epoch) => epoch[bin])),
      colorscale: "Blues",
      showscale: index === 0,
      xaxis: `x${suffix}`,
      yaxis: `y${suffix}`,
      hovertemplate: `${layer} epoch %{x}<br>bin %{y}: %{z:.3f}<extra></extra>`,
    };
  });
  const layout = { grid: { rows: 1, columns: Math.max(1, layers.length), pattern: "independent" } };
  layers.forEach((layer, index) => {
    const suffix = index === 0 ? "" : String(index + 1);
    layout[`xaxis${suffix}`] = { title: { text: `${layer}: epoch` } };
    layout[`yaxis${suffix}`] = { type: kind === "gradient" ? "category" : "linear" };
  });
  plot(element, traces, layout);
}
