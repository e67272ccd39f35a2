"""`python -m service`: validate the environment, then run one uvicorn process on HOST:PORT.

A bad environment value (or a DATABASE_PATH that is not an SQLite file) prints one line naming
the variable on stderr and exits with code 2 (no traceback). HOST defaults to 127.0.0.1 so a local
run is not exposed; the container sets HOST=0.0.0.0.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn


def main() -> None:
    import sqlite3

    from .settings import Settings, SettingsError
    from .store import ProductStore

    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        fail(str(exc))
    # Open the database once before uvicorn starts: a file that is not SQLite would otherwise
    # fail the lifespan with a traceback.
    store = ProductStore(settings.database_path)
    try:
        store.open()
    except sqlite3.Error as exc:
        fail(f"DATABASE_PATH={settings.database_path!r} is invalid: {exc}")
    store.close()

    import uvicorn

    from .app import create_app
    from .logs import LogSink, route_standard_logging

    token = settings.redis_auth_token
    sink = LogSink(settings.log_format, secrets=[str(token)] if token else ())
    route_standard_logging(sink)
    uvicorn.run(
        create_app(settings, log=sink),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=5,
    )


def fail(message: str) -> NoReturn:
    print(f"service: {message}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    main()
