"""What the TCP stream drivers share: connecting and listening, line framing, open-call books.

    tcp.py             TCP acquirers: connect to a PBX that serves records, or listen for one that pushes
    acquirer_group.py  several acquirers feeding one sink (IP SMDR local and push together)
    lines.py           line framing (CR LF, LF, CR CR LF)
    open_calls.py      calls still open and calls recently closed, for event-stream parsers
    wallclock.py       site wall-clock time -> UTC for formats without an offset
"""
