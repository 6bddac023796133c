// The search's ensembles beside its best single model: a table and a bar chart of
// validation (and test) accuracy (GET /searches/{id}/ensembles), and a build form
// (POST /searches/{id}/ensembles, CSRF-protected).
import { draw as plot, el, errorMessages, fmt, send } from "./common.js";

function row(ensemble) {
  const single = ensemble.best_single ? ensemble.best_single.val_accuracy : null;
  const gain = ensemble.val_accuracy !== null && single !== null ? ensemble.val_accuracy - single : null;
  const file = ensemble.download_url ? el("a", { href: ensemble.download_url, download: ensemble.name || "", text: "download" }) : "—";
  return el(
    "tr",
    { "data-ensemble-id": String(ensemble.id) },
    el("td", { text: String(ensemble.id) }),
    el("td", { text: ensemble.kind }),
    el("td", { text: String(ensemble.size) }),
    el("td", { text: ensemble.status + (ensemble.error ? `: ${ensemble.error}` : "") }),
    el("td", { text: fmt(ensemble.val_accuracy) }),
    el("td", { text: fmt(ensemble.test_accuracy) }),
    el("td", { text: gain === null ? "—" : `${gain >= 0 ? "+" : ""}${gain.toFixed(4)}` }),
    el("td", { text: fmt(ensemble.diversity, 3) }),
    el("td", { text: String(ensemble.members.length) }),
    el("td", {}, file),
  );
}

export function draw(table, chart, ensembles) {
  table.replaceChildren(...ensembles.map(row));
  const built = ensembles.filter((e) => e.status === "completed");
  chart.hidden = !built.length; // no chart (and no drawing) before the first ensemble is built
  if (!built.length) return;
  const single = built.find((e) => e.best_single)?.best_single;
  const labels = [...(single ? ["best single"] : []), ...built.map((e) => `${e.kind} #${e.id}`)];
  const accuracy = (key) => [...(single ? [single[key]] : []), ...built.map((e) => e[key])];
  const traces = [{ type: "bar", name: "validation", x: labels, y: accuracy("val_accuracy") }];
  if (accuracy("test_accuracy").some((v) => v !== null && v !== undefined)) {
    traces.push({ type: "bar", name: "test", x: labels, y: accuracy("test_accuracy") });
  }
  plot(chart, traces, { barmode: "group", yaxis: { title: { text: "accuracy" } } });
}

export function setup(searchId) {
  document.getElementById("ensemble-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = document.getElementById("ensemble-error");
    error.textContent = "";
    const kind = document.getElementById("ensemble-kind").value;
    const response = await send("POST", `/searches/${searchId}/ensembles`, { kind });
    if (!response.ok) error.textContent = (await errorMessages(response)).join("; ");
  });
}
