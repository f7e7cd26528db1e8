"""The `datacenter` commands, one module per command or group; `datacenter/cli.py` registers them.

Every click command of the data centre lives here and nowhere else. A command parses its
options, opens the configured store, calls the module that does the work and reports; it holds
no logic of its own that a test could not reach without the command line. Expected failures are
``CallCollectError`` classes, left to ``shared.cli_errors.FriendlyGroup`` so each exits with its
documented code; ``click.ClickException`` / ``BadParameter`` only for usage problems.

    options.py     --config, and the one way commands open the configured store
    init.py        init: migrate the store, create the data directories and keys
    serve.py       serve: the web console under gunicorn
    ingest.py      ingest [--watch]: landed batch files into the store
    alarms.py      alarms run: the polling-health alarm loop
    cost_alarms.py cost-alarms rules show|set|check, secret, list, run: tenants' cost alarms
    tenant.py      tenant add | list
    agent.py       agent add | certificate | list
    user.py        user add | list
    technician.py  technician assign | unassign | list
    keys.py        keys init | show
    rate.py        rate: ICDRs against tariff files, without a database
    rerate.py      rerate: stored calls again with the current tariffs (store jobs per day)
    rollups.py     rollups rebuild [--check] [--workers N]: the report rollups (jobs per day)
    jobs.py        jobs list | run: the store jobs (re-rate and rollup days) any worker claims
    tariff.py      tariff import | export | list; dial plans and routes
"""
