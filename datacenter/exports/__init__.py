"""Report exports: a ``ReportTable`` (``datacenter.reports.catalog``) as a file, streamed.

stream.py   export_stream(table, fmt, zone, heading=None) -> chunks of bytes, for downloads and
            mail; MEDIA_TYPES (csv, xlsx, pdf)
xlsx.py     the workbook streamed as its rows are read (openpyxl's writer into a streamed zip)
xlsx_sheets.py  its openpyxl half (sheets, typed cells, styles), imported after the first bytes
pdf.py      the PDF (fpdf2, imported only when a PDF is made): heading, table, totals, page
            numbers; bounded by MAX_ROWS
heading.py  ExportHeading: tenant, period and scope printed on the PDF
cells.py    one cell: the formula-injection guard, local times, text as a person reads it
"""
