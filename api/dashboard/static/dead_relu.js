// Fraction of dead ReLUs per hidden layer per epoch (empty for non-ReLU activations).
import { draw as plot } from "./common.js";

export function draw(element, figures) {
  const traces = Object.entries(figures.dead_relu_fraction).map(([layer, values]) => ({
    type: "scatter", name: layer, x: figures.epoch, y: values,
  }));
  const layout = { xaxis: { title: { text: "epoch" } }, yaxis: { title: { text: "dead fraction" }, range: [0, 1] } };
  if (!traces.length) layout.annotations = [{ text: "not a ReLU network", showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5 }];
  plot(element, traces, layout);
}
