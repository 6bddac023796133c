"""Refuse query parameters an operation does not declare (422 naming them).

A misspelled filter (`?stauts=failed`) would otherwise be ignored silently and
return every trial. The declared names come from the app's own OpenAPI
document, computed once per app.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError

__all__ = ["reject_unknown_query"]


def _declared_query_names(request: Request) -> dict[tuple[str, str], frozenset[str]]:
    declared: dict[tuple[str, str], frozenset[str]] | None = getattr(
        request.app.state, "declared_query", None
    )
    if declared is None:
        declared = {}
        for path, operations in request.app.openapi().get("paths", {}).items():
            for method, operation in operations.items():
                names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
                declared[(method.upper(), path)] = frozenset(names)
        request.app.state.declared_query = declared
    return declared


async def reject_unknown_query(request: Request) -> None:
    """An app-wide dependency: 422 when the query string has names the operation lacks."""
    if not request.query_params:
        return
    route = request.scope.get("route")
    path = getattr(route, "path_format", None)
    if path is None or not getattr(route, "include_in_schema", True):
        return  # the dashboard's pages check their own query parameters
    method = "GET" if request.method == "HEAD" else request.method
    allowed = _declared_query_names(request).get((method, path), frozenset())
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", name),
                    "msg": "unknown query parameter",
                    "type": "extra_forbidden",
                }
                for name in unknown
            ]
        )
