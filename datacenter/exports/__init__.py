"""Report exports: a ``ReportTable`` (``datacenter.reports.catalog``) as a file, streamed.

stream.py   export_stream(table, fmt, zone) -> chunks of bytes, for downloads and mail
"""
