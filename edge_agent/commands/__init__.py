"""The `edge-agent` commands, one module per command or group; `edge_agent/cli.py` registers them.

A command parses its options, calls the module that does the work and reports; it holds no
logic of its own that a test could not reach without the command line.

    service.py      check, run, status, flush
    delivery.py     enroll, resend
    parse.py        parse: a driver's parser over a capture file
    test_source.py  test-source: what the next LcsCDR poll would fetch
    simulate.py     simulate: play a PBX on this machine
"""
