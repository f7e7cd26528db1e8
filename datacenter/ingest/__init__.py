"""Ingest: landed batch files -> verified, de-duplicated, rated call rows, receipts, quarantine.

worker.py  the stateless worker: claim a landed file through the store, open, store, receipt
keys.py    the data centre's batch and receipt keys
"""
