"""The service's entry point: ``python -m app [uvicorn options]``.

Runs ``uvicorn app.main:served_app --factory`` with the given options (``--host``,
``--port``, ``--workers``, ...), after two checks that take about a second: that the port
is free (uvicorn binds it only once the model has loaded, so a port in use would
otherwise be told after a first start's download and export, minutes later), and that
``MODEL_NAME`` can be loaded at all (``app.embedding.model_source``: told before torch and
transformers are imported, which takes seconds on a busy machine).
"""

import argparse
import errno
import socket
import sys

import uvicorn.main

from app.config import load_settings
from app.embedding.model_source import HubAccess, model_problem
from app.errors import ConfigError

APP = "app.main:served_app"
# uvicorn's own defaults, for the check when no option names them.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def port_problem(host: str, port: int) -> str | None:
    """Why uvicorn could not listen on ``host:port``, in one line; None when it can.

    Binds as uvicorn does (SO_REUSEADDR, so a port left in TIME_WAIT counts as free)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (
                    f"Port {port} on {host} is in use (another program, or this service "
                    "already running): stop it, or start with --port and another number."
                )
            return f"Cannot listen on {host}:{port} ({exc.strerror or exc})."
    return None


def model_setting_problem() -> str | None:
    """Why MODEL_NAME cannot be loaded, in one line; None when it may be, or when the
    settings themselves are wrong (the service's start tells that in its own line)."""
    try:
        settings = load_settings()
    except ConfigError:
        return None
    hub = HubAccess(settings.hf_endpoint, settings.hf_hub_offline)
    return model_problem(settings.model_name, hub)


def main(argv: list[str] | None = None) -> None:
    options = sys.argv[1:] if argv is None else argv
    address = argparse.ArgumentParser(add_help=False)
    address.add_argument("--host", default=DEFAULT_HOST)
    address.add_argument("--port", type=int, default=DEFAULT_PORT)
    known, _ = address.parse_known_args(options)
    if "--fd" not in options and "--uds" not in options and known.port != 0:
        problem = port_problem(known.host, known.port)
        if problem:
            print(problem, file=sys.stderr)
            raise SystemExit(2)
    problem = model_setting_problem()
    if problem:
        print(problem, file=sys.stderr)
        raise SystemExit(3)
    uvicorn.main.main(args=[APP, "--factory", *options], prog_name="python -m app")


if __name__ == "__main__":
    main()
