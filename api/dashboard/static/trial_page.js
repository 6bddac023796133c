// The trial page: polls the trial and its figures and hands each figure module its data.
import { plotlyReady, poll } from "./common.js";
import * as accuracy from "./accuracy.js";
import * as deadRelu from "./dead_relu.js";
import * as facts from "./trial_facts.js";
import * as firstLayer from "./first_layer.js";
import * as histograms from "./histograms.js";
import * as loss from "./loss.js";
import * as ratios from "./ratios.js";

const trialId = document.getElementById("trial-root").dataset.trialId;
const byId = (id) => document.getElementById(id);

const plotly = plotlyReady();
let latest = null;
byId("loss-log").addEventListener("change", () => latest && loss.draw(byId("loss"), latest, byId("loss-log").checked));
poll([
  [[`/trials/${trialId}`], ({ data }) => {
    facts.show(byId("trial-facts"), byId("checkpoints"), data);
    facts.showEvents(document.querySelector("#events tbody"), data);
  }],
  [[`/trials/${trialId}/figures`], async ({ data }) => {
    await plotly;
    latest = data;
    firstLayer.show(byId("first-layer"), trialId, latest);
    loss.draw(byId("loss"), latest, byId("loss-log").checked);
    accuracy.draw(byId("accuracy"), latest);
    ratios.draw(byId("ratios"), latest);
    histograms.draw(byId("activations"), latest.activation_histograms, latest.epoch, "activation");
    histograms.draw(byId("gradients"), latest.gradient_histograms, latest.epoch, "gradient");
    deadRelu.draw(byId("dead-relu"), latest);
  }],
]);
