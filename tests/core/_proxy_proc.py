"""`cfgateway proxy` as a real process (uvicorn) on a free 127.0.0.1 port, in front of an emulator.

Test modules `import _proxy_proc` (tests/core is on pytest's pythonpath). The process gets a clean
environment (no developer credentials) pointing at the emulator; its stderr goes to a file the test can read.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from _redis import free_port


@dataclass
class ProxyProc:
    url: str  # http://127.0.0.1:PORT
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))


def emulator_env(emulator: Any, **extra: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tempfile.gettempdir(),
           "CLOUDFLARE_ACCOUNT_ID": "acct", "CLOUDFLARE_API_TOKEN": "test-token",
           "CLOUDFLARE_API_BASE_URL": emulator.base_url, "CLOUDFLARE_AI_GATEWAY_BASE_URL": emulator.gateway_base_url,
           "CFGATEWAY_MAX_RETRIES": "0", "PYTHONUNBUFFERED": "1"}
    env.update(extra)
    return env


def start(args: Sequence[str], env: Mapping[str, str], port: int | None = None) -> ProxyProc:
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="cfgw-proxy-"))
    log = workdir / "stderr.log"
    cmd = [sys.executable, "-m", "cfgateway", "proxy", "--port", str(port), *args]
    with open(log, "wb") as err:
        proc = subprocess.Popen(cmd, env=dict(env), cwd=workdir, stdout=subprocess.DEVNULL, stderr=err)
    pp = ProxyProc(f"http://127.0.0.1:{port}", proc, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"cfgateway proxy exited with {proc.returncode}: {pp.stderr()[-2000:]}")
        try:
            if httpx.get(f"{pp.url}/healthz", timeout=1.0).status_code == 200:
                return pp
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    stop(pp)
    raise RuntimeError(f"cfgateway proxy did not answer /healthz within 30 s: {pp.stderr()[-2000:]}")


def stop(pp: ProxyProc, sig: int = signal.SIGTERM) -> int:
    if pp.proc.poll() is None:
        pp.proc.send_signal(sig)
        try:
            pp.proc.wait(30)
        except subprocess.TimeoutExpired:
            pp.proc.kill()
            pp.proc.wait(5)
    return pp.proc.returncode


@contextmanager
def running(args: Sequence[str], env: Mapping[str, str]) -> Iterator[ProxyProc]:
    pp = start(args, env)
    try:
        yield pp
    finally:
        stop(pp)
