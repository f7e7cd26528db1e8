"""callcollect data centre: ingest, rating, storage, reports and the web console."""

__version__ = "0.1.0"
