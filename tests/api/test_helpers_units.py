"""Pure helpers of the API: downsampling, error locations, rate limiter, parameter estimate,
the cache of rendered answers, the leaderboard's JSON."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from api_helpers import tiny_spec
from fastapi import HTTPException
from pydantic import TypeAdapter

from api.auth import token_id
from api.errors import field_errors
from api.etag import RenderedCache
from api.limits import LaunchRateLimiter
from api.schemas import TrialPublic
from api.views import downsample, trial_list_json, trial_public
from hpsearch.admission import estimate_parameters, upper_bound
from hpsearch.db import TrialRecord
from hpsearch.search import parse_search_spec


def test_downsample_keeps_first_and_last_evenly() -> None:
    assert downsample(5, None) == [0, 1, 2, 3, 4]
    assert downsample(5, 10) == [0, 1, 2, 3, 4]
    assert downsample(5, 3) == [0, 2, 4]  # round(i * 4 / 2)
    assert downsample(10, 4) == [0, 3, 6, 9]  # round(i * 9 / 3)
    assert downsample(10, 1) == [9]
    assert downsample(0, 3) == []


def test_field_errors_name_the_field() -> None:
    message = "search 3: invalid spec\nstages.1.epochs: too many\nmodel.hidden_sizes[2]: too wide"
    assert field_errors(message) == [
        {"loc": ["body", "stages", 1, "epochs"], "msg": "too many", "type": "value_error"},
        {"loc": ["body", "model", "hidden_sizes", 2], "msg": "too wide", "type": "value_error"},
    ]
    assert field_errors("no field here") == [
        {"loc": ["body"], "msg": "no field here", "type": "value_error"}
    ]


def test_rate_limiter_refills_at_the_rate() -> None:
    now = [100.0]
    limiter = LaunchRateLimiter(rate_per_minute=2.0, clock=lambda: now[0])
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") == pytest.approx(30.0)  # one launch per 30 s
    assert limiter.acquire("b") == 0.0
    now[0] += 15.0
    assert limiter.acquire("a") == pytest.approx(15.0)
    now[0] += 15.0
    assert limiter.acquire("a") == 0.0
    with pytest.raises(HTTPException) as raised:
        limiter.check("a")
    assert raised.value.status_code == 429
    assert raised.value.headers == {"Retry-After": "30"}
    with pytest.raises(ValueError, match="rate_per_minute"):
        LaunchRateLimiter(0.0)


def test_token_id_is_short_and_not_the_token() -> None:
    assert token_id("secret") == "2bb80d537b1d"  # sha256("secret")[:12]
    assert "secret" not in token_id("secret")


def test_parameter_estimate_by_hand() -> None:
    spec = parse_search_spec(tiny_spec())
    # spiral: 2 inputs, 3 classes; one hidden layer of 16: (2*16 + 16) + (16*3 + 3) = 99.
    assert estimate_parameters(spec, [16], 2, 3) == 99
    raw = tiny_spec()
    raw["space"]["model.hidden_sizes.0"] = {"kind": "log_int", "low": 4, "high": 64}
    raw["base"]["model"]["activation"] = "maxout"
    raw["base"]["model"]["maxout_pieces"] = 3
    wide = parse_search_spec(raw)
    assert upper_bound(wide, "model.hidden_sizes.0", 16) == 64
    assert upper_bound(wide, "batch_size", 32) == 32
    # maxout: each hidden affine map has 3 pieces: (2*64 + 64) * 3 + (64*3 + 3) = 771.
    assert estimate_parameters(wide, [64], 2, 3) == 771


def test_rendered_cache_keeps_the_most_recently_used_within_its_bytes() -> None:
    cache = RenderedCache(max_bytes=10)
    cache.put("a", "tag-a", "aaaa")
    cache.put("b", "tag-b", "bbbb")
    assert cache.get("a") == ("tag-a", "aaaa")  # now the most recently used
    cache.put("c", "tag-c", "cccc")  # 12 bytes: the least recently used (b) goes
    assert (cache.get("b"), len(cache), cache.held_bytes) == (None, 2, 8)
    cache.put("a", "tag-a2", "a")  # replaced, not counted twice
    assert (cache.get("a"), cache.held_bytes) == (("tag-a2", "a"), 5)
    cache.put("big", "tag", "x" * 11)  # larger than the cap: nothing is kept
    assert (len(cache), cache.held_bytes) == (0, 0)


def test_the_leaderboards_json_is_the_bytes_of_its_schema() -> None:
    started = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    running = TrialRecord(
        id=7, search_id=2, stage=1, index=3, params={"optimizer.learning_rate": 1e-3, "n": 2},
        config={"epochs": 4}, train_seed=5, epochs=4, parent_trial_id=None, status="running",
        attempts=1, max_attempts=3, worker_id="w-1", heartbeat_at=started, enqueued_at=started,
        started_at=started, finished_at=None, best_val_accuracy=0.5, last_val_accuracy=0.25,
        last_epoch=2, error=None, failure_kind=None, cancel_requested=False,
    )  # fmt: skip
    failed = replace(running, id=8, status="failed", error='boom "quoted" \u00e9',
                     failure_kind="error", best_val_accuracy=None, last_val_accuracy=None,
                     last_epoch=None, parent_trial_id=7, finished_at=started,
                     cancel_requested=True)  # fmt: skip
    schema = TypeAdapter(list[TrialPublic])
    for result in ("best", "last"):
        trials = [running, failed]
        expected = schema.dump_json([trial_public(trial, result) for trial in trials])
        assert trial_list_json(trials, result) == expected
    assert trial_list_json([], "best") == b"[]"
