"""Delivery: spooled records -> sealed batches -> the data centre's SFTP landing, and back.

    batches.py      seal spool rows into numbered, signed, encrypted batch files (the outbox)
    uplink.py       push batch files over SFTP: pinned host key, key auth, .part then rename
    proxy.py        the socket the SSH session runs over when the customer has a proxy
    receipts.py     collect and verify the data centre's signed receipts
    retention.py    what happens to an acknowledged batch; re-send by date
    schedule.py     when the uplink sends (continuously, every N minutes, at fixed times)
    enrollment.py   the appliance's credentials: made once, loaded by the service
"""
