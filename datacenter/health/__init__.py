"""Polling health: heartbeats, batch sequence and call volume -> one state per site; alarms.

model.py           the pure model: states, policy, facts, findings and assess (no store)
facts.py           the facts assess judges, read from the store; site_health
heartbeats.py      heartbeat ingest: landed documents into the store, quarantine, pruning
missing_batches.py which of an agent's batch numbers the data centre does not hold
alarms.py          alarm lifecycle: raised, repeated, cleared
notify.py          delivering alarms and digests: SMTP and webhook
runner.py          the loop that assesses, raises, clears and notifies
console.py         what the technicians' console shows: grid, timeline (stored heartbeats), volume
"""
