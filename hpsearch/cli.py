"""The `hpsearch` command.

    hpsearch train CONFIG.toml          train one configuration, checkpoint every epoch
    hpsearch predict CHECKPOINT DATA    predict with a checkpoint (or an ensemble file) alone
    hpsearch check CONFIG.toml          gradient check + sanity checks (notes, part 3)
    hpsearch run SEARCH.toml            a whole search on this machine
    hpsearch plan SEARCH.toml           the stages or rungs a search would run (runs nothing)
    hpsearch submit SEARCH.toml         store a search for a running master and its workers
    hpsearch status SEARCH_ID           progress and leaderboard of a search
    hpsearch ensemble SEARCH_ID --kind  build one ensemble of a search (by a worker)
    hpsearch worker                     serve trials (RQ with HPSEARCH_REDIS_URL, else local)
    hpsearch master                     advance every running search and reap stale trials
    hpsearch serve                      the REST API (and, by default, the master) with uvicorn
    hpsearch dashboard                  the API and its dashboard on 127.0.0.1, a fresh token

Settings come from `HPSEARCH_*` environment variables (`hpsearch.settings`).
Errors in user input print one clear message and exit with status 2.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
import typer
from rich.console import Console

from hpsearch import report
from hpsearch.errors import HpsearchError, NotFoundError
from hpsearch.logs import configure_logging

if TYPE_CHECKING:
    from api.dashboard.serve import DashboardThread
    from hpsearch.settings import Settings

__all__ = ["app"]

KEEP_ALIVE_S = 75  # longer than clients keep idle connections: no close racing a request
app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console(stderr=True)

ConfigPath = Annotated[Path, typer.Argument(help="TOML file", exists=False)]
JsonFlag = Annotated[bool, typer.Option("--json", help="print one JSON document")]


def _fail(error: Exception) -> typer.Exit:
    console.print(f"[bold red]error:[/] {error}", highlight=False)
    return typer.Exit(2)


@app.command()
def train(
    config_path: ConfigPath,
    as_json: JsonFlag = False,
    out: Annotated[str | None, typer.Option(help="checkpoint folder under the root")] = None,
) -> None:
    """Train one configuration with a live progress bar; checkpoint every epoch."""
    from hpsearch.checkpoints import FileSystemCheckpointStorage
    from hpsearch.config import load_train_config
    from hpsearch.settings import get_settings
    from hpsearch.training import CheckpointTarget, prepare, run_training

    settings = get_settings()
    try:
        config = load_train_config(config_path)
        prepared = prepare(config, settings.data_root)
        storage = FileSystemCheckpointStorage(settings.resolved_checkpoint_root)
        key_dir = out or f"train_{time.strftime('%Y%m%d-%H%M%S')}"
        target = CheckpointTarget(storage, key_dir)
        with report.TrainProgress(console, config.epochs, disable=as_json) as progress:
            _, result = run_training(config, prepared, target=target, on_epoch=progress.epoch)
    except (HpsearchError, ValueError) as error:
        raise _fail(error) from error
    storage.prune(key_dir, keep_best=3)
    best = storage.list(key_dir)[0]
    summary = report.train_summary(
        config, result, settings.resolved_checkpoint_root / key_dir / best
    )
    report.print_summary(summary, as_json)


@app.command()
def predict(
    checkpoint: Annotated[Path, typer.Argument(help="a checkpoint .npz")],
    data: Annotated[str, typer.Argument(help=".npz or .csv, under the data root")],
    output: Annotated[Path | None, typer.Option(help="write predictions here (.npy)")] = None,
    ema: Annotated[bool, typer.Option(help="use the running-average parameters")] = False,
    split: Annotated[
        Literal["train", "val", "test"] | None,
        typer.Option(help="score X_<split> (and y_<split>) of an .npz holding splits"),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Predict with a checkpoint or an ensemble file alone; prints accuracy when DATA has labels.

    An .npz is scored on X (and y); with --split, on X_train / X_val / X_test
    (and its labels); a file without X and without --split is scored on its
    test split X_test. The output names the split and the arrays scored.
    """
    from hpsearch.data.inputs import read_prediction_inputs
    from hpsearch.settings import get_settings

    try:
        loaded, predict_with = _predictor(checkpoint, ema)
        inputs = read_prediction_inputs(
            get_settings().data_root, data, loaded.config, loaded.class_names, split
        )
        predictions = predict_with(inputs.X)
    except (HpsearchError, ValueError) as error:
        raise _fail(error) from error
    if output is not None:
        np.save(output, predictions, allow_pickle=False)
    y = inputs.y
    accuracy = None if y is None else float(np.mean(np.all(
        (predictions == y).reshape(len(y), -1), axis=1)))  # fmt: skip
    result = {
        "split": inputs.split,
        "scored": inputs.scored,
        "examples": len(inputs.X),
        "accuracy": accuracy,
        "output": str(output) if output else None,
    }
    if not as_json and output is None:
        result["predictions"] = predictions.tolist()[:20]
    report.print_summary(result, as_json)


def _predictor(path: Path, ema: bool) -> tuple[Any, Callable[[np.ndarray], np.ndarray]]:
    """(a member model for the input format, the predict function) of a checkpoint or an
    ensemble file."""
    from hpsearch.checkpoints import load_checkpoint
    from hpsearch.ensembles import ensemble_from_checkpoint, is_ensemble
    from hpsearch.training import load_model

    record = load_checkpoint(path)
    if not is_ensemble(record):
        loaded = load_model(record, use_ema=ema)
        return loaded, loaded.predict
    if ema:
        raise ValueError("--ema: an ensemble file's members are used as stored")
    ensemble = ensemble_from_checkpoint(record)
    return ensemble.models[0], ensemble.predict


@app.command()
def check(config_path: ConfigPath, as_json: JsonFlag = False) -> None:
    """Run the gradient check and the sanity checks on a configuration."""
    from hpsearch.checks import run_checks
    from hpsearch.config import load_train_config
    from hpsearch.settings import get_settings

    try:
        config = load_train_config(config_path)
        results = run_checks(config, get_settings().data_root)
    except (HpsearchError, ValueError) as error:
        raise _fail(error) from error
    report.print_checks(console, results, as_json)
    if not results["passed"]:
        raise typer.Exit(1)


@app.command()
def run(
    spec_path: ConfigPath,
    workers: Annotated[int, typer.Option(min=1, max=256, help="worker processes")] = 2,
    as_json: JsonFlag = False,
    dashboard: Annotated[
        bool, typer.Option(help="serve the dashboard on 127.0.0.1 while the search runs")
    ] = False,
    dashboard_port: Annotated[int, typer.Option(min=1, max=65535)] = 8080,
) -> None:
    """Run a whole coarse-to-fine search on this machine and print the leaderboard.

    Exits 2 when the spec or its data is refused (nothing is stored), 1 when
    the search ends other than `completed`.
    """
    from hpsearch.admission import admit_search
    from hpsearch.db import open_storage
    from hpsearch.executors import make_executor
    from hpsearch.master import create_search
    from hpsearch.runner import WorkerPool, prepare_for_workers, supervise
    from hpsearch.search import load_search_spec
    from hpsearch.settings import get_settings

    settings = get_settings()
    # The progress display owns the terminal: only warnings and errors are logged
    # (by this process and the worker processes it starts) unless asked otherwise.
    os.environ.setdefault("HPSEARCH_LOG_LEVEL", "warning")
    configure_logging(settings.log_format, os.environ["HPSEARCH_LOG_LEVEL"])
    pool = WorkerPool(workers, settings.redis_url)
    pool.ensure()  # they import while the data is checked and prepared and the search stored
    try:
        spec = load_search_spec(spec_path)
        admit_search(spec, settings)
        settings.home.mkdir(parents=True, exist_ok=True)
        prepare_for_workers(spec, settings)
        storage = open_storage(settings.resolved_database_url)
        executor = make_executor(settings.redis_url)
        search_id = create_search(storage, spec, executor)
    except (HpsearchError, ValueError) as error:
        pool.stop()
        raise _fail(error) from error
    pool.serve(search_id)
    server = _start_dashboard(settings, dashboard_port) if dashboard else None
    try:
        with report.SearchProgress(console, spec, disable=as_json) as progress:
            final = supervise(storage, executor, settings, search_id, pool, progress.update)
    except KeyboardInterrupt:
        console.print(f"interrupted; search {search_id} stays in the database")
        raise typer.Exit(130) from None
    finally:
        pool.stop()
    report.print_search(console, storage, final.search, settings, as_json)
    if server is not None:
        console.print("search finished; the dashboard stays up until Ctrl-C")
        _wait_for_interrupt(server)
    if final.search.status != "completed":
        console.print(
            f"[bold red]search {search_id} {final.search.status}:[/] {final.search.reason}",
            highlight=False,
        )
        raise typer.Exit(1)


def _start_dashboard(settings: Settings, port: int) -> DashboardThread:
    """The dashboard beside a running search (its master is this process: api_master off)."""
    from api.dashboard.serve import DashboardThread, announce, with_fresh_token

    dashboard_settings, token = with_fresh_token(settings, api_master=False)
    try:
        server = DashboardThread(dashboard_settings, port).start()
    except HpsearchError as error:
        raise _fail(error) from error
    typer.echo(announce(port, token))
    return server


def _wait_for_interrupt(server: DashboardThread) -> None:
    try:
        while server.thread.is_alive():
            server.thread.join(0.5)
    except KeyboardInterrupt:
        server.stop()


@app.command()
def plan(spec_path: ConfigPath, as_json: JsonFlag = False) -> None:
    """Print the plan a search spec gets (hand-written stages or the automatic rungs)."""
    from hpsearch.search import load_search_spec

    try:
        spec = load_search_spec(spec_path)
    except (HpsearchError, ValueError) as error:
        raise _fail(error) from error
    if as_json:
        stages = [stage.model_dump(mode="json") for stage in spec.plan]
        rungs = None if spec.auto_plan is None else [vars(r) for r in spec.auto_plan.rungs]
        document = {"budget_epochs": spec.budget, "automatic": rungs is not None, "eta": spec.eta}
        print(json.dumps(document | {"rungs": rungs, "stages": stages}, indent=2))
        return
    for line in spec.plan_lines():
        print(line)


@app.command()
def submit(spec_path: ConfigPath) -> None:
    """Store a search in the configured database for a running master and its workers."""
    from hpsearch.admission import admit_search
    from hpsearch.db import open_storage
    from hpsearch.executors import make_executor
    from hpsearch.master import create_search
    from hpsearch.search import load_search_spec
    from hpsearch.settings import get_settings

    settings = get_settings()
    try:
        spec = load_search_spec(spec_path)
        admit_search(spec, settings)
        storage = open_storage(settings.resolved_database_url)
        search_id = create_search(storage, spec, make_executor(settings.redis_url))
    except (HpsearchError, ValueError) as error:
        raise _fail(error) from error
    typer.echo(json.dumps({"search_id": search_id}))


@app.command()
def status(
    search_id: int,
    trial: Annotated[int | None, typer.Option(help="show this trial's event history")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show a search's progress, stages, border warnings, leaderboard and recent trial events."""
    from hpsearch.db import open_storage
    from hpsearch.settings import get_settings

    settings = get_settings()
    try:
        storage = open_storage(settings.resolved_database_url)
        search = storage.get_search(search_id)
        if trial is not None and storage.get_trial(trial).search_id != search_id:
            raise NotFoundError(f"trial {trial} is not a trial of search {search_id}")
        events = storage.trial_events(trial) if trial is not None else None
    except HpsearchError as error:
        raise _fail(error) from error
    if events is None:
        report.print_search(console, storage, search, settings, as_json)
    elif as_json:
        typer.echo(json.dumps({"trial_id": trial, "events": [vars(e) for e in events]},
                              default=str))  # fmt: skip
    else:
        report.print_events(console, events, f"trial {trial}: every state change")


@app.command()
def ensemble(
    search_id: int,
    kind: Annotated[str, typer.Option(help="seeds | top_k | snapshots | polyak | greedy")],
    size: Annotated[int | None, typer.Option(min=1, help="members (greedy: most picks)")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Build one ensemble of a search's checkpoints (a worker builds it) and print it."""
    from hpsearch.db import open_storage
    from hpsearch.executors import make_executor
    from hpsearch.master import search_spec, seed_stage_of
    from hpsearch.runner import WorkerPool, wait_for_ensembles
    from hpsearch.settings import get_settings

    settings = get_settings()
    try:
        storage = open_storage(settings.resolved_database_url)
        stage = seed_stage_of(search_spec(storage, search_id))
        record = storage.request_ensemble(search_id, kind, size, seed_stage=stage)
    except (HpsearchError, ValueError) as error:
        raise _fail(error) from error
    make_executor(settings.redis_url).enqueue_ensembles([record.id])
    pool = None if settings.redis_url else WorkerPool(1, None)
    if pool is None:
        console.print(f"ensemble {record.id} queued; waiting for a worker to build it")
    else:
        pool.serve(search_id)
    try:
        final = wait_for_ensembles(storage, [record.id], pool)
    finally:
        if pool is not None:
            pool.stop()
    row = report.ensemble_row(final[0], settings)
    if as_json:
        typer.echo(json.dumps(row, default=str))
    else:
        console.print(report.ensemble_table([row]))
        console.print(f"ensemble file: {row['path']}")
    if final[0].status != "completed":
        raise typer.Exit(1)


@app.command()
def worker(
    local: Annotated[bool, typer.Option(help="poll the database instead of RQ")] = False,
    burst: Annotated[bool, typer.Option(help="RQ: exit when the queue is empty")] = False,
) -> None:
    """Serve trials: from RQ when HPSEARCH_REDIS_URL is set (or --local: the database)."""
    from hpsearch.settings import get_settings
    from worker.main import local_worker_loop, run_rq_worker

    try:
        if local or not get_settings().redis_url:
            local_worker_loop(None, exit_when_done=False)
        else:
            run_rq_worker(burst=burst)
    except HpsearchError as error:
        raise _fail(error) from error


@app.command()
def master(
    tick_s: Annotated[float, typer.Option(min=0.05, help="seconds between passes")] = 1.0,
) -> None:
    """Advance every running search and reap stale trials, forever."""
    from hpsearch.master import run_master_loop

    configure_logging()
    try:
        run_master_loop(tick_s)
    except HpsearchError as error:
        raise _fail(error) from error


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="API processes (the master runs in one)")
    ] = 1,
    insecure: Annotated[
        bool, typer.Option(help="allow no API token (127.0.0.1 only): local use")
    ] = False,
) -> None:
    """Serve the REST API (api.main:serve_app) with uvicorn; refuses to start without a token."""
    import uvicorn

    from api.auth import check_serve_security
    from api.main import SERVE_INSECURE_ENV, create_app
    from hpsearch.settings import get_settings

    settings = get_settings()
    try:
        check_serve_security(settings.api_tokens, host, insecure)
        # Fail here, not in a server process, when the database is away or the settings bad.
        create_app(settings, insecure=insecure).state.storage.close()
    except HpsearchError as error:
        raise _fail(error) from error
    os.environ[SERVE_INSECURE_ENV] = "1" if insecure else "0"
    configure_logging(settings.log_format, settings.log_level)
    uvicorn.run(
        "api.main:serve_app", factory=True, host=host, port=port, workers=workers,
        log_config=None, timeout_keep_alive=KEEP_ALIVE_S, backlog=4096,
    )  # fmt: skip


@app.command()
def dashboard(
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port")] = 8080,
) -> None:
    """Serve the API and its dashboard on 127.0.0.1 over the configured database (the SQLite
    file by default), with a fresh random token printed once, like `optuna-dashboard`."""
    import uvicorn

    from api.dashboard.serve import DASHBOARD_HOST, announce, with_fresh_token
    from api.main import create_app
    from hpsearch.logs.redact import uvicorn_log_config
    from hpsearch.settings import get_settings

    settings, token = with_fresh_token(get_settings())
    try:
        settings.home.mkdir(parents=True, exist_ok=True)
        application = create_app(settings)
    except HpsearchError as error:
        raise _fail(error) from error
    typer.echo(announce(port, token))
    uvicorn.run(
        application, host=DASHBOARD_HOST, port=port, log_level="info",
        log_config=uvicorn_log_config(),
    )  # fmt: skip
