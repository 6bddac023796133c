// The workers page: alive or stale, current trial, trials done, share of time busy.
import { el, poll } from "./common.js";

function row(worker) {
  const current = worker.current_trial_id
    ? el("a", { href: `/ui/trials/${worker.current_trial_id}`, text: String(worker.current_trial_id) })
    : "—";
  return el(
    "tr",
    { "data-worker-id": worker.id },
    el("td", { text: worker.id }),
    el("td", { text: worker.alive ? `alive (${worker.status})` : "stale" }),
    el("td", {}, current),
    el("td", { text: String(worker.trials_done) }),
    el("td", { text: `${Math.round(100 * worker.busy_share)}%` }),
  );
}

poll([[["/workers/activity"], ({ data }) => {
  document.querySelector("#workers tbody").replaceChildren(...data.map(row));
}]]);
