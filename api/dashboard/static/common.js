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

// Call onData(...results) now and every POLL_MS when any of the urls' ETags changed;
// each result is {changed, data}. Stops when stop() returns true.
export function poll(urls, onData, stop = () => false) {
  const list = Array.isArray(urls) ? urls : [urls];
  let busy = false;
  async function tick() {
    if (busy || document.hidden) return;
    busy = true;
    try {
      const results = await Promise.all(list.map(getJSON));
      if (results.some((r) => r.changed)) await onData(...results);
    } catch (error) {
      console.warn("poll:", error.message);
    } finally {
      busy = false;
    }
  }
  tick();
  const timer = setInterval(() => (stop() ? clearInterval(timer) : tick()), POLL_MS);
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

export const STAGE_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];
export const stageColor = (stage) => STAGE_COLORS[stage % STAGE_COLORS.length];

// Plotly.react with the dashboard's defaults (no mode bar logo, responsive).
export function draw(element, traces, layout) {
  const base = { margin: { t: 30, r: 20, b: 50, l: 60 }, hovermode: "closest" };
  window.Plotly.react(element, traces, { ...base, ...layout }, { displaylogo: false, responsive: true });
  element.dataset.drawn = String(Number(element.dataset.drawn || 0) + 1);
  element.dataset.drawnAt = String(performance.now());
}

// Load plotly.min.js (preloaded by the page's <link rel="preload">) once; resolves when it ran.
// Pages start fetching their JSON first, so the data and plotly arrive together.
let plotlyLoading = null;
export function plotlyReady() {
  if (window.Plotly) return Promise.resolve();
  if (plotlyLoading === null) {
    plotlyLoading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = "/static/plotly.min.js";
      script.onload = resolve;
      script.onerror = () => reject(new Error("cannot load plotly.min.js"));
      document.head.append(script);
    });
  }
  return plotlyLoading;
}
