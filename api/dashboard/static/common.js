// Shared helpers of the dashboard's modules: JSON over the public API with the session
// cookie, ETag-aware polling, CSRF-protected unsafe requests, field-named error messages.

const csrfToken = () => document.querySelector('meta[name="csrf-token"]').content;
const lastTags = new Map();

export const POLL_MS = 2000;

// Fetch JSON; the browser revalidates with If-None-Match (304 = same body, same ETag).
// Resolves {changed, data}: changed is false when the ETag (or, for a route without one,
// the body) is the one seen last time.
export async function getJSON(url) {
  const response = await fetch(url, { cache: "no-cache", credentials: "same-origin" });
  if (response.status === 401) {
    window.location.assign(`/sign-in?next=${encodeURIComponent(window.location.pathname)}`);
    throw new Error("signed out");
  }
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  const text = await response.text();
  const tag = response.headers.get("ETag") || text;
  const changed = lastTags.get(url) !== tag;
  lastTags.set(url, tag);
  return { changed, data: JSON.parse(text) };
}

// Poll `groups`, a list of [urls, onData], now and every POLL_MS: every url is fetched once
// per round, all at once, and each group's onData(...results) runs as soon as its own urls
// answered, when any of them changed (so a figure whose data came early is drawn while the
// others are still on the server). Each result is {changed, data}.
export function poll(groups) {
  const urls = [...new Set(groups.flatMap(([list]) => list))];
  let busy = false;
  async function run(list, onData, pending) {
    const results = await Promise.all(list.map((url) => pending.get(url)));
    if (results.some((r) => r.changed)) await onData(...results);
  }
  async function tick() {
    if (busy || document.hidden) return;
    busy = true;
    const pending = new Map(urls.map((url) => [url, getJSON(url)]));
    const rounds = groups.map(([list, onData]) =>
      run(list, onData, pending).catch((error) => console.warn("poll:", error.message)),
    );
    await Promise.all(rounds);
    busy = false;
  }
  tick();
  setInterval(tick, POLL_MS);
}

// An unsafe request with the page's CSRF token; resolves the Response (never throws on 4xx).
export function send(method, url, body) {
  const headers = { "X-CSRF-Token": csrfToken() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  return fetch(url, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

// The messages of an error response: "field.path: message" per 422 entry, else the detail.
export async function errorMessages(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    return [`HTTP ${response.status}`];
  }
  const detail = body && body.detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc || []).filter((p) => p !== "body").join(".")}: ${d.msg}`);
  }
  return [String(detail || `HTTP ${response.status}`)];
}

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

export const fmt = (value, digits = 4) =>
  value === null || value === undefined ? "—" : Number(value).toFixed(digits);
export const when = (iso) => (iso ? new Date(iso).toLocaleString() : "—");

// A left margin (px) that fits these axis labels, instead of Plotly's automargin (which
// lays the whole figure out twice).
export const leftMargin = (labels) => Math.min(320, 20 + 7 * Math.max(0, ...labels.map((l) => String(l).length)));

export const STAGE_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];
export const stageColor = (stage) => STAGE_COLORS[stage % STAGE_COLORS.length];

// Plotly.react with the dashboard's defaults (no mode bar logo, responsive), then
// onDrawn(element). Per-epoch lines leave `mode` unset: Plotly then draws markers only
// under 20 points, which keeps a 200-epoch curve one SVG path. A plot in the viewport is
// drawn at once; plots below it wait until the browser is first idle (the first screen
// painted, the other responses handled; at most IDLE_TIMEOUT_MS), then are drawn top
// first in tasks of about TASK_MS, each after a paint. A newer draw of a waiting plot
// replaces it.
const IDLE_TIMEOUT_MS = 200;
const TASK_MS = 50;
const waiting = new Map();
let pumping = false;
const whenIdle = window.requestIdleCallback
  ? (callback) => window.requestIdleCallback(callback, { timeout: IDLE_TIMEOUT_MS })
  : (callback) => setTimeout(callback, 50); // Safari
const afterPaint = (callback) => requestAnimationFrame(() => setTimeout(callback, 0));

function drawNow(element, traces, layout, onDrawn) {
  const base = { margin: { t: 30, r: 20, b: 50, l: 60 }, hovermode: "closest" };
  window.Plotly.react(element, traces, { ...base, ...layout }, { displaylogo: false, responsive: true });
  element.dataset.drawn = String(Number(element.dataset.drawn || 0) + 1);
  element.dataset.drawnAt = String(performance.now());
  if (onDrawn) onDrawn(element);
}

function inView(element) {
  const box = element.getBoundingClientRect();
  return box.bottom > 0 && box.top < window.innerHeight;
}

function pump() {
  const started = performance.now();
  const top = (element) => element.getBoundingClientRect().top;
  while (waiting.size && performance.now() - started < TASK_MS) {
    const next = [...waiting.keys()].sort((a, b) => top(a) - top(b))[0];
    const args = waiting.get(next);
    waiting.delete(next);
    drawNow(next, ...args);
  }
  if (waiting.size) afterPaint(pump);
  else pumping = false;
}

export function draw(element, traces, layout, onDrawn = null) {
  if (inView(element)) {
    waiting.delete(element);
    drawNow(element, traces, layout, onDrawn);
    return;
  }
  waiting.set(element, [traces, layout, onDrawn]);
  if (!pumping) {
    pumping = true;
    whenIdle(pump);
  }
}

// Load plotly.min.js (preloaded by the page's <link rel="preload">, beside this module) once;
// resolves when it ran. Pages start fetching their JSON first, so the data and plotly arrive
// together.
let plotlyLoading = null;
export function plotlyReady() {
  if (window.Plotly) return Promise.resolve();
  if (plotlyLoading === null) {
    plotlyLoading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = new URL("./plotly.min.js", import.meta.url).href;
      script.onload = resolve;
      script.onerror = () => reject(new Error("cannot load plotly.min.js"));
      document.head.append(script);
    });
  }
  return plotlyLoading;
}
