// Trials per worker over time (horizontal bars, start to finish or now), each worker
// labelled with its share of time busy (GET /searches/{id}/timeline).
import { draw as plot } from "./common.js";

const COLORS = { completed: "#2ca02c", running: "#1f77b4", diverged: "#ff7f0e", failed: "#d62728", cancelled: "#999", queued: "#ccc" };

export function draw(element, timeline) {
  const label = new Map(
    timeline.workers.map((w) => [w.worker_id, `${w.worker_id} (${Math.round(100 * w.busy_share)}% busy)`]),
  );
  const now = Date.now();
  const byStatus = new Map();
  for (const bar of timeline.bars) {
    if (!byStatus.has(bar.status)) byStatus.set(bar.status, { base: [], x: [], y: [], customdata: [] });
    const t = byStatus.get(bar.status);
    const start = Date.parse(bar.started_at);
    const end = bar.finished_at ? Date.parse(bar.finished_at) : now;
    t.base.push(new Date(start).toISOString());
    t.x.push(Math.max(end - start, 1));
    t.y.push(label.get(bar.worker_id) || bar.worker_id);
    t.customdata.push(bar.trial_id);
  }
  const traces = [...byStatus.entries()].map(([status, t]) => ({
    ...t,
    type: "bar",
    orientation: "h",
    name: status,
    marker: { color: COLORS[status] || "#444" },
    hovertemplate: `trial %{customdata} (${status})<extra></extra>`,
  }));
  plot(element, traces, {
    barmode: "overlay",
    xaxis: { type: "date", title: { text: "time" } },
    yaxis: { automargin: true },
    title: { text: `${timeline.bars.length} of ${timeline.total} started trials`, font: { size: 12 } },
  });
}
