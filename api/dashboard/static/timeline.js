// Trials per worker over time (a thick line from start to finish or now per trial, one
// trace per status: one SVG path each however many bars), each worker labelled with its
// share of time busy (GET /searches/{id}/timeline).
import { draw as plot, leftMargin } from "./common.js";

const COLORS = { completed: "#2ca02c", running: "#1f77b4", diverged: "#ff7f0e", failed: "#d62728", cancelled: "#999", queued: "#ccc" };

export function draw(element, timeline) {
  const label = new Map(
    timeline.workers.map((w) => [w.worker_id, `${w.worker_id} (${Math.round(100 * w.busy_share)}% busy)`]),
  );
  const now = new Date().toISOString();
  const byStatus = new Map();
  for (const bar of timeline.bars) {
    if (!byStatus.has(bar.status)) byStatus.set(bar.status, { x: [], y: [], customdata: [] });
    const t = byStatus.get(bar.status);
    const worker = label.get(bar.worker_id) || bar.worker_id;
    t.x.push(bar.started_at, bar.finished_at || now, null);
    t.y.push(worker, worker, null);
    t.customdata.push(bar.trial_id, bar.trial_id, null);
  }
  const traces = [...byStatus.entries()].map(([status, t]) => ({
    ...t,
    type: "scatter",
    mode: "lines",
    name: status,
    line: { color: COLORS[status] || "#444", width: 10 },
    hovertemplate: `trial %{customdata} (${status})<extra></extra>`,
  }));
  plot(element, traces, {
    margin: { t: 30, r: 20, b: 50, l: leftMargin([...label.values()]) },
    xaxis: { type: "date", title: { text: "time" } },
    yaxis: { type: "category" },
    title: { text: `${timeline.bars.length} of ${timeline.total} started trials`, font: { size: 12 } },
  });
}
