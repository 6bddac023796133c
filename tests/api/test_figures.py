"""The dashboard's server-side aggregation (api.figures), PNG mosaic and session cookies."""

from __future__ import annotations

import struct
import zlib
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from api.figures import (
    MAX_LOSS_POINTS,
    epoch_figures,
    search_points,
    timeline,
    worker_activity,
)
from api.images import mosaic, png_bytes
from api.session import SESSION_TTL_S, issue_session, read_session
from hpsearch.db.figures import TrialPoint, WorkerSpan
from hpsearch.db.records import EpochRecord

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def point(trial_id: int, accuracy: float | None, **changes: object) -> TrialPoint:
    fields: dict[str, object] = {
        "trial_id": trial_id, "stage": 0, "status": "completed", "params": {"lr": trial_id * 0.1},
        "best_val_accuracy": accuracy, "result_val_accuracy": accuracy, "last_epoch": 1,
        "worker_id": "w1",
        "started_at": None, "finished_at": None,
    }  # fmt: skip
    fields.update(changes)
    return TrialPoint(**fields)  # type: ignore[arg-type]


def test_search_points_are_columns_of_equal_length() -> None:
    points = [point(1, 0.5), point(2, None, params={"lr": 0.2, "width": 8})]
    columns = search_points(points, total=10)
    assert columns["total"] == 10 and columns["shown"] == 2
    assert columns["params"] == {"lr": [0.1, 0.2], "width": [None, 8]}
    assert columns["val_accuracy"] == [0.5, None]


def test_timeline_busy_share_is_busy_time_over_the_workers_span() -> None:
    bars = [point(2, 0.6, started_at=T0, finished_at=None), point(3, None, worker_id=None)]
    spans = [WorkerSpan("w1", 2, 20.0, T0, T0 + timedelta(seconds=30))]
    result = timeline(bars, spans, T0 + timedelta(seconds=30))
    assert result["total"] == 2
    assert [bar["trial_id"] for bar in result["bars"]] == [2]  # a bar needs a worker
    (share,) = result["workers"]
    assert share["trials"] == 2 and share["busy_s"] == 20.0
    assert share["busy_share"] == pytest.approx(20 / 30)


def test_worker_activity_counts_trials_since_the_worker_started() -> None:
    since = {"w1": T0 + timedelta(seconds=10), "w2": T0}
    rows = [
        ("w1", T0, T0 + timedelta(seconds=5)),  # before w1 (re)started: ignored
        ("w1", T0 + timedelta(seconds=10), T0 + timedelta(seconds=15)),
        ("w1", T0 + timedelta(seconds=16), None),  # running: busy until now, not done
    ]
    activity = worker_activity(rows, since, T0 + timedelta(seconds=20))
    assert activity["w1"]["trials_done"] == 1
    assert activity["w1"]["busy_share"] == pytest.approx((5 + 4) / 10)
    assert activity["w2"] == {"trials_done": 0, "busy_s": 0.0, "busy_share": 0.0}


def epoch(number: int, history: list[float], counts: list[int]) -> EpochRecord:
    stats = {
        "loss_history": history,
        "update_ratios": {"W1": 1e-3 * number},
        "dead_relu_fraction": {"layer1": 0.25},
        "activation_histograms": {"layer1": {"edges": [0.0, 1.0, 2.0], "counts": counts}},
    }
    return EpochRecord(1, number, 1.0, 1.1, 0.5, 0.4, None, 0.1, stats)


def test_epoch_figures_place_iterations_inside_their_epoch_and_normalise_histograms() -> None:
    figures = epoch_figures([epoch(1, [4.0, 2.0], [1, 3]), epoch(2, [1.0, 0.5], [2, 2])])
    assert figures["loss_per_iteration"] == {"x": [0.5, 1.0, 1.5, 2.0], "y": [4.0, 2.0, 1.0, 0.5]}
    assert figures["epoch"] == [1, 2]
    assert figures["update_ratios"] == {"W1": [1e-3, 2e-3]}
    assert figures["activation_histograms"]["layer1"]["fractions"] == [[0.25, 0.75], [0.5, 0.5]]
    assert figures["gradient_histograms"] == {}


def test_epoch_figures_decimate_long_loss_histories_to_bucket_means() -> None:
    records = [epoch(e, [float(e)] * 100, [1, 1]) for e in range(1, 51)]
    loss = epoch_figures(records)["loss_per_iteration"]
    assert len(loss["x"]) == len(loss["y"]) == MAX_LOSS_POINTS
    assert loss["y"][0] == 1.0 and loss["y"][-1] == 50.0


def test_mosaic_tiles_images_with_a_gap_and_png_decodes_to_the_same_pixels() -> None:
    images = np.stack([np.full((1, 2, 2), 50 * (i + 1), np.uint8) for i in range(3)])
    pixels = mosaic(images)
    assert pixels.shape == (5, 5, 3)
    assert pixels[0, 0, 0] == 50 and pixels[0, 3, 0] == 100 and pixels[3, 0, 0] == 150
    assert pixels[2].max() == 0 and pixels[3, 3:].max() == 0
    data = png_bytes(pixels)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (5, 5)
    idat_length = struct.unpack(">I", data[33:37])[0]
    rows = np.frombuffer(zlib.decompress(data[41 : 41 + idat_length]), np.uint8).reshape(5, 16)
    assert (rows[:, 0] == 0).all()
    assert np.array_equal(rows[:, 1:].reshape(5, 5, 3), pixels)


def test_png_refuses_non_rgb_input() -> None:
    with pytest.raises(ValueError, match="uint8"):
        png_bytes(np.zeros((2, 2), np.uint8))


def test_session_cookie_round_trips_and_refuses_forgery_expiry_and_revocation() -> None:
    token, other = b"a-long-secret-token", b"another-token"
    cookie, session = issue_session(token, now=1000.0)
    assert token.decode() not in cookie
    assert read_session(cookie, (other, token), now=1001.0) == session
    assert read_session(cookie, (other,), now=1001.0) is None  # token removed: session ends
    assert read_session(cookie, (token,), now=1000.0 + SESSION_TTL_S + 1) is None
    forged = cookie[:-1] + ("0" if cookie[-1] != "0" else "1")
    assert read_session(forged, (token,), now=1001.0) is None
    assert read_session("v1.x.y", (token,)) is None
    _, fresh = issue_session(token, now=1000.0)
    assert fresh.csrf_token != session.csrf_token
