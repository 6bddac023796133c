"""The storage API that the API, the master and the workers call.

`open_storage(url)` creates the engine, applies the migrations and returns a
`Storage`. Every public method of `Storage` is one transaction and returns
frozen records from `hpsearch.db.records`, never ORM objects. Errors are those
of `hpsearch.errors`: NotFoundError for a missing row, ConflictError for a lost
race or a forbidden transition, StorageError for a database failure (with the
URL's password hidden); bad arguments raise ValueError/TypeError naming them.
"""

from __future__ import annotations

from sqlalchemy import Engine

from hpsearch.db.engine import POOL_SIZE, create_db_engine, hide_password, safe_url
from hpsearch.db.ensembles import EnsembleStore
from hpsearch.db.events import EventStore
from hpsearch.db.figures import FigureQueries
from hpsearch.db.metrics import MetricStore
from hpsearch.db.migrate import upgrade_to_head
from hpsearch.db.queries import TrialQueries
from hpsearch.db.searches import SearchStore
from hpsearch.db.trials import TrialStore
from hpsearch.db.workers import WorkerStore
from hpsearch.errors import HpsearchError, StorageError
from hpsearch.settings import get_settings

__all__ = ["Storage", "open_storage"]


class Storage(
    SearchStore,
    TrialStore,
    TrialQueries,
    MetricStore,
    WorkerStore,
    EnsembleStore,
    FigureQueries,
    EventStore,
):
    """Searches, stages, trials and their events, epochs, checkpoints, workers and ensembles.

    Safe to share between threads; each process opens its own (engines do
    not survive a fork).
    """

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.closed = False

    @property
    def url(self) -> str:
        """The database URL with its password hidden."""
        return safe_url(self.engine.url)

    def close(self) -> None:
        """Release the connection pool (`closed` tells background threads to stop using it)."""
        self.closed = True
        self.engine.dispose()


def open_storage(url: str | None = None, pool_size: int = POOL_SIZE) -> Storage:
    """Open the database at `url` (default: settings.resolved_database_url), migrated to head.

    `pool_size`: connections kept open (see `create_db_engine`). Raises
    StorageError, with the password hidden, when the database cannot be reached.
    """
    url = url or get_settings().resolved_database_url
    engine = create_db_engine(url, pool_size)
    try:
        upgrade_to_head(engine)
    except HpsearchError:
        engine.dispose()
        raise
    except Exception as error:
        engine.dispose()
        lines = str(error).strip().splitlines() or [type(error).__name__]
        message = hide_password(lines[0], url)
        raise StorageError(f"cannot open database {safe_url(url)}: {message}") from error
    return Storage(engine)
