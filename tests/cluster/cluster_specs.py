"""Search specs of the cluster tests: small spiral searches that train for real."""

from __future__ import annotations

from typing import Any

__all__ = ["spiral_search"]


def spiral_search(
    stages: list[dict[str, Any]],
    name: str = "cluster",
    concurrency: int = 4,
    hidden_sizes: tuple[int, ...] = (32,),
    points_per_class: int = 100,
) -> dict[str, Any]:
    """A search spec (the JSON body of POST /searches) on the built-in spiral."""
    return {
        "name": name,
        "seed": 11,
        "concurrency": concurrency,
        "eta": 2.0,
        "base": {
            "data": {"source": "spiral", "num_classes": 3, "points_per_class": points_per_class},
            "model": {"hidden_sizes": list(hidden_sizes)},
            "batch_size": 50,
        },
        "space": {"optimizer.learning_rate": {"kind": "log_uniform", "low": 1e-3, "high": 1e-1}},
        "stages": stages,
    }
