"""The dashboard: server-rendered pages over the public JSON API, served by `hpsearch serve`.

    /                    searches: status, progress, best accuracy; launch from a spec file
    /ui/searches/{id}    one search: leaderboard, importance bars, hyperparameter scatter
                         with stage ranges and border warnings, best curves, parallel
                         coordinates, worker timeline,
                         ensembles beside the best single model, pause / resume / cancel / budget
    /ui/trials/{id}      one trial: loss, accuracies, update ratios, histograms, dead ReLUs,
                         first-layer weights, status, checkpoints
    /ui/workers          workers: alive or stale, current trial, trials done, share busy
    /sign-in             a token for an HttpOnly session cookie (`api.session`)

Each page is a Jinja2 template in `templates/` plus one small ES module per
figure in `static/`, fetching the same JSON routes a REST client uses (with
the session cookie; unsafe requests add the page's CSRF token). plotly.js is
the `plotly.min.js` bundled in the installed `plotly` package: no CDN, no
build step. Static files live under `/static/<version>/` (immutable caching).
Pages poll their JSON with `fetch(..., {cache: "no-cache"})`, so an unchanged
figure costs a 304 and is not redrawn.
"""

from api.dashboard.pages import router

__all__ = ["router"]
