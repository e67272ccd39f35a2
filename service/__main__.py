"""`python -m service`: validate the environment, then run one uvicorn process on HOST:PORT.

A bad environment value prints one line naming the variable on stderr and exits with code 2 (no
traceback). HOST defaults to 127.0.0.1 so a local run is not exposed; the container sets
HOST=0.0.0.0.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    from service.settings import Settings, SettingsError

    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        print(f"service: {exc}", file=sys.stderr)
        sys.exit(2)

    import uvicorn

    from service.app import create_app
    from service.logs import LogSink, route_standard_logging

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


if __name__ == "__main__":
    main()
