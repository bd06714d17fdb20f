"""Real service processes for tests that need what only a real server has: a port a
browser can open, uvicorn's proxy-header handling, or a process to kill."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
# How long a command-line run in a test may take on a quiet machine (``scaled``).
COMMAND_TIMEOUT_S = 120


def scaled(seconds: float) -> float:
    """``seconds`` on a quiet machine, stretched by how busy this one is now (the load
    average per core): a suite beside other work waits longer instead of failing."""
    return seconds * max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))


def run_command(
    command: list[str],
    environment: dict[str, str] | None = None,
    cwd: Path = REPO,
    timeout_s: float = COMMAND_TIMEOUT_S,
) -> subprocess.CompletedProcess[str]:
    """``command`` until it exits, in a process group of its own: past ``timeout_s``
    (``scaled``) the whole group is killed (its children too: no process outlives the
    test) and the test fails with the command's output so far."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=scaled(timeout_s))
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        raise AssertionError(f"{command} did not finish in time:\n{stderr[-3000:]}") from None
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def index_command(environment: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    """``python -m app.cli.index <arguments>``, as an operator runs it, in a process of its
    own with exactly ``environment``."""
    return run_command([sys.executable, "-m", "app.cli.index", *arguments], environment)


UVICORN = (sys.executable, "-m", "uvicorn", "app.main:served_app", "--factory")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    """``uvicorn app.main:served_app --factory`` in its own process on the given folders, with extra
    settings (environment variables) and uvicorn options."""

    def __init__(
        self,
        tiny_model_dir: Path,
        images_dir: Path,
        index_dir: Path,
        settings: dict[str, str] | None = None,
        uvicorn_options: tuple[str, ...] = (),
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {
            **os.environ,
            "MODEL_NAME": str(tiny_model_dir),
            "DEVICE": "cpu",
            "IMAGES_DIR": str(images_dir),
            "INDEX_DIR": str(index_dir),
            "LOG_LEVEL": "WARNING",
            **(settings or {}),
        }
        self.process = subprocess.Popen(
            [*UVICORN, "--port", str(self.port), *uvicorn_options],
            cwd=REPO,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            # A group of its own: killing it kills uvicorn's workers too (--workers N),
            # which would otherwise live on as orphans holding a model each.
            start_new_session=True,
        )
        # Read the log as it comes: a full pipe would block the server's next log line.
        self.log: list[str] = []
        threading.Thread(
            target=lambda: self.log.extend(self.process.stderr or []), daemon=True
        ).start()

    def wait_until_indexed(self, timeout_s: float = 120) -> "Server":
        deadline = time.monotonic() + scaled(timeout_s)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                time.sleep(0.2)  # the reader's last lines
                raise AssertionError("".join(self.log[-30:]))
            try:
                body = httpx.get(f"{self.url}/health", timeout=2).json()
                if body["status"] == "ok" and not body["indexing"]["running"]:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("the server did not finish indexing")

    def kill(self) -> None:
        """SIGKILL the server and its workers."""
        with contextlib.suppress(ProcessLookupError):  # the whole group is gone already
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
