"""Dashboard page timings at 10,000 trials x 50 epochs in PostgreSQL, in headless Chromium.

Setup: a fresh PostgreSQL schema holding one search of 10,000 completed trials
(3 hyperparameters, 8 workers, start/finish times) x 50 epoch rows (500,000
rows, inserted server-side with generate_series); the LOADS trials whose pages
are timed carry full babysitting statistics in every epoch (200-point loss
history, update ratios, 60-bin activation and 33-bin gradient histograms of a
2-hidden-layer net, dead ReLUs), the other rows small ones. Served by
`hpsearch serve` as deployed (its own process, master off; api_latency.serve).

Measured in Debian's Chromium (Playwright, launched by its executable path),
signed in once, LOADS loads of each page: the time from navigation start to
the last of the page's plots drawn (each plot stamps `performance.now()` when
Plotly.react returns), and the first screen: the plots in the 1280x900
viewport drawn and the page's first table filled (plots below it are drawn
after it, one per task). Each load is broken down (medians, ms from
navigation start): HTML in, static files in (and how many were fetched
rather than taken from the cache), plotly.min.js evaluated, the slowest JSON
request's server time (request start to first byte), the last JSON in, and
the time spent in Plotly.react. The peer, in the same browser and run:
fetching the same JSON routes the page reads without the browser's cache
(no ETag revalidation: every route computed afresh, from the already-loaded
page, no drawing), which shows how much of a load is data and how much is
the page and drawing. Targets (p95): search page < 1 s, trial page < 0.5 s.

Run: python bench/dashboard.py [--database-url URL] [--loads 20]
(default URL: HPSEARCH_TEST_POSTGRES_URL or postgresql+psycopg://postgres@127.0.0.1:5432/test)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
from typing import Any

from api_latency import DEFAULT_URL, EPOCHS, TOKEN, TRIALS, fresh_schema, percentile, serve
from playwright.sync_api import Page, sync_playwright
from sqlalchemy import text

from hpsearch.db import NewTrial, Storage, open_storage

CHROMIUM = os.environ.get("HPSEARCH_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
SPACE = {
    "optimizer.learning_rate": {"kind": "log_uniform", "low": 1e-5, "high": 1e-1},
    "model.l2": {"kind": "log_uniform", "low": 1e-6, "high": 1e-1},
    "model.keep_prob": {"kind": "uniform", "low": 0.3, "high": 1.0},
}
PARAMS = ("W1", "b1", "W2", "b2", "W3", "b3")
SEARCH_PLOTS = ("importance", "scatter", "parallel", "curves", "timeline")
TRIAL_PLOTS = ("loss", "accuracy", "ratios", "activations", "gradients", "dead-relu")


def full_stats(rng: random.Random) -> dict[str, Any]:
    """One epoch's statistics as the trainer records them for a 64-100-100-10 ReLU net."""
    activation_edges = [-3 + 0.1 * i for i in range(61)]
    gradient_edges = [-(10.0 ** (-i / 2)) for i in range(17)] + [
        10.0 ** (-i / 2) for i in range(16, -1, -1)
    ]
    histogram = lambda edges: {  # noqa: E731
        "edges": edges, "counts": [rng.randrange(1000) for _ in edges[1:]],
        "underflow": 0, "overflow": 0, "nan": 0, "sampled": 1000, "size": 1000,
    }  # fmt: skip
    return {
        "loss_history": [rng.uniform(0.1, 2.3) for _ in range(200)],
        "update_ratios": {name: 10 ** rng.uniform(-4, -2) for name in PARAMS},
        "activation_histograms": {f"layer{i}": histogram(activation_edges) for i in (1, 2)},
        "gradient_histograms": {f"layer{i}": histogram(gradient_edges) for i in (1, 2, 3)},
        "dead_relu_fraction": {"layer1": rng.random() / 10, "layer2": rng.random() / 10},
        "iterations": 23, "duration_s": 0.05,
    }  # fmt: skip


def populate(storage: Storage, loads: int) -> tuple[int, list[int]]:
    """The search (TRIALS trials x EPOCHS epochs); returns its id and the trials to time."""
    spec = {
        "name": "bench-dashboard",
        "space": SPACE,
        "stages": [{"trials": TRIALS, "epochs": EPOCHS}],
    }
    search = storage.create_search("bench-dashboard", spec, seed=0, concurrency=8)
    storage.record_stage(search.id, 0, SPACE, [])
    rng = random.Random(0)
    for start in range(0, TRIALS, 1000):
        batch = [
            NewTrial(stage=0, index=i, train_seed=i, epochs=EPOCHS, config={"epochs": EPOCHS},
                     params={"optimizer.learning_rate": 10 ** rng.uniform(-5, -1),
                             "model.l2": 10 ** rng.uniform(-6, -1),
                             "model.keep_prob": rng.uniform(0.3, 1)})
            for i in range(start, start + 1000)
        ]  # fmt: skip
        storage.add_trials(search.id, batch)
    with storage.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO epoch_metrics (trial_id, epoch, train_loss, val_loss, "
                "train_accuracy, val_accuracy, ema_val_accuracy, learning_rate, stats, created_at) "
                "SELECT t.id, e, 2.3 / e, 2.4 / e, random(), random(), NULL, 0.001, "
                'CAST(\'{"dead_relu_fraction": {"layer1": 0.1}}\' AS JSON), now() '
                "FROM trials t CROSS JOIN generate_series(1, :epochs) AS e WHERE t.search_id = :s"
            ),
            {"epochs": EPOCHS, "s": search.id},
        )
        connection.execute(
            text(
                "UPDATE trials SET status = 'completed', attempts = 1, last_epoch = :epochs, "
                "worker_id = 'worker-' || (trials.index % 8), "
                "started_at = now() - make_interval(secs => :trials - trials.index), "
                "finished_at = now() - make_interval(secs => :trials - trials.index - 7), "
                "best_val_accuracy = m.best FROM (SELECT trial_id, max(val_accuracy) AS best "
                "FROM epoch_metrics GROUP BY trial_id) m WHERE m.trial_id = trials.id"
            ),
            {"epochs": EPOCHS, "trials": TRIALS},
        )
        timed = [row[0] for row in connection.execute(
            text("SELECT id FROM trials WHERE search_id = :s ORDER BY random() LIMIT :n"),
            {"s": search.id, "n": loads},
        )]  # fmt: skip
        for trial_id in timed:
            for epoch in range(1, EPOCHS + 1):
                connection.execute(
                    text("UPDATE epoch_metrics SET stats = CAST(:stats AS JSON) "
                         "WHERE trial_id = :t AND epoch = :e"),
                    {"stats": json.dumps(full_stats(rng)), "t": trial_id, "e": epoch},
                )  # fmt: skip
        connection.execute(text("ANALYZE"))
    return search.id, timed


# Installed before any page script: stamps when plotly.min.js finished evaluating, times
# every Plotly.react, and stamps (checked once per frame) when the page's first table has
# rows: the leaderboard on a search page, the trial's facts on a trial page.
PROBE = """
(() => {
  const trialPage = location.pathname.startsWith("/ui/trials/");
  const table = trialPage ? "#trial-facts dt" : "#leaderboard tbody tr";
  let plotly;
  window.__probe = { plotlyAt: null, drawMs: 0, filledAt: null, each: {} };
  Object.defineProperty(window, "Plotly", { configurable: true, get: () => plotly, set(value) {
    window.__probe.plotlyAt = performance.now();
    const react = value.react;
    value.react = (...args) => {
      const started = performance.now();
      const result = react.apply(value, args);
      const ms = performance.now() - started;
      window.__probe.drawMs += ms;
      window.__probe.each[args[0].id] = (window.__probe.each[args[0].id] || 0) + ms;
      return result;
    };
    plotly = value;
  } });
  const check = () => {
    if (document.querySelector(table)) window.__probe.filledAt = performance.now();
    else requestAnimationFrame(check);
  };
  requestAnimationFrame(check);
})();
"""
# What a load took, read from the page: Chrome's navigation and resource timing entries
# (server time = request start to first byte) and the probe's stamps.
REPORT = """(plots) => {
  const nav = performance.getEntriesByType("navigation")[0];
  const resources = performance.getEntriesByType("resource");
  const api = resources.filter((r) => !r.name.includes("/static/"));
  const statics = resources.filter((r) => r.name.includes("/static/"));
  const drawn = plots.map((id) => document.getElementById(id));
  const inView = drawn.filter((e) => e.getBoundingClientRect().top < window.innerHeight);
  const probe = window.__probe;
  return {
    all: Math.max(...drawn.map((e) => +e.dataset.drawnAt)),
    first: Math.max(probe.filledAt, ...inView.map((e) => +e.dataset.drawnAt)),
    html: nav.responseEnd,
    statics: Math.max(0, ...statics.map((r) => r.responseEnd)),
    static_requests: statics.filter((r) => r.transferSize > 0).length,
    server: Math.max(...api.map((r) => r.responseStart - r.requestStart)),
    data: Math.max(...api.map((r) => r.responseEnd)),
    plotly: probe.plotlyAt,
    draw: probe.drawMs,
    ...Object.fromEntries(Object.entries(probe.each).map(([id, ms]) => [`draw:${id}`, ms])),
  };
}"""
PARTS = (
    ("first", "first screen"),
    ("html", "HTML in"),
    ("statics", "static files in"),
    ("plotly", "plotly evaluated"),
    ("server", "slowest JSON on the server"),
    ("data", "last JSON in"),
    ("draw", "drawing (sum)"),
)


def load(page: Page, url: str, plots: tuple[str, ...]) -> dict[str, float]:
    """Load `url`; ms from navigation start to each part of the load (see REPORT)."""
    page.goto(url)
    ready = " && ".join(f"document.getElementById('{p}').dataset.drawnAt" for p in plots)
    page.wait_for_function(f"window.__probe.filledAt && {ready}", timeout=60_000)
    return {key: float(value) for key, value in page.evaluate(REPORT, list(plots)).items()}


def fetch_ms(page: Page, urls: list[str]) -> dict[str, float]:
    """ms to fetch `urls` together from the current page, bypassing the browser's cache
    (the peer: data, no drawing): {"all": the whole, url: each one}."""
    script = (
        "async (urls) => { const t = performance.now(); const each = {};"
        " await Promise.all(urls.map(u => fetch(u, {cache: 'no-store'}).then(r => r.json())"
        ".then(() => { each[u] = performance.now() - t; })));"
        " return {all: performance.now() - t, ...each}; }"
    )
    return {key: float(value) for key, value in page.evaluate(script, urls).items()}


def report(
    name: str, loads: list[dict[str, float]], peer: list[dict[str, float]], target_ms: float
) -> str:
    """The page's p50 / p95 (navigation start to every plot drawn), its peer with each
    route's median, and the median of each part of a load."""
    timings = [load["all"] for load in loads]
    p50, p95 = percentile(timings, 50), percentile(timings, 95)
    peer50 = statistics.median(fetch["all"] for fetch in peer)
    label = lambda url: url.split("/", 3)[3] if url.count("/") > 2 else "detail"  # noqa: E731
    by_route = [{label(url): ms for url, ms in fetch.items() if url != "all"} for fetch in peer]
    routes = ", ".join(
        f"{route} {statistics.median(fetch[route] for fetch in by_route):.0f}"
        for route in by_route[0]
    )
    verdict = "met" if p95 < target_ms else "MISSED"
    first = [load["first"] for load in loads]
    parts = ", ".join(
        f"{label} {statistics.median(load[key] for load in loads):.0f}" for key, label in PARTS
    )
    fetched = [load["static_requests"] for load in loads]
    each = ", ".join(
        f"{key[5:]} {statistics.median(load.get(key, 0.0) for load in loads):.0f}"
        for key in sorted(k for k in loads[0] if k.startswith("draw:"))
    )
    return (
        f"{name:<12} p50 {p50:6.0f} ms  p95 {p95:6.0f} ms  | peer (its JSON only) p50 "
        f"{peer50:5.0f} ms, page p50 / peer = {p50 / peer50:4.1f}x  "
        f"target p95 < {target_ms:.0f} ms: {verdict}\n"
        f"{'':<12} first screen p50 {percentile(first, 50):4.0f} ms  p95 "
        f"{percentile(first, 95):4.0f} ms; medians (ms from navigation start): {parts}; "
        f"static files fetched per load: median {statistics.median(fetched):.0f}, "
        f"most {max(fetched):.0f}\n"
        f"{'':<12} drawing per plot (ms, medians): {each}\n"
        f"{'':<12} peer per route (ms, uncached, fetched together): {routes}"
    )


def measure(base: str, search_id: int, trial_ids: list[int]) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.add_init_script(PROBE)
        page.goto(f"{base}/sign-in")
        page.fill("#token", TOKEN)
        page.click("#sign-in-form button[type=submit]")
        page.wait_for_url(f"{base}/")
        search_url = f"{base}/ui/searches/{search_id}"
        load(page, search_url, SEARCH_PLOTS)  # warm-up: caches plotly.min.js
        search_json = [
            f"/searches/{search_id}{s}"
            for s in ("", "/points", "/curves", "/timeline", "/learned", "/ensembles")
        ]
        search_loads, search_peer = [], []
        for _ in trial_ids:
            search_loads.append(load(page, search_url, SEARCH_PLOTS))
            search_peer.append(fetch_ms(page, search_json))
        trial_loads, trial_peer = [], []
        for trial_id in trial_ids:
            trial_loads.append(load(page, f"{base}/ui/trials/{trial_id}", TRIAL_PLOTS))
            trial_peer.append(
                fetch_ms(page, [f"/trials/{trial_id}", f"/trials/{trial_id}/figures"])
            )
        browser.close()
    print(report("search page", search_loads, search_peer, 1000))
    print(report("trial page", trial_loads, trial_peer, 500))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--loads", type=int, default=20)
    args = parser.parse_args()
    with fresh_schema(args.database_url) as url:
        storage = open_storage(url)
        try:
            search_id, trial_ids = populate(storage, args.loads)
        finally:
            storage.close()
        print(f"{TRIALS} trials x {EPOCHS} epochs stored; {args.loads} loads per page")
        with tempfile.TemporaryDirectory() as home, serve(url, home, api_workers=1) as service:
            measure(service.base, search_id, trial_ids)


if __name__ == "__main__":
    main()
