"""`hpsearch.runner`: what `hpsearch run` does for its local workers before they start."""

from __future__ import annotations

from pathlib import Path

from hpsearch.data import prepare_data_cached
from hpsearch.data.prepared import clear_prepared_cache, store_key
from hpsearch.runner import prepare_for_workers
from hpsearch.search import parse_search_spec
from hpsearch.settings import Settings


def test_the_base_data_set_is_stored_prepared_for_the_workers_to_map(tmp_path: Path) -> None:
    spec = parse_search_spec({
        "name": "prepared",
        "base": {"data": {"source": "spiral", "points_per_class": 40},
                 "preprocess": {"mean": "feature", "std": True}},
        "space": {"optimizer.learning_rate": {"kind": "log_uniform", "low": 1e-3, "high": 1e-1}},
        "stages": [{"trials": 2, "epochs": 1}],
    })  # fmt: skip
    settings = Settings(home=tmp_path, data_root=tmp_path)
    folder = settings.resolved_prepared_root / store_key(
        spec.base.data, spec.base.preprocess, tmp_path
    )
    assert not folder.exists()
    prepare_for_workers(spec, settings)
    assert (folder / "meta.json").is_file()
    clear_prepared_cache()  # as a fresh worker process: it maps the stored copy
    mapped = prepare_data_cached(spec.base.data, spec.base.preprocess, tmp_path,
                                 settings.resolved_prepared_root)  # fmt: skip
    assert Path(mapped.X_train.filename).parent == folder  # type: ignore[attr-defined]
