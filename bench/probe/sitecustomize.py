"""Counts every database command a bench's processes send (loaded only by the benches).

`bench.common` puts this directory on `PYTHONPATH` of the processes it starts when
`IBEST_BENCH_DB_COUNTS` names a directory, so Python imports this module at start-up (the
`sitecustomize` hook) and registers a PyMongo `CommandListener` for every client the
process makes. Nothing in the services knows about it: production never loads it.
Counts are written to `<dir>/<process>-<pid>.json` twice a second (`bench.dbcount`).
"""

from __future__ import annotations

import os

if os.environ.get("IBEST_BENCH_DB_COUNTS"):
    try:
        from bench.dbcount import install
    except ImportError:  # a process that cannot import the bench package: not counted
        pass
    else:
        install(os.environ["IBEST_BENCH_DB_COUNTS"])
