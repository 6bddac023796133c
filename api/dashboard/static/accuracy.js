// Train and validation accuracy per epoch: the gap between them is the overfitting.
import { draw as plot } from "./common.js";

export function draw(element, figures) {
  const traces = [
    { type: "scatter", name: "train", x: figures.epoch, y: figures.train_accuracy },
    { type: "scatter", name: "validation", x: figures.epoch, y: figures.val_accuracy },
  ];
  plot(element, traces, { xaxis: { title: { text: "epoch" } }, yaxis: { title: { text: "accuracy" } } });
}
