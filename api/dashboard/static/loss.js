// Loss per iteration (decimated server-side) and per epoch (train, validation), log-y toggle.
import { draw as plot } from "./common.js";

export function draw(element, figures, logY) {
  const traces = [
    { type: "scatter", mode: "lines", name: "per iteration", x: figures.loss_per_iteration.x, y: figures.loss_per_iteration.y, line: { width: 1, color: "#9ecae1" } },
    { type: "scatter", name: "train (epoch mean)", x: figures.epoch, y: figures.train_loss },
    { type: "scatter", name: "validation", x: figures.epoch, y: figures.val_loss },
  ];
  plot(element, traces, { xaxis: { title: { text: "epoch" } }, yaxis: { title: { text: "loss" }, type: logY ? "log" : "linear" } });
}
