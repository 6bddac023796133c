// A trial's status, attempts, failure reason, parameters, event history and checkpoint
// downloads (GET /trials/{id}).
import { el, fmt, when } from "./common.js";

export function show(list, checkpoints, trial) {
  const facts = [
    ["status", trial.status + (trial.cancel_requested ? " (cancel requested)" : "")],
    ["attempts", `${trial.attempts} of ${trial.max_attempts}`],
    ["failure", trial.error ? `${trial.failure_kind || "error"}: ${trial.error}` : "—"],
    ["best val. accuracy", fmt(trial.best_val_accuracy)],
    ["last val. accuracy", fmt(trial.last_val_accuracy)],
    ["epochs", `${trial.epochs_recorded} of ${trial.epochs}`],
    ["worker", trial.worker_id || "—"],
    ["started", when(trial.started_at)],
    ["finished", when(trial.finished_at)],
    ["parameters", JSON.stringify(trial.params)],
  ];
  list.replaceChildren(...facts.flatMap(([name, value]) => [el("dt", { text: name }), el("dd", { text: value })]));
  const items = trial.checkpoints.map((c) =>
    el("li", {}, el("a", { href: c.download_url, download: c.name, text: c.name }), ` epoch ${c.epoch}, val. acc. ${fmt(c.val_accuracy)}`),
  );
  checkpoints.replaceChildren(...(items.length ? items : [el("li", { text: "none yet" })]));
}

export function showEvents(tbody, trial) {
  const rows = (trial.events || []).map((e) =>
    el(
      "tr",
      {},
      el("td", { text: when(e.at) }),
      el("td", { text: e.event }),
      el("td", { text: e.status }),
      el("td", { text: e.worker_id || "—" }),
      el("td", { text: String(e.attempt) }),
      el("td", { text: e.reason || "" }),
    ),
  );
  tbody.replaceChildren(...rows);
}
