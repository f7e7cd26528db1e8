"""The report query layer: what the report pages, exports and the benchmark ask the store.

    filters.py    the MCS-style filter syntax -> SQLAlchemy conditions (bound parameters only)
    periods.py    tenant-local days -> UTC bounds
    scope.py      the viewer's scope hook every query takes
    summaries.py  summaries by extension, direction, trunk, carrier, destination class, answered
                  (from the rollups; raw calls where a rollup cannot answer)
    detail.py     the call-detail report (raw calls)

Pure SQLAlchemy Core; no web code. docs/reports.md says which report reads what.
"""
