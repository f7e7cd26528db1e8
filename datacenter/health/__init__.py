"""Polling health: heartbeats, batch sequence and call volume -> one state per site; alarms.

    model.py           the pure model (assess), facts read from the store, heartbeat ingest
    missing_batches.py which of an agent's batch numbers the data centre does not hold
    alarms.py          alarm lifecycle: raised, repeated, cleared
    notify.py          delivering alarms and digests: SMTP and webhook
    runner.py          the loop that assesses, raises, clears and notifies
    console.py         what the technicians' console shows
"""
