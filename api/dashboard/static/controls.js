// Pause / resume / cancel and the epoch budget of a search (CSRF-protected API calls).
import { el, errorMessages, send } from "./common.js";

const ALLOWED = { pause: ["running"], resume: ["paused"], cancel: ["running", "paused"] };

function report(messages) {
  document.getElementById("controls-error").textContent = messages.join("; ");
}

async function call(method, url, body) {
  report([]);
  const response = await send(method, url, body);
  if (!response.ok) report(await errorMessages(response));
  return response.ok;
}

export function setup(searchId) {
  const base = `/searches/${searchId}`;
  for (const action of Object.keys(ALLOWED)) {
    document.getElementById(action).addEventListener("click", () => call("POST", `${base}/${action}`));
  }
  document.getElementById("controls").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = document.getElementById("budget").value.trim();
    if (!/^[0-9]+$/.test(text) || Number(text) < 1) {
      report([`budget_epochs: must be a whole number of epochs >= 1, got ${JSON.stringify(text)}`]);
      return;
    }
    await call("PATCH", base, { budget_epochs: Number(text) });
  });
}

export function show(detail) {
  document.getElementById("search-status").textContent = detail.status;
  document.getElementById("search-reason").textContent = detail.reason ? `(${detail.reason})` : "";
  const p = detail.progress;
  const budget = detail.budget_epochs ? ` of ${detail.budget_epochs}` : "";
  document.getElementById("search-progress").textContent =
    `${p.epochs_trained}${budget} epochs trained, ${p.total} trials (${p.completed} completed, ` +
    `${p.running} running, ${p.queued} queued); a trial's result: its ${detail.result} epoch`;
  for (const [action, states] of Object.entries(ALLOWED)) {
    document.getElementById(action).disabled = !states.includes(detail.status);
  }
  const budgetInput = document.getElementById("budget");
  if (document.activeElement !== budgetInput && detail.budget_epochs) {
    budgetInput.placeholder = String(detail.budget_epochs);
  }
  const warnings = detail.stages.flatMap((stage) =>
    stage.warnings.map((w) => el("p", { class: "warning", text: `stage ${stage.stage}: ${w.message || JSON.stringify(w)}` })),
  );
  document.getElementById("warnings").replaceChildren(...warnings);
}
