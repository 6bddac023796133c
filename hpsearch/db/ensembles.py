"""Ensembles of a search: requested rows, claims by workers, results, and their candidates.

A row is `queued` when requested (by the master when a search ends, by
`hpsearch ensemble` or `POST /searches/{id}/ensembles`), `running` once a
worker claimed it, then `completed` (members, figures, file) or `failed`
(error). A build whose worker stopped beating is requeued by
`requeue_stale_ensembles` (3 attempts in all).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from hpsearch.db.base import StoreBase
from hpsearch.db.clock import database_now
from hpsearch.db.convert import (
    check_choice,
    check_positive,
    finite_or_none,
    json_safe,
    to_record,
    utc_now,
)
from hpsearch.db.models import CheckpointRow, EnsembleRow, TrialRow, WorkerRow
from hpsearch.db.records import RESULTS, CandidateCheckpoint, EnsembleRecord
from hpsearch.db.searches import best_trial_id_of
from hpsearch.ensembles.kinds import Availability, check_request, plan_requests
from hpsearch.errors import ConflictError

__all__ = ["ENSEMBLE_MAX_ATTEMPTS", "EnsembleStore", "candidate_order", "configuration_key"]

ENSEMBLE_MAX_ATTEMPTS = 3


class EnsembleStore(StoreBase):
    def create_ensembles(
        self, search_id: int, requests: Sequence[tuple[str, int]]
    ) -> list[EnsembleRecord]:
        """Queue one ensemble per (kind, size), unchecked (see `request_ensemble`)."""
        with self._write() as session:
            self._search_row(session, search_id)
            return _add_ensembles(session, search_id, requests)

    def request_ensemble(
        self, search_id: int, kind: str, size: int | None, seed_stage: int | None = None
    ) -> EnsembleRecord:
        """Queue one ensemble after `kinds.check_request` against what the search stored.

        EnsembleError (unknown kind, size beyond the models available, no
        checkpoints) leaves the database unchanged. `seed_stage`: the stage
        number of the search's seed trials, if it has one.
        """
        with self._write() as session:
            row = self._search_row(session, search_id, lock=True)
            available = _availability(session, search_id, seed_stage, row.result)
            resolved = check_request(kind, size, available)
            (record,) = _add_ensembles(session, search_id, [(kind, resolved)])
            return record

    def complete_search(
        self,
        search_id: int,
        reason: str | None,
        requests: Sequence[tuple[str, int]],
        seed_stage: int | None = None,
    ) -> list[EnsembleRecord]:
        """Mark a running search completed and queue its ensembles, in one transaction.

        Kinds with nothing to build from are left out and sizes capped
        (`kinds.plan_requests`). A search that is no longer running is left
        alone and [] returned, so two masters finishing it queue them once.
        """
        with self._write() as session:
            row = self._search_row(session, search_id, lock=True)
            if row.status != "running":
                return []
            row.status, row.finished_at = "completed", utc_now()
            row.best_trial_id = session.scalar(best_trial_id_of(search_id, row.result))
            if reason is not None:
                row.reason = reason
            available = _availability(session, search_id, seed_stage, row.result)
            return _add_ensembles(session, search_id, plan_requests(list(requests), available))

    def ensemble_availability(self, search_id: int, seed_stage: int | None) -> Availability:
        """What the search stored, for `kinds.check_request` (see `request_ensemble`)."""
        with self._read() as session:
            row = self._search_row(session, search_id)
            return _availability(session, search_id, seed_stage, row.result)

    def get_ensemble(self, ensemble_id: int) -> EnsembleRecord:
        with self._read() as session:
            return to_record(EnsembleRecord, self._get(session, EnsembleRow, ensemble_id))

    def list_ensembles(self, search_id: int) -> list[EnsembleRecord]:
        """The search's ensembles in the order they were requested."""
        with self._read() as session:
            self._search_row(session, search_id)
            rows = session.scalars(
                select(EnsembleRow)
                .where(EnsembleRow.search_id == search_id)
                .order_by(EnsembleRow.id)
            ).all()
            return [to_record(EnsembleRecord, row) for row in rows]

    def queued_ensemble_ids(self, search_id: int | None = None) -> list[int]:
        query = select(EnsembleRow.id).where(EnsembleRow.status == "queued")
        if search_id is not None:
            query = query.where(EnsembleRow.search_id == search_id)
        with self._read() as session:
            return list(session.scalars(query.order_by(EnsembleRow.id)).all())

    def queued_ensembles(self, older_than_s: float) -> dict[int, list[int]]:
        """Ids of ensembles queued for more than `older_than_s` (database clock), by search."""
        with self._read() as session:
            cutoff = database_now(session) - timedelta(seconds=older_than_s)
            rows = session.execute(
                select(EnsembleRow.search_id, EnsembleRow.id)
                .where(EnsembleRow.status == "queued", EnsembleRow.created_at < cutoff)
                .order_by(EnsembleRow.id)
            ).all()
        grouped: dict[int, list[int]] = {}
        for search_id, ensemble_id in rows:
            grouped.setdefault(search_id, []).append(ensemble_id)
        return grouped

    def pending_ensembles(self, search_id: int) -> int:
        """How many of the search's ensembles are queued or running."""
        query = select(func.count()).where(
            EnsembleRow.search_id == search_id, EnsembleRow.status.in_(("queued", "running"))
        )
        with self._read() as session:
            return int(session.scalar(query) or 0)

    def claim_ensemble(self, ensemble_id: int, worker_id: str) -> EnsembleRecord | None:
        """queued -> running under `worker_id`; None when another worker got it first."""
        statement = (
            update(EnsembleRow)
            .where(EnsembleRow.id == ensemble_id, EnsembleRow.status == "queued")
            .values(
                status="running",
                worker_id=worker_id,
                started_at=utc_now(),
                attempts=EnsembleRow.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )
        with self._write() as session:
            self._get(session, EnsembleRow, ensemble_id)
            if session.execute(statement).rowcount == 0:  # type: ignore[attr-defined]
                return None
            return to_record(EnsembleRecord, self._get(session, EnsembleRow, ensemble_id))

    def finish_ensemble(
        self,
        ensemble_id: int,
        worker_id: str,
        *,
        members: Sequence[dict[str, Any]] = (),
        figures: dict[str, Any] | None = None,
        path: str | None = None,
        error: str | None = None,
    ) -> EnsembleRecord:
        """Record a build: `completed` with members, figures and file, or `failed` with `error`."""
        with self._write() as session:
            row = self._get(session, EnsembleRow, ensemble_id, lock=True)
            if row.status != "running" or row.worker_id != worker_id:
                raise ConflictError(f"ensemble {ensemble_id} is not being built by {worker_id}")
            figures = json_safe(figures or {}, "figures")
            row.status = "failed" if error is not None else "completed"
            row.members = json_safe(list(members), "members")
            row.figures = figures
            row.path, row.error, row.finished_at = path, error, utc_now()
            row.val_accuracy = finite_or_none(figures.get("val_accuracy"))
            row.test_accuracy = finite_or_none(figures.get("test_accuracy"))
            session.flush()
            return to_record(EnsembleRecord, row)

    def requeue_stale_ensembles(
        self, stale_after_s: float, now: datetime | None = None
    ) -> list[EnsembleRecord]:
        """Builds whose worker row is gone or silent for `stale_after_s`: queued again, or
        failed after ENSEMBLE_MAX_ATTEMPTS. Returns the changed rows.

        Silence is judged by the database server's clock (`hpsearch.db.clock`;
        `now`, if given, stands in for it), like the trials' heartbeats.
        """
        with self._write() as session:
            cutoff = (now or database_now(session)) - timedelta(seconds=stale_after_s)
            alive = select(WorkerRow.id).where(WorkerRow.last_heartbeat >= cutoff)
            query = (
                select(EnsembleRow)
                .where(EnsembleRow.status == "running", EnsembleRow.worker_id.not_in(alive))
                .with_for_update(skip_locked=True)
            )
            rows = session.scalars(query).all()
            for row in rows:
                reason = f"worker {row.worker_id} stopped while building"
                if row.attempts >= ENSEMBLE_MAX_ATTEMPTS:
                    row.status, row.error, row.finished_at = "failed", reason, utc_now()
                else:
                    row.status, row.error, row.worker_id, row.started_at = (
                        "queued",
                        reason,
                        None,
                        None,
                    )
            session.flush()
            return [to_record(EnsembleRecord, row) for row in rows]

    def ensemble_candidates(
        self, search_id: int, limit: int | None = None, trial_ids: Sequence[int] | None = None
    ) -> list[CandidateCheckpoint]:
        """The search's stored checkpoints, best first (`candidate_order`)."""
        query = (
            select(
                CheckpointRow.id,
                CheckpointRow.trial_id,
                TrialRow.stage,
                CheckpointRow.epoch,
                CheckpointRow.path,
                CheckpointRow.val_accuracy,
                TrialRow.params,
                TrialRow.best_val_accuracy,
            )
            .join(TrialRow, TrialRow.id == CheckpointRow.trial_id)
            .where(TrialRow.search_id == search_id)
        )
        if trial_ids is not None:
            query = query.where(CheckpointRow.trial_id.in_(list(trial_ids)))
        if limit is not None:
            query = query.limit(check_positive(limit, "limit"))
        with self._read() as session:
            result = self._search_row(session, search_id).result
            query = query.order_by(*candidate_order(result))
            return [CandidateCheckpoint(*row) for row in session.execute(query).all()]

    def trials_of_stage(self, search_id: int, stage: int) -> list[tuple[int, str]]:
        """(trial id, status) of one stage's trials."""
        query = select(TrialRow.id, TrialRow.status).where(
            TrialRow.search_id == search_id, TrialRow.stage == stage
        )
        with self._read() as session:
            return [(row[0], row[1]) for row in session.execute(query.order_by(TrialRow.index))]


def configuration_key(params: dict[str, Any]) -> str:
    """One string per distinct sampled configuration (its params, keys sorted)."""
    return json.dumps(params, sort_keys=True, default=str)


def _add_ensembles(
    session: Session, search_id: int, requests: Sequence[tuple[str, int]]
) -> list[EnsembleRecord]:
    now = utc_now()
    rows = [
        EnsembleRow(search_id=search_id, kind=kind, size=check_positive(size, "size"),
                    status="queued", members=[], figures={}, attempts=0, created_at=now)
        for kind, size in requests
    ]  # fmt: skip
    session.add_all(rows)
    session.flush()
    return [to_record(EnsembleRecord, row) for row in rows]


def candidate_order(result: str) -> tuple[Any, ...]:
    """The order of a search's checkpoints, best first, under its `result`.

    "best": by the checkpoint's validation accuracy (ties: newest). "last": by
    its trial's last_val_accuracy (ties: lower trial id), and within a trial
    latest epoch first, so each trial's first checkpoint is its last one.
    """
    if check_choice(result, RESULTS, "result") == "last":
        return (TrialRow.last_val_accuracy.desc().nulls_last(), TrialRow.id,
                CheckpointRow.epoch.desc())  # fmt: skip
    return CheckpointRow.val_accuracy.desc().nulls_last(), CheckpointRow.id.desc()


def _availability(
    session: Session, search_id: int, seed_stage: int | None, result: str
) -> Availability:
    """What the search stored, counted from its checkpoint rows (`kinds.Availability`)."""
    query = (
        select(CheckpointRow.trial_id, TrialRow.params, TrialRow.stage, TrialRow.status)
        .join(TrialRow, TrialRow.id == CheckpointRow.trial_id)
        .where(TrialRow.search_id == search_id)
        .order_by(*candidate_order(result))
    )
    rows = session.execute(query).all()
    if not rows:
        return Availability(0, 0, 0, 0)
    best_trial = rows[0][0]
    seeds = {
        trial
        for trial, _, stage, status in rows
        if seed_stage is not None and stage == seed_stage and status == "completed"
    }
    return Availability(
        checkpoints=len(rows),
        configurations=len({configuration_key(params) for _, params, _, _ in rows}),
        best_trial_checkpoints=sum(1 for row in rows if row[0] == best_trial),
        seed_trials=len(seeds),
    )
