// The best runs' validation accuracy per epoch, overlaid (GET /searches/{id}/curves).
import { draw as plot } from "./common.js";

export function draw(element, curves) {
  const traces = curves.map((curve) => ({
    type: "scatter",
    x: curve.epoch,
    y: curve.val_accuracy,
    name: `trial ${curve.trial_id} (stage ${curve.stage})`,
    meta: { trial_id: curve.trial_id },
  }));
  plot(element, traces, { xaxis: { title: { text: "epoch" } }, yaxis: { title: { text: "val. accuracy" } } });
}
