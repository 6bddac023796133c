"""The one settings object, read from `HPSEARCH_*` environment variables.

Defaults are the embedded laptop mode: a SQLite file and a checkpoint folder
under `./hpsearch-data/`, no Redis (local worker processes), data paths
resolved under the current directory.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HPSEARCH_", extra="ignore")

    home: Path = Path("hpsearch-data")
    database_url: str | None = None
    redis_url: str | None = None
    data_root: Path = Path(".")
    checkpoint_root: Path | None = None
    # Prepared (preprocessed) data sets, memory-mapped by every worker (hpsearch.data.prepared).
    prepared_root: Path | None = None
    # A worker beats every heartbeat_s; a trial silent for stale_after_s is requeued by the
    # next master tick (kill -> requeued within stale_after_s + master_tick_s).
    heartbeat_s: float = Field(1.0, gt=0.0)
    stale_after_s: float = Field(5.0, gt=0.0)
    # Rows of workers stopped or dead for this long are deleted by the reaper.
    worker_prune_after_s: float = Field(3600.0, gt=0.0)
    # Structured logs (hpsearch.logs): key=value lines or JSON lines, and the level.
    log_format: Literal["kv", "json"] = "kv"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    api_tokens: list[str] = Field(default_factory=list)
    # Request limits of the REST API (api/); caps on a search (hpsearch.admission, checked by
    # hpsearch run / submit and POST /searches); the in-process master.
    max_json_bytes: int = Field(1024 * 1024, ge=1)
    max_upload_bytes: int = Field(64 * 1024 * 1024, ge=1)
    launch_rate_per_minute: float = Field(10.0, gt=0.0)
    max_epochs: int = Field(1000, ge=1)
    max_trials: int = Field(10_000, ge=1)
    max_layers: int = Field(16, ge=1)
    max_width: int = Field(8192, ge=1)
    max_batch_size: int = Field(8192, ge=1)
    max_parameters: int = Field(50_000_000, ge=1)
    max_concurrency: int = Field(10_000, ge=1)
    max_features: int = Field(32_768, ge=1)
    max_data_bytes: int = Field(1024**3, ge=1)
    api_master: bool = True
    # `hpsearch serve` processes add this to their nice value (0: unchanged), so that the
    # API yields the CPU to training workers on a shared machine.
    api_nice: int = Field(5, ge=0, le=19)
    # Requests one API process serves at once (its request threads, each with a database
    # connection kept open); more wait in line. Caps what the API can take from training.
    api_concurrency: int = Field(4, ge=1, le=256)
    master_tick_s: float = Field(1.0, gt=0.0)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'hpsearch.db').resolve()}"

    @property
    def resolved_checkpoint_root(self) -> Path:
        return (self.checkpoint_root or self.home / "checkpoints").resolve()

    @property
    def resolved_prepared_root(self) -> Path:
        return (self.prepared_root or self.home / "prepared").resolve()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
