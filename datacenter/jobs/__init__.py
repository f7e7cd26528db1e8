"""Store jobs run by any worker: what each kind does, and the loops and processes that run them.

    kinds.py     a claimed job's work, by kind (re-rate a day, rebuild a day's rollups)
    run.py       claim and run jobs: the next one, or until a set of jobs is finished
    workers.py   queue a request's jobs and run N worker processes until they are finished

The protocol (queue, claim, finish, fail) is ``datacenter.store.jobs``.
"""
