"""Authentication, path traversal, SQL injection strings, body caps and pickled uploads."""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from api_helpers import TOKEN, tiny_spec, wait_for
from factories import new_trials
from fastapi.testclient import TestClient

from api.auth import check_serve_security
from api.main import create_app
from hpsearch.errors import ConfigError
from hpsearch.settings import Settings

pytestmark = pytest.mark.service

PROTECTED = [
    ("GET", "/searches"),
    ("POST", "/searches"),
    ("GET", "/searches/1"),
    ("PATCH", "/searches/1"),
    ("POST", "/searches/1/cancel"),
    ("POST", "/searches/1/pause"),
    ("POST", "/searches/1/resume"),
    ("GET", "/searches/1/trials"),
    ("GET", "/trials/1"),
    ("POST", "/trials/1/cancel"),
    ("POST", "/trials/1/requeue"),
    ("GET", "/trials/1/checkpoints/1"),
    ("GET", "/datasets"),
    ("POST", "/datasets?name=a.npz"),
    ("GET", "/workers"),
]


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_every_route_but_health_needs_a_valid_token(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bad = "not-the-token-7c1e"
    for method, path in PROTECTED:
        for headers in ({"Authorization": ""}, {"Authorization": f"Bearer {bad}"},
                        {"Authorization": f"Basic {TOKEN}"}):  # fmt: skip
            response = client.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.headers["WWW-Authenticate"] == "Bearer"
            assert bad not in response.text and TOKEN not in response.text
    health = client.get("/health", headers={"Authorization": ""})
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "database": "ok", "redis": "ok"}
    assert client.get("/searches").status_code == 200
    assert TOKEN not in caplog.text and bad not in caplog.text


def test_refuses_to_start_without_a_token(api_settings: Settings) -> None:
    with pytest.raises(ConfigError, match="api_tokens"):
        create_app(api_settings.model_copy(update={"api_tokens": []}))
    with pytest.raises(ConfigError, match=r"127\.0\.0\.1"):
        check_serve_security([], "0.0.0.0", insecure=True)
    check_serve_security([], "127.0.0.1", insecure=True)
    check_serve_security(["a-token"], "0.0.0.0", insecure=False)


def test_insecure_local_mode_needs_no_token(api_settings: Settings, executor: object) -> None:
    settings = api_settings.model_copy(update={"api_tokens": [], "api_master": False})
    app = create_app(settings, executor=executor, insecure=True)  # type: ignore[arg-type]
    with TestClient(app) as client:
        assert client.get("/searches").status_code == 200


@pytest.mark.parametrize(
    "raw_path",
    [
        "/datasets?name=../evil.npz",
        "/datasets?name=..%2Fevil.npz",
        "/datasets?name=%2e%2e%2fevil.npz",
        "/datasets?name=%2Fetc%2Fevil.npz",
        "/datasets?name=/tmp/evil.npz",
        "/datasets?name=sub/../../evil.npz",
        "/datasets?name=..%5Cevil.npz",
        "/datasets?name=.hidden.npz",
        "/datasets?name=evil.npz%00.txt",
    ],
)
def test_dataset_names_cannot_escape(
    client: TestClient, api_settings: Settings, raw_path: str
) -> None:
    body = npz_bytes(X=np.zeros((4, 2)), y=np.zeros(4, dtype=np.int64))
    response = client.post(
        raw_path, content=body, headers={"Content-Type": "application/octet-stream"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", "name"]
    root = Path(api_settings.data_root)
    assert not list(root.parent.rglob("evil.npz*"))
    assert client.get("/datasets").json() == []


@pytest.mark.parametrize(
    "path",
    [
        "/trials/{t}/checkpoints/..%2F..%2F..%2Fetc%2Fpasswd",
        "/trials/{t}/checkpoints/%2Fetc%2Fpasswd",
        "/trials/{t}/checkpoints/../../../../etc/passwd",
        "/trials/{t}/checkpoints/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/trials/{t}/checkpoints/1",
    ],
)
def test_checkpoint_downloads_cannot_escape(client: TestClient, path: str) -> None:
    storage = client.app.state.storage  # type: ignore[attr-defined]
    search = storage.create_search("traversal", {"stages": []}, seed=0)
    (trial,) = storage.add_trials(search.id, new_trials(1))
    # A forged row pointing outside the checkpoint root is refused too.
    storage.record_checkpoint(trial.id, 1, "../../../../etc/passwd", 0.5)
    response = client.get(path.format(t=trial.id))
    assert response.status_code in (404, 422), response.text
    assert "root:" not in response.text


def test_sql_injection_strings_are_plain_data(client: TestClient) -> None:
    name = "x'); DROP TABLE searches; --"
    launched = client.post("/searches", json=tiny_spec(name=name))
    assert launched.status_code == 201, launched.text
    search_id = launched.json()["id"]
    assert client.get(f"/searches/{search_id}").json()["name"] == name
    injections = [
        ("/searches", {"status": "running' OR '1'='1"}),
        (f"/searches/{search_id}/trials", {"status": "queued; DROP TABLE trials"}),
        (f"/searches/{search_id}/trials", {"order_by": "best_val_accuracy; DROP TABLE trials"}),
        (f"/searches/{search_id}/trials", {"stage": "0 OR 1=1"}),
        (f"/searches/{search_id}/trials", {"limit": "1; DELETE FROM trials"}),
        ("/datasets", {"name": "x'; --.npz"}),
    ]
    for path, params in injections:
        method = "POST" if path == "/datasets" else "GET"
        response = client.request(method, path, params=params, content=b"")
        assert response.status_code == 422, (path, params, response.text)
    assert client.get("/searches/1%20OR%201=1").status_code == 422
    listed = client.get("/searches").json()
    assert [search["name"] for search in listed] == [name]
    # The API's master queues the trials within a tick, once the sanity gate passed.
    trials = wait_for(client, f"/searches/{search_id}/trials", lambda body: len(body) >= 2)
    assert len(trials) == 2  # the concurrency, and no worker: nothing more


def test_two_megabyte_bodies_are_refused(client: TestClient) -> None:
    spec = tiny_spec(name="x" * 10)
    spec["padding"] = "y" * (2 * 1024 * 1024)
    response = client.post("/searches", json=spec)
    assert response.status_code == 413
    chunks = (b"{" if i == 0 else b" " * 65536 for i in range(33))
    streamed = client.post(
        "/searches", content=chunks, headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert client.get("/searches").json() == []


def test_upload_cap_is_its_own(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_upload_bytes=1000)
    body = npz_bytes(X=np.zeros((100, 10)), y=np.zeros(100, dtype=np.int64))
    response = client.post("/datasets?name=big.npz", content=body)
    assert response.status_code == 413
    streamed = client.post("/datasets?name=big.npz", content=iter([body[:600], body[600:]]))
    assert streamed.status_code == 413
    assert client.get("/datasets").json() == []


def test_pickled_and_malformed_uploads_are_refused(client: TestClient) -> None:
    pickled = npz_bytes(X=np.array([{"a": 1}, None], dtype=object), y=np.zeros(2))
    response = client.post("/datasets?name=pickled.npz", content=pickled)
    assert response.status_code == 422, response.text
    assert "pickled" in response.text
    for name, body in [
        ("text.npz", b"not a zip"),
        ("keys.npz", npz_bytes(A=np.zeros((3, 2)))),
        ("lengths.npz", npz_bytes(X=np.zeros((3, 2)), y=np.zeros(2))),
        ("nan.npz", npz_bytes(X=np.full((3, 2), np.nan), y=np.zeros(3))),
    ]:
        refused = client.post(f"/datasets?name={name}", content=body)
        assert refused.status_code == 422, (name, refused.text)
    assert client.get("/datasets").json() == []


def test_upload_list_and_use_a_dataset(client: TestClient) -> None:
    rng = np.random.default_rng(0)
    body = npz_bytes(X=rng.normal(size=(60, 5)), y=rng.integers(0, 3, size=60))
    created = client.post("/datasets?name=blobs-5d.npz", content=body)
    assert created.status_code == 201, created.text
    assert created.json()["arrays"] == {"X": [60, 5], "y": [60]}
    assert client.post("/datasets?name=blobs-5d.npz", content=body).status_code == 409
    assert [d["name"] for d in client.get("/datasets").json()] == ["blobs-5d.npz"]
    spec = tiny_spec()
    spec["base"]["data"] = {"source": "npz", "path": created.json()["path"]}
    assert client.post("/searches", json=spec).status_code == 201
    spec["base"]["data"] = {"source": "npz", "path": "../../../etc/passwd"}
    escaped = client.post("/searches", json=spec)
    assert escaped.status_code == 422
    assert "data" in str(escaped.json()["detail"])


def npz_declaring(shape: tuple[int, ...]) -> bytes:
    """An .npz whose X header declares `shape` of float64 but holds 8 bytes of data."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": shape}
    )
    labels = io.BytesIO()
    np.save(labels, np.zeros(shape[0] % 1000, dtype=np.int64))
    body = io.BytesIO()
    with zipfile.ZipFile(body, "w") as archive:
        archive.writestr("X.npy", header.getvalue() + b"\0" * 8)
        archive.writestr("y.npy", labels.getvalue())
    return body.getvalue()


@pytest.mark.parametrize(("shape", "size"), [((2**37, 7), "7.0 TiB"), ((2**31, 1), "16.0 GiB")])
def test_an_upload_declaring_a_huge_array_is_refused_for_that_reason(
    client: TestClient, shape: tuple[int, ...], size: str, caplog: pytest.LogCaptureFixture
) -> None:
    response = client.post("/datasets?name=huge.npz", content=npz_declaring(shape))
    assert response.status_code == 422, response.text
    assert f"key X declares shape {shape} of float64 ({size}) but holds 8 B" in response.text
    assert "pickled" not in response.text
    assert "MemoryError" not in caplog.text
    assert client.get("/datasets").json() == []


def test_listing_skips_datasets_that_resolve_outside_the_data_root(
    client: TestClient, tmp_path: Path
) -> None:
    root = client.app.state.settings.data_root  # type: ignore[attr-defined]
    outside = tmp_path / "outside.npz"
    outside.write_bytes(npz_bytes(X=np.zeros((7, 3)), y=np.zeros(7, dtype=np.int64)))
    folder = root / "datasets"
    folder.mkdir(exist_ok=True)
    (folder / "escape.npz").symlink_to(outside)
    (folder / "real.npz").write_bytes(npz_bytes(X=np.zeros((4, 2)), y=np.zeros(4, dtype=int)))
    (folder / "alias.npz").symlink_to(folder / "real.npz")
    listed = client.get("/datasets").json()
    assert [(d["name"], d["arrays"]["X"]) for d in listed] == [("alias.npz", [4, 2]),
                                                              ("real.npz", [4, 2])]  # fmt: skip
    assert "[7, 3]" not in str(listed)
