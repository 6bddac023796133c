"""What the command line shows: progress displays, summaries, leaderboards (Rich).

Human output goes to the console (stderr); `--json` prints one JSON document
on stdout instead, for machines.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hpsearch.config import TrainConfig
from hpsearch.db import Storage
from hpsearch.db.records import (
    CheckpointRecord,
    EnsembleRecord,
    SearchRecord,
    TrialEventRecord,
    TrialRecord,
    result_accuracy,
)
from hpsearch.master import search_learned, search_spec, seed_stage_of
from hpsearch.nn.trainer import TrainResult
from hpsearch.runner import Progress as SearchState
from hpsearch.search import SearchSpec
from hpsearch.settings import Settings

__all__ = [
    "SearchProgress",
    "TrainProgress",
    "ensemble_row",
    "ensemble_table",
    "print_checks",
    "print_events",
    "print_learned",
    "print_search",
    "print_summary",
    "train_summary",
]


RECENT_EVENTS = 20


def _fmt(value: Any, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


class TrainProgress:
    """A live bar over epochs with the last loss and validation accuracy."""

    def __init__(self, console: Console, epochs: int, disable: bool = False) -> None:
        self._progress = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"), TimeElapsedColumn(),
            console=console, disable=disable,
        )  # fmt: skip
        self._task = self._progress.add_task("epochs", total=epochs, stats="")

    def __enter__(self) -> TrainProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def epoch(self, record: dict[str, Any], path: str | None) -> None:
        stats = (
            f"loss {_fmt(record['train_loss'])}  val acc {_fmt(record['val_accuracy'])}"
            f"  lr {record['learning_rate']:.2e}  {record['iterations']} it"
        )
        self._progress.update(self._task, completed=record["epoch"], stats=stats)


def train_summary(config: TrainConfig, result: TrainResult, best_path: Path) -> dict[str, Any]:
    last = result.history[-1] if result.history else {}
    return {
        "status": result.status,
        "reason": result.reason,
        "epochs": len(result.history),
        "best_val_accuracy": result.best_val_accuracy,
        "best_epoch": result.best_epoch,
        "final_train_loss": last.get("train_loss"),
        "final_val_accuracy": last.get("val_accuracy"),
        "best_checkpoint": str(best_path),
        "data": config.data.source,
    }


def print_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(summary))
        return
    for key, value in summary.items():
        typer.echo(f"{key:>20}: {value}")


def print_checks(console: Console, results: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(results))
        return
    gradient = results["gradient"]
    table = Table(
        title=f"gradient check (float64; pass: relative error < {gradient['threshold']:g})"
    )
    for column in ("part", "parameter", "max relative error", "kinks crossed"):
        table.add_column(column)
    for part in ("data", "regularization"):
        for name, error in gradient[part]["max_relative_error"].items():
            table.add_row(part, name, "-" if error is None else f"{error:.2e}",
                          str(gradient[part]["kinks_crossed"]))  # fmt: skip
    console.print(table)
    for key in ("initial_loss", "init_scale", "regularization", "overfit"):
        if key in results:
            outcome = "[green]pass[/]" if results[key]["passed"] else "[red]FAIL[/]"
            details = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                for k, v in results[key].items() if k != "passed")  # fmt: skip
            console.print(f"{outcome} {key}: {details}")
    console.print("[green]all checks passed[/]" if results["passed"] else "[red]checks failed[/]")


class SearchProgress:
    """Stage, trials done/running/failed and the best so far, refreshed live."""

    def __init__(self, console: Console, spec: SearchSpec, disable: bool = False) -> None:
        seeds = spec.ensembles.seeds if "seeds" in spec.ensembles.kinds else 0
        self.total = spec.planned_trials() + seeds
        self._progress = Progress(
            TextColumn("[bold]{task.fields[stage]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"), TimeElapsedColumn(),
            console=console, disable=disable,
        )  # fmt: skip
        self._task = self._progress.add_task("trials", total=self.total, stage="", stats="")
        self.stages = len(spec.plan)

    def __enter__(self) -> SearchProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def update(self, state: SearchState) -> None:
        counts = state.counts
        done = sum(counts[s] for s in ("completed", "diverged", "failed", "cancelled"))
        best = result_accuracy(state.best, state.search.result) if state.best else None
        stats = (
            f"running {counts['running']}  queued {counts['queued']}  "
            f"diverged {counts['diverged']}  failed {counts['failed']}  best {_fmt(best)}"
        )
        self._progress.update(
            self._task, completed=done, total=max(self.total, sum(counts.values())),
            stage=f"stage {state.stage + 1}/{self.stages}", stats=stats,
        )  # fmt: skip


def _short(name: str) -> str:
    """`optimizer.learning_rate` -> `learning_rate` for narrow tables."""
    return name.split(".", 1)[-1]


def _trial_row(trial: TrialRecord, result: str) -> dict[str, Any]:
    """A leaderboard row; `val_accuracy` is the trial's result (best or last epoch's)."""
    return {
        "trial_id": trial.id, "stage": trial.stage, "status": trial.status,
        "val_accuracy": result_accuracy(trial, result), "epochs": trial.last_epoch,
        "best_val_accuracy": trial.best_val_accuracy,
        "last_val_accuracy": trial.last_val_accuracy,
        "params": trial.params, "error": trial.error,
    }  # fmt: skip


def _result_checkpoint(checkpoints: Sequence[CheckpointRecord], result: str) -> CheckpointRecord:
    """The checkpoint that is a trial's result: its best by validation accuracy ("best"),
    or its latest ("last")."""
    if result == "last":
        return max(checkpoints, key=lambda record: record.epoch)
    return max(checkpoints, key=lambda record: record.val_accuracy or 0.0)


def print_search(
    console: Console, storage: Storage, search: SearchRecord, settings: Settings, as_json: bool
) -> None:
    """Status, per-stage ranges and border warnings, the leaderboard, the best checkpoint,
    and the ensembles beside the best single model."""
    leaders = storage.best_trials(search.id, limit=10)
    stages = storage.list_stages(search.id)
    best_checkpoint = None
    if leaders and result_accuracy(leaders[0], search.result) is not None:
        records = storage.list_checkpoints(leaders[0].id)
        if records:
            best = _result_checkpoint(records, search.result)
            best_checkpoint = str(settings.resolved_checkpoint_root / best.path)
    trial_counts = storage.trial_counts(search.id)
    events = storage.search_events(search.id, limit=RECENT_EVENTS)
    document = {
        "search_id": search.id, "name": search.name, "status": search.status,
        "reason": search.reason, "counts": trial_counts, "result": search.result,
        "stages": [{"stage": s.stage, "space": s.space, "warnings": s.warnings} for s in stages],
        "leaderboard": [_trial_row(trial, search.result) for trial in leaders],
        "best_checkpoint": best_checkpoint,
        "events": [vars(event) for event in events],
    }  # fmt: skip
    ensembles = [ensemble_row(e, settings) for e in storage.list_ensembles(search.id)]
    document["ensembles"] = ensembles
    learned = search_learned(storage, search.id)
    document["importance"] = learned["importance"]
    if as_json:
        typer.echo(json.dumps(document, default=str))
        return
    counts = ", ".join(f"{status} {count}" for status, count in trial_counts.items() if count)
    console.print(f"search {search.id} [bold]{search.name}[/]: {search.status}"
                  f" ({search.reason or ''}); trials: {counts}")  # fmt: skip
    print_learned(console, learned)
    for stage in stages:
        for warning in stage.warnings:
            console.print(
                f"[yellow]border warning[/] stage {stage.stage + 1}: {warning['message']}"
            )
    seed_stage = seed_stage_of(search_spec(storage, search.id))
    seed_stage = -1 if seed_stage is None else seed_stage
    console.print(_leaderboard(leaders, seed_stage, search.result))
    console.print(f"best checkpoint: {best_checkpoint}")
    if ensembles:
        console.print(ensemble_table(ensembles))
    print_events(console, events, f"last {RECENT_EVENTS} trial events (oldest first)")


def _leaderboard(leaders: list[TrialRecord], seed_stage: int, result: str) -> Table:
    """Best result first; trials of the seeds stage show "seeds" as their stage."""
    which = "its last epoch's" if result == "last" else "its best epoch's"
    table = Table(title=f"leaderboard (result = {result}: {which} validation accuracy, best first)")
    for column in ("rank", "trial", "stage", "status", "val acc", "epochs"):
        table.add_column(column, no_wrap=True)
    table.add_column("parameters")
    for rank, trial in enumerate(leaders, start=1):
        stage_label = "seeds" if trial.stage == seed_stage else str(trial.stage + 1)
        params = ", ".join(f"{_short(k)}={v:.3g}" if isinstance(v, float) else f"{_short(k)}={v}"
                           for k, v in trial.params.items())  # fmt: skip
        cells = (trial.id, stage_label, trial.status, _fmt(result_accuracy(trial, result)))
        table.add_row(str(rank), *map(str, cells), str(trial.last_epoch or 0), params)
    return table


def print_learned(console: Console, learned: dict[str, Any]) -> None:
    """Each stage's ranges and the importance of each parameter."""
    table = Table(title="what the search learned: ranges per stage")
    table.add_column("parameter", no_wrap=True)
    table.add_column("importance", no_wrap=True)
    for stage in learned["stages"]:
        table.add_column(f"stage {stage['stage'] + 1}", no_wrap=True)
    names = list(learned["importance"]) or list(
        learned["stages"][0]["ranges"] if learned["stages"] else []
    )
    for name in names:
        cells = [_range(stage["ranges"].get(name)) for stage in learned["stages"]]
        table.add_row(_short(name), _fmt(learned["importance"].get(name), 3), *cells)
    console.print(table)
    console.print("importance: share of validation-accuracy variance explained by each "
                  "parameter alone (stage effects removed)")  # fmt: skip


def _range(values: list[Any] | None) -> str:
    if values is None:
        return "-"
    if (
        all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        and len(values) == 2
    ):
        return f"{values[0]:.3g} - {values[1]:.3g}"
    return ", ".join(map(str, values))


def ensemble_row(ensemble: EnsembleRecord, settings: Settings) -> dict[str, Any]:
    """One ensemble as `hpsearch run`/`status`/`ensemble` print it (JSON-ready)."""
    figures = ensemble.figures
    path = None if ensemble.path is None else str(settings.resolved_checkpoint_root / ensemble.path)
    return {
        "ensemble_id": ensemble.id, "kind": ensemble.kind, "size": ensemble.size,
        "status": ensemble.status, "error": ensemble.error,
        "val_accuracy": ensemble.val_accuracy, "test_accuracy": ensemble.test_accuracy,
        "best_single": figures.get("best_single"), "members": figures.get("members"),
        "diversity": figures.get("diversity"), "cost_s": figures.get("cost_s"),
        "extra_epochs": figures.get("extra_epochs"), "path": path,
    }  # fmt: skip


def ensemble_table(rows: list[dict[str, Any]]) -> Table:
    """The ensembles beside the best single model (test accuracy never chose anything)."""
    table = Table(title="ensembles vs the best single model (validation chooses, test reports)")
    for column in ("kind", "members", "val acc", "test acc", "diversity", "cost s", "+epochs"):
        table.add_column(column, no_wrap=True)
    single = next((row["best_single"] for row in rows if row["best_single"]), None)
    if single is not None:
        accuracies = _fmt(single["val_accuracy"]), _fmt(single["test_accuracy"])
        table.add_row(f"best single (trial {single['trial_id']})", "1", *accuracies, "", "", "0")
    for row in rows:
        if row["status"] != "completed":
            table.add_row(f"{row['kind']} ({row['status']}: {row['error'] or ''})")
            continue
        table.add_row(row["kind"], str(row["members"]), _fmt(row["val_accuracy"]),
                      _fmt(row["test_accuracy"]), _fmt(row["diversity"], 3),
                      _fmt(row["cost_s"], 2), str(row["extra_epochs"]))  # fmt: skip
    return table


def print_events(console: Console, events: Sequence[TrialEventRecord], title: str) -> None:
    """A table of trial events: time, trial, event, status, attempt, worker, reason."""
    table = Table(title=title)
    for column in ("time (UTC)", "trial", "event", "status", "attempt", "worker", "reason"):
        table.add_column(column, no_wrap=column != "reason")
    for event in events:
        table.add_row(event.at.strftime("%H:%M:%S.%f")[:-3], str(event.trial_id), event.event,
                      event.status, str(event.attempt), event.worker_id or "",
                      event.reason or "")  # fmt: skip
    console.print(table)
