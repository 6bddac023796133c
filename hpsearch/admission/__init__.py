"""Admission of a search: everything checked before a search is stored.

`admit_search(spec, settings)` is called by `hpsearch run`, `hpsearch submit`
and `POST /searches` before `create_search`: the server's caps on the spec
and on the size of its data set (from headers and generator parameters, see
`caps`), then the data set read with the workers' loader and checked against
the spec (`check`), then the caps again with the data's real sizes. Any
problem raises `ConfigError` or `DataError` whose lines read "field: problem";
nothing is written.
"""

from __future__ import annotations

from hpsearch.admission.caps import (
    DataSize,
    check_spec_caps,
    data_size,
    estimate_parameters,
    upper_bound,
)
from hpsearch.admission.check import check_data
from hpsearch.search import SearchSpec
from hpsearch.settings import Settings

__all__ = [
    "DataSize",
    "admit_search",
    "check_data",
    "check_spec_caps",
    "data_size",
    "estimate_parameters",
    "upper_bound",
]


def admit_search(spec: SearchSpec, settings: Settings) -> DataSize:
    """Check caps and data of `spec` (see the module doc); returns the data's real size."""
    check_spec_caps(spec, settings, data_size(spec.base.data, settings.data_root))
    size = check_data(spec, settings.data_root)
    check_spec_caps(spec, settings, size)
    return size
