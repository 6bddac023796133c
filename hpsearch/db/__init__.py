"""Persistence: SQLAlchemy tables, Alembic migrations and the storage API.

from hpsearch.db import open_storage, NewTrial
storage = open_storage()            # SQLite under ./hpsearch-data/ unless HPSEARCH_DATABASE_URL
search = storage.create_search("spiral", spec, seed=0)
"""

from hpsearch.db.engine import create_db_engine, safe_url, session_scope
from hpsearch.db.records import (
    FAILURE_KINDS,
    RETRY_BUDGETS,
    SEARCH_STATUSES,
    SEARCH_TRANSITIONS,
    TRIAL_STATUSES,
    CandidateCheckpoint,
    CheckpointRecord,
    EnsembleRecord,
    EpochCommit,
    EpochRecord,
    Leaderboard,
    NewTrial,
    SearchRecord,
    SearchSnapshot,
    StageRecord,
    TrialEventRecord,
    TrialHeartbeat,
    TrialPage,
    TrialRecord,
    TrialView,
    WorkerRecord,
)
from hpsearch.db.storage import Storage, open_storage

__all__ = [
    "FAILURE_KINDS",
    "RETRY_BUDGETS",
    "SEARCH_STATUSES",
    "SEARCH_TRANSITIONS",
    "TRIAL_STATUSES",
    "CandidateCheckpoint",
    "CheckpointRecord",
    "EnsembleRecord",
    "EpochCommit",
    "EpochRecord",
    "Leaderboard",
    "NewTrial",
    "SearchRecord",
    "SearchSnapshot",
    "StageRecord",
    "Storage",
    "TrialEventRecord",
    "TrialHeartbeat",
    "TrialPage",
    "TrialRecord",
    "TrialView",
    "WorkerRecord",
    "create_db_engine",
    "open_storage",
    "safe_url",
    "session_scope",
]
