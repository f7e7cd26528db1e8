"""The `datacenter` commands, one module per command or group; `datacenter/cli.py` registers them.

A command parses its options, opens the configured store, calls the module that does the work
and reports; it holds no logic of its own that a test could not reach without the command line.

    init.py    init, and the one way commands open the configured store
    keys.py    keys init | show
    rate.py    rate: ICDRs against tariff files, without a database
    tariff.py  tariff import | export | list; dial plans and routes
"""
