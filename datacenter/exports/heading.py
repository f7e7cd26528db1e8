"""What an exported table is about, printed on the PDF (CSV and XLSX carry the table alone)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExportHeading:
    tenant: str
    period: str  # "2025-03-01 to 2025-03-31"
    scope: str  # "Whole organisation", "Departments: Sales"
