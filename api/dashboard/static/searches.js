// The searches page: one row per search (status, progress, best accuracy, times), polled;
// and the launch form, which sends the chosen spec file's text to POST /search-specs.
import { el, errorMessages, fmt, getJSON, poll, send, when } from "./common.js";

const FINISHED = ["completed", "diverged", "failed", "cancelled"];

function progressBar(search) {
  const p = search.progress;
  const done = FINISHED.reduce((sum, status) => sum + p[status], 0);
  const [used, of, unit] = search.budget_epochs
    ? [p.epochs_trained, search.budget_epochs, "epochs"]
    : [done, Math.max(p.planned, p.total, 1), "trials"];
  const share = Math.min(1, used / Math.max(of, 1));
  const bar = el("span", { class: "bar", title: `${used} / ${of} ${unit}` }, el("span"));
  bar.firstChild.style.width = `${(100 * share).toFixed(1)}%`;
  return el("td", {}, bar, ` ${used} / ${of} ${unit}`);
}

function trialStates(progress) {
  const parts = ["queued", "running", ...FINISHED].filter((s) => progress[s] > 0);
  return parts.map((s) => `${progress[s]} ${s}`).join(", ") || "none yet";
}

async function bestAccuracy(search) {
  if (search.best_trial_id === null) return null;
  const { data } = await getJSON(`/searches/${search.id}`);
  return data.best_trial ? data.best_trial.result_val_accuracy : null;
}

async function render({ data: searches }) {
  const rows = await Promise.all(
    searches.map(async (search) => {
      const link = el("a", { href: `/ui/searches/${search.id}`, text: search.name });
      return el(
        "tr",
        { "data-search-id": String(search.id) },
        el("td", { text: String(search.id) }),
        el("td", {}, link),
        el("td", { class: "status", text: search.status }),
        progressBar(search),
        el("td", { text: trialStates(search.progress) }),
        el("td", { text: fmt(await bestAccuracy(search)) }),
        el("td", { text: when(search.created_at) }),
        el("td", { text: when(search.finished_at) }),
      );
    }),
  );
  document.querySelector("#searches tbody").replaceChildren(...rows);
}

poll([[["/searches?limit=100"], render]]);

document.getElementById("launch-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const list = document.getElementById("launch-errors");
  list.replaceChildren();
  const file = document.getElementById("spec-file").files[0];
  if (!file) return;
  const response = await send("POST", "/search-specs", {
    filename: file.name,
    content: await file.text(),
  });
  if (response.ok) {
    const search = await response.json();
    window.location.assign(`/ui/searches/${search.id}`);
    return;
  }
  const messages = await errorMessages(response);
  list.replaceChildren(...messages.map((m) => el("li", { text: m })));
});
