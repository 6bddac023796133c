// The leaderboard: GET /searches/{id}/trials, sortable by column, filtered by stage and
// status, paginated, best result first by default (the search's `result`: each trial's
// best or last epoch).
import { el, fmt, getJSON, when } from "./common.js";

const PAGE = 20;
const state = { searchId: null, order: "result", offset: 0, stage: "", status: "" };

function params(trial) {
  return Object.entries(trial.params)
    .map(([name, value]) => `${name}=${typeof value === "number" ? Number(value).toPrecision(3) : value}`)
    .join(", ");
}

function row(trial) {
  return el(
    "tr",
    { "data-trial-id": String(trial.id) },
    el("td", {}, el("a", { href: `/ui/trials/${trial.id}`, text: String(trial.id) })),
    el("td", { text: String(trial.stage) }),
    el("td", { text: trial.status }),
    el("td", { text: fmt(trial.result_val_accuracy) }),
    el("td", { text: `${trial.last_epoch ?? 0} / ${trial.epochs}` }),
    el("td", { text: params(trial) }),
    el("td", { text: when(trial.started_at) }),
    el("td", { text: when(trial.finished_at) }),
  );
}

// Offer each of the search's stages in the stage filter.
export function showStages(detail) {
  const select = document.getElementById("filter-stage");
  const have = new Set([...select.options].map((o) => o.value));
  for (const stage of detail.stages) {
    if (!have.has(String(stage.stage))) select.append(el("option", { value: String(stage.stage), text: String(stage.stage) }));
  }
}

export async function refresh() {
  const query = new URLSearchParams({ order_by: state.order, limit: String(PAGE), offset: String(state.offset) });
  if (state.stage !== "") query.set("stage", state.stage);
  if (state.status !== "") query.set("status", state.status);
  const { data } = await getJSON(`/searches/${state.searchId}/trials?${query}`);
  document.querySelector("#leaderboard tbody").replaceChildren(...data.map(row));
  const last = state.offset + data.length;
  document.getElementById("page-label").textContent = data.length ? `${state.offset + 1}–${last}` : "no trials";
  document.getElementById("page-prev").disabled = state.offset === 0;
  document.getElementById("page-next").disabled = data.length < PAGE;
}

export function setup(searchId) {
  state.searchId = searchId;
  const change = (update) => () => {
    Object.assign(state, update(), update().offset === undefined ? { offset: 0 } : {});
    refresh();
  };
  document.getElementById("filter-stage").addEventListener("change", (e) => change(() => ({ stage: e.target.value }))());
  document.getElementById("filter-status").addEventListener("change", (e) => change(() => ({ status: e.target.value }))());
  document.getElementById("page-prev").addEventListener("click", change(() => ({ offset: Math.max(0, state.offset - PAGE) })));
  document.getElementById("page-next").addEventListener("click", change(() => ({ offset: state.offset + PAGE })));
  for (const th of document.querySelectorAll("#leaderboard th[data-order]")) {
    th.addEventListener("click", change(() => ({ order: th.dataset.order })));
  }
}
