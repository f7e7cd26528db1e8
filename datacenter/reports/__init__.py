"""The report query layer: what the report pages, exports, schedules and the benchmark ask the store.

    columns.py    the raw-call columns every report can group by, filter on, sort by
    filters.py    the MCS-style filter syntax -> SQLAlchemy conditions (bound parameters only)
    periods.py    tenant-local days -> UTC bounds
    scope.py      the viewer's scope hook every query takes; user_scope.py a portal user's
    summaries.py  summaries by any dimension (from the rollups, through the directory for who
                  held the extension; raw calls where a rollup cannot answer)
    detail.py     the call-detail report (raw calls)
    tables.py     ReportSpec, ReportParams, ReportTable: what a report is and produces
    catalog.py    the registry of reports (REPORTS) every page, export and schedule uses
    query_string.py  a report's parameters in a URL query string, both ways (pages, exports,
                  saved reports)
    saved.py, recurrence.py, schedules.py, scheduler.py, links.py   saved and scheduled reports
    top.py, profiles.py, inbound.py, trunks.py, chargeback.py   the catalogue's other reports
    dashboard.py  the tenant dashboard's figures

Pure SQLAlchemy Core; no web code. docs/reports.md says which report reads what.
"""
