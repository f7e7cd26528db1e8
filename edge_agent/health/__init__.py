"""The agent's own health: what it tells the data centre, the operator and Prometheus.

    status.py   per-source outcomes, backlog, spool, disk, clock; the heartbeat and health file
    quota.py    the spool quota alarm (70 % / 90 %)
    metrics.py  the optional Prometheus /metrics listener
"""
