"""A throwaway real redis-server on a free loopback port, for the Redis ledger tests.

Test modules `import _redis` (pytest's ``pythonpath`` holds tests/core; ``--import-mode=importlib``
does not make test folders importable by itself). No server installed is a test failure, never a skip:
CI installs Debian's ``redis-server``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

MISSING = (
    "redis-server is not installed: the Redis ledger tests need a real server "
    "(apt-get install redis-server; `make test` and .ci/run install it)"
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def redis_server() -> Iterator[str]:
    """Run ``redis-server`` (no persistence) on a free 127.0.0.1 port; yield its URL; stop it."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError(MISSING)
    port = free_port()
    args = [exe, "--save", "", "--appendonly", "no", "--port", str(port), "--bind", "127.0.0.1"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not _ping(port):
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"redis-server exited with {proc.returncode}: {err}")
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not answer PING within 10 s")
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stderr:
            proc.stderr.close()


class RestartableRedis:
    """A redis-server on a fixed loopback port that can be stopped and started again with its data (an
    append-only file in ``data_dir``): what a Redis restart looks like to its clients."""

    def __init__(self, data_dir: str) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError(MISSING)
        self.exe, self.data_dir = exe, data_dir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [self.exe, "--save", "", "--appendonly", "yes", "--appendfsync", "no", "--dir", self.data_dir,
                "--port", str(self.port), "--bind", "127.0.0.1"]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not _ping(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode} (port {self.port} taken?)")
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not answer PING within 10 s")
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM: the server writes its append-only file and exits; clients see refused connections."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None


@contextmanager
def restartable_redis(data_dir: str) -> Iterator[RestartableRedis]:
    server = RestartableRedis(data_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
