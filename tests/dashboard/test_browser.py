"""The dashboard in Debian's Chromium against a real server, worker and search.

The tests share one server and one search and run in file order: sign-in while
the search runs, a page that updates itself, the pause / resume / cancel
buttons, then (once the search stopped) every page's figures against the
database, bad input, cross-site requests and sign-out.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from browser_tools import TOKEN, Dashboard, browser_spec, screenshot, watch
from service_tools import wait_for

from hpsearch.search.importance import MIN_RESULTS

pytestmark = pytest.mark.service
TIMEOUT_MS = 30_000


def completed(dashboard: Dashboard) -> int:
    return dashboard.storage.trial_counts(dashboard.search_id)["completed"]


def scatter_points(page: Any, param: str = "optimizer.learning_rate") -> int:
    return int(page.evaluate(
        "(param) => (document.getElementById('scatter').data || [])"
        ".filter(t => t.meta.param === param).reduce((n, t) => n + t.x.length, 0)", param,
    ))  # fmt: skip


def test_a_signed_out_visitor_is_sent_to_sign_in(page: Any, dashboard: Dashboard) -> None:
    page.goto(dashboard.url(f"/ui/searches/{dashboard.search_id}"))
    assert page.url == dashboard.url(f"/sign-in?next=/ui/searches/{dashboard.search_id}")
    screenshot(page, "sign-in")
    page.fill("#token", "not-the-token")
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#sign-in-error:has-text('not valid')")
    dashboard.problems.clear()  # the refused sign-in is an expected 401


def test_sign_in_keeps_the_token_out_of_urls_and_scripts(page: Any, dashboard: Dashboard) -> None:
    page.fill("#token", TOKEN)
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_url(dashboard.url(f"/ui/searches/{dashboard.search_id}"))
    cookie = next(c for c in page.context.cookies() if c["name"] == "hpsearch_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert TOKEN not in cookie["value"] and TOKEN not in page.url
    assert page.evaluate("document.cookie") == ""  # HttpOnly: invisible to scripts
    assert TOKEN not in page.content()


def test_an_open_page_shows_the_next_finished_trial_without_a_reload(
    page: Any, dashboard: Dashboard
) -> None:
    page.wait_for_function("document.getElementById('scatter').dataset.drawn", timeout=TIMEOUT_MS)
    page.evaluate("window.__notReloaded = true")
    before = completed(dashboard)
    try:
        wait_for(lambda: completed(dashboard) > before, 120, "the next trial to finish")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{dashboard.service.logs()[-3000:]}") from None
    after = completed(dashboard)
    page.wait_for_function(
        "(n) => document.querySelectorAll('#leaderboard tbody tr td:nth-child(3)').length > 0 &&"
        " [...document.querySelectorAll('#leaderboard tbody tr td:nth-child(3)')]"
        ".filter(td => td.textContent === 'completed').length >= n", arg=min(after, 20),
        timeout=TIMEOUT_MS,
    )  # fmt: skip
    wait_for(lambda: scatter_points(page) >= after, 30, "the scatter to gain the new trial")
    assert page.evaluate("window.__notReloaded === true")
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1


def test_the_importance_bars_show_once_enough_trials_completed(
    page: Any, dashboard: Dashboard
) -> None:
    importance = "document.getElementById('importance')"
    page.wait_for_function(f"{importance}.dataset.drawn", timeout=TIMEOUT_MS)
    wait_for(lambda: completed(dashboard) >= MIN_RESULTS, 180, f"{MIN_RESULTS} completed trials")
    page.wait_for_function(
        f"({importance}.data || []).length === 1 && {importance}.data[0].y.length === 2",
        timeout=TIMEOUT_MS,
    )  # one bar per searched parameter; compared with the API's numbers once the search stopped


def status_in_db(dashboard: Dashboard) -> str:
    return dashboard.storage.get_search(dashboard.search_id).status


def test_pause_resume_and_cancel_buttons_change_the_search_in_the_database(
    page: Any, dashboard: Dashboard
) -> None:
    search = dashboard.storage.get_search(dashboard.search_id)
    assert search.status == "running", (search.reason, dashboard.service.logs()[-3000:])
    for button, status in [("pause", "paused"), ("resume", "running"), ("cancel", "cancelled")]:
        page.wait_for_selector(f"#{button}:not([disabled])", timeout=TIMEOUT_MS)
        page.click(f"#{button}")
        wait_for(lambda s=status: status_in_db(dashboard) == s, 30, f"status {status}")
        page.wait_for_selector(f"#search-status:has-text('{status}')", timeout=TIMEOUT_MS)
    wait_for(
        lambda: dashboard.storage.trial_counts(dashboard.search_id)["running"] == 0,
        60, "the running trial to stop",
    )  # fmt: skip


def test_the_search_page_figures_hold_the_database_numbers(page: Any, dashboard: Dashboard) -> None:
    points = dashboard.storage.trial_points(dashboard.search_id)
    scored = [p for p in points if p.best_val_accuracy is not None]
    started = [p for p in points if p.started_at is not None]
    page.reload()
    page.wait_for_function(
        "(n) => document.getElementById('timeline').dataset.drawn &&"
        " document.getElementById('timeline').data"  # a bar: start, end, gap
        ".reduce((s, t) => s + t.x.filter(x => x === null).length, 0) === n",
        arg=len(started), timeout=TIMEOUT_MS,
    )  # fmt: skip
    wait_for(lambda: scatter_points(page) == len(scored), 30, "the scatter to match the database")
    assert scatter_points(page, "model.keep_prob") == len(scored)
    parallel = "document.getElementById('parallel')"
    assert page.evaluate(f"{parallel}.layout.meta.lines") == len(scored)
    segments = page.evaluate(
        f"{parallel}.data.reduce((n, t) => n + t.x.filter(x => x === null).length, 0)"
    )
    assert segments == len(scored)  # one polyline per trial, ended by a gap
    assert page.evaluate("document.getElementById('curves').data.length") == min(5, len(scored))
    scatter = page.evaluate("document.getElementById('scatter').layout")
    axes = {scatter[key]["title"]["text"]: scatter[key]["type"]
            for key in scatter if key.startswith("xaxis")}  # fmt: skip
    assert axes == {"optimizer.learning_rate": "log", "model.keep_prob": "linear"}
    stages = dashboard.storage.list_stages(dashboard.search_id)
    bands = [s for s in scatter["shapes"] if s["type"] == "rect"]
    assert len(bands) == sum(len(stage.space) for stage in stages)  # both parameters numeric
    borders = [s for s in scatter["shapes"] if s.get("name") == "border warning"]
    assert len(borders) == sum(len(stage.warnings) for stage in stages)
    learned = dashboard.api.get(f"/searches/{dashboard.search_id}/learned").json()["importance"]
    page.wait_for_function("document.getElementById('importance').dataset.drawn")
    bars = page.evaluate("document.getElementById('importance').data[0]")
    assert bars["y"] == list(learned) and bars["x"] == pytest.approx(list(learned.values()))
    screenshot(page, "search")
    assert dashboard.problems == []


def test_the_leaderboard_is_best_first_and_filters_by_status(
    page: Any, dashboard: Dashboard
) -> None:
    points = dashboard.storage.trial_points(dashboard.search_id)
    best = sorted((p.best_val_accuracy for p in points if p.best_val_accuracy is not None),
                  reverse=True)[:20]  # fmt: skip
    cells = "#leaderboard tbody tr td:nth-child(4)"
    shown = [float(text) for text in page.locator(cells).all_inner_texts()[: len(best)]]
    assert shown == pytest.approx(best, abs=5e-5)  # 4 decimals on the page
    page.select_option("#filter-status", "completed")
    done = sum(1 for p in points if p.status == "completed")
    page.wait_for_function(
        "(n) => { const s = [...document.querySelectorAll('#leaderboard tbody tr td:nth-child(3)')]"
        ".map(td => td.textContent); return s.length === n && s.every(t => t === 'completed'); }",
        arg=min(20, done),
    )  # fmt: skip
    page.select_option("#filter-status", "")
    assert dashboard.problems == []


def test_an_ensemble_built_from_the_page_shows_beside_the_best_single_model(
    page: Any, dashboard: Dashboard
) -> None:
    before = len(dashboard.storage.list_ensembles(dashboard.search_id))
    page.select_option("#ensemble-kind", "top_k")
    page.click("#build-ensemble")
    wait_for(
        lambda: [e.status for e in dashboard.storage.list_ensembles(dashboard.search_id)][before:]
        in (["completed"], ["failed"]),
        90, "the worker to build the requested ensemble",
    )  # fmt: skip
    ensembles = dashboard.storage.list_ensembles(dashboard.search_id)
    assert ensembles[-1].status == "completed", ensembles[-1].error
    built = sum(1 for e in ensembles if e.status == "completed")
    page.wait_for_function(
        "(n) => document.querySelectorAll('#ensembles tbody tr').length === n", arg=len(ensembles)
    )
    page.wait_for_function(
        "(n) => (document.getElementById('ensemble-chart').data || [{x: []}])[0].x.length === n",
        arg=built + 1,  # the best single model, then each built ensemble
    )
    labels = page.evaluate("document.getElementById('ensemble-chart').data[0].x")
    assert labels[0] == "best single" and labels[-1] == f"top_k #{ensembles[-1].id}"
    screenshot(page, "search-ensembles")
    assert dashboard.problems == []


def test_the_trial_page_figures_hold_the_database_numbers(page: Any, dashboard: Dashboard) -> None:
    trial_id = dashboard.storage.get_search(dashboard.search_id).best_trial_id or max(
        p.trial_id for p in dashboard.storage.trial_points(dashboard.search_id)
        if p.best_val_accuracy is not None
    )  # fmt: skip
    curves = dashboard.storage.trial_curves(trial_id)
    iterations = sum(len(epoch.stats["loss_history"]) for epoch in curves)
    page.goto(dashboard.url(f"/ui/trials/{trial_id}"))
    page.wait_for_function("document.getElementById('dead-relu').dataset.drawn", timeout=TIMEOUT_MS)
    page.wait_for_function(
        "document.querySelector('#first-layer img') &&"
        " document.querySelector('#first-layer img').naturalWidth > 0", timeout=TIMEOUT_MS,
    )  # fmt: skip
    read = lambda script: page.evaluate(script)  # noqa: E731
    assert read("document.getElementById('loss').data[0].x.length") == iterations
    assert read("document.getElementById('loss').data[1].x.length") == len(curves)
    assert read("document.getElementById('accuracy').data[1].y") == [e.val_accuracy for e in curves]
    assert read("document.getElementById('ratios').data.length") == 4  # W1 b1 W2 b2
    assert read("document.getElementById('activations').data.length") == 1
    assert read("document.getElementById('gradients').data.length") == 2
    heat = read("document.getElementById('gradients').data[0].z[0].length")
    assert heat == len(curves)
    dead = {layer for epoch in curves for layer in epoch.stats["dead_relu_fraction"]}
    traces = read("document.getElementById('dead-relu').data.map(t => [t.name, t.y.length])")
    assert traces == [[layer, len(curves)] for layer in sorted(dead)]
    page.check("#loss-log")
    page.wait_for_function("document.getElementById('loss').layout.yaxis.type === 'log'")
    page.wait_for_selector("#checkpoints a[download]")
    events = dashboard.api.get(f"/trials/{trial_id}").json()["events"]
    page.wait_for_function(
        "(n) => document.querySelectorAll('#events tbody tr').length === n", arg=len(events)
    )
    assert events and page.locator("#events tbody tr td:nth-child(2)").all_inner_texts() == [
        event["event"] for event in events
    ]
    screenshot(page, "trial")
    assert dashboard.problems == []


def test_the_searches_and_workers_pages_list_what_the_database_holds(
    page: Any, dashboard: Dashboard
) -> None:
    page.goto(dashboard.url("/"))
    count = len(dashboard.storage.list_searches(limit=100))
    page.wait_for_function(
        "(n) => document.querySelectorAll('#searches tbody tr').length === n", arg=count
    )
    row = page.locator(f"#searches tr[data-search-id='{dashboard.search_id}']")
    assert row.locator(".status").inner_text() == "cancelled"
    search = dashboard.storage.get_search(dashboard.search_id)
    used = dashboard.storage.epochs_trained(dashboard.search_id)
    assert row.locator(".bar").get_attribute("title") == f"{used} / {search.budget_epochs} epochs"
    counts = dashboard.storage.trial_counts(dashboard.search_id)
    states = row.locator("td:nth-child(5)").inner_text()
    assert states == ", ".join(f"{n} {status}" for status, n in counts.items() if n > 0)
    screenshot(page, "searches")
    page.goto(dashboard.url("/ui/workers"))
    workers = dashboard.storage.list_workers(60.0)
    page.wait_for_function(
        "(n) => document.querySelectorAll('#workers tbody tr').length === n", arg=len(workers)
    )
    done = page.locator("#workers tbody tr td:nth-child(4)").all_inner_texts()
    assert sum(int(text) for text in done) == sum(
        1
        for p in dashboard.storage.trial_points(dashboard.search_id)
        if p.finished_at and p.started_at
    )
    screenshot(page, "workers")
    assert dashboard.problems == []


def test_bad_input_through_the_pages_shows_a_message_and_changes_nothing(
    page: Any, dashboard: Dashboard
) -> None:
    searches = len(dashboard.storage.list_searches(limit=100))
    page.goto(dashboard.url("/"))
    bad = json.dumps(browser_spec(trials=0))
    page.set_input_files("#spec-file", files=[
        {"name": "bad.json", "mimeType": "application/json", "buffer": bad.encode()},
    ])  # fmt: skip
    page.click("#launch-form button[type=submit]")
    page.wait_for_selector("#launch-errors li:has-text('content.stages.0.trials')")
    assert len(dashboard.storage.list_searches(limit=100)) == searches
    page.goto(dashboard.url(f"/ui/searches/{dashboard.search_id}"))
    budget = dashboard.storage.get_search(dashboard.search_id).budget_epochs
    page.fill("#budget", "twelve")
    page.click("#set-budget")
    page.wait_for_selector("#controls-error:has-text('budget_epochs: must be a whole number')")
    assert dashboard.storage.get_search(dashboard.search_id).budget_epochs == budget
    page.goto(dashboard.url("/ui/trials/999999"))
    assert "trial 999999 does not exist" in page.inner_text("#page-error")
    expected = [f"HTTP 422: {dashboard.url('/search-specs')}",
                f"HTTP 404: {dashboard.url('/ui/trials/999999')}"]  # fmt: skip
    assert [p for p in dashboard.problems if p.startswith("HTTP")] == expected
    others = [p for p in dashboard.problems if not p.startswith("HTTP")]
    assert all(p.startswith("console: Failed to load resource") for p in others), others
    dashboard.problems.clear()


def test_a_cross_site_post_is_refused(browser: Any, page: Any, dashboard: Dashboard) -> None:
    search_id = dashboard.api.post("/searches", json=browser_spec(trials=2)).json()["id"]
    assert dashboard.api.post(f"/searches/{search_id}/pause").status_code == 200
    resume = dashboard.url(f"/searches/{search_id}/resume")
    # Another site (localhost is not 127.0.0.1) in the same signed-in browser context.
    other_site = page.context.new_page()
    other_site.goto(dashboard.url("/sign-in").replace("127.0.0.1", "localhost"))
    status = other_site.evaluate(
        "(url) => fetch(url, {method: 'POST', credentials: 'include'})"
        ".then(r => r.status, () => 'blocked')", resume,
    )  # fmt: skip
    assert status in (401, 403, "blocked")
    other_site.close()
    # Same site, with the session cookie but without the CSRF token: refused too.
    same_site = page.evaluate("(url) => fetch(url, {method: 'POST'}).then(r => r.status)", resume)
    assert same_site == 403
    assert dashboard.storage.get_search(search_id).status == "paused"
    dashboard.problems.clear()  # the refused requests are expected errors
    dashboard.api.post(f"/searches/{search_id}/cancel")


def test_sign_out_ends_the_session(page: Any, dashboard: Dashboard) -> None:
    page.goto(dashboard.url("/ui/workers"))
    page.click("#sign-out")
    page.wait_for_url(dashboard.url("/sign-in"))
    page.goto(dashboard.url("/"))
    assert page.url == dashboard.url("/sign-in?next=/")
    assert all(c["name"] != "hpsearch_session" for c in page.context.cookies())
    assert dashboard.problems == []


def test_a_fresh_context_watched_from_the_start_sees_no_problem(
    browser: Any, dashboard: Dashboard
) -> None:
    problems: list[str] = []
    context = browser.new_context()
    fresh = watch(context.new_page(), problems)
    fresh.goto(dashboard.url("/sign-in"))
    fresh.fill("#token", TOKEN)
    fresh.click("#sign-in-form button[type=submit]")
    fresh.wait_for_url(dashboard.url("/"))
    fresh.wait_for_selector("#searches tbody tr")
    context.close()
    assert problems == []
