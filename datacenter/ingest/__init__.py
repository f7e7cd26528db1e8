"""Ingest: landed batch files -> verified, de-duplicated, rated call rows, receipts, quarantine.

worker.py    the stateless worker: ingest_once, run_forever, one file end to end
claim.py     the claim protocol: which worker takes a landed file, decided through the store
files.py     landed files on disk: finding finished ones, archive, quarantine and its .reason
landing_io.py  file operations that trust nothing in the landing area (no links, bounded reads)
rows.py      the rows a batch stores: calls (call_values, CALL_COLUMNS) and the daily rollups
receipts.py  signed receipts for stored batches
keys.py      the data centre's batch and receipt keys
"""
