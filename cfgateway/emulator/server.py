"""Run the emulator with uvicorn: in a background thread (tests, demos) or in the foreground (CLI)."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from types import TracebackType
from typing import Any

import httpx

from cfgateway.emulator._extra import reraise_if_extra_missing
from cfgateway.emulator.config import EmulatorConfig
from cfgateway.emulator.state import EmulatorState

try:
    import uvicorn

    from cfgateway.emulator.app import create_app
    from cfgateway.emulator.faults import install_log_filter
except ModuleNotFoundError as exc:  # the [emulator] extra is not installed: say which command fixes it
    reraise_if_extra_missing(exc)

START_TIMEOUT_S = 10.0


def check_loopback(host: str) -> None:
    """Refuse anything but a loopback address: the emulator is for offline use only."""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(f"the emulator only listens on loopback (127.x, localhost, ::1), not {host!r}")


def _uvicorn_config(app: object, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        access_log=False,
        timeout_keep_alive=30,
        # the behaviour the tests were written against, whether or not uvloop/httptools are installed
        loop="asyncio",
        http="h11",
    )


class EmulatorServer:
    """The emulator on a free loopback port in a daemon thread.

    ``with EmulatorServer() as emu: ...`` or ``emu.start()`` / ``emu.stop()``. Exposes ``url``,
    ``base_url`` (``.../client/v4``), ``gateway_base_url`` (``.../v1``), ``state`` and ``config``.
    """

    def __init__(self, config: EmulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        check_loopback(host)
        self.config = config or EmulatorConfig()
        self.state = EmulatorState(self.config)
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/client/v4"

    @property
    def gateway_base_url(self) -> str:
        return f"{self.url}/v1"

    def client_kwargs(self, *, gateway: bool | str = False, **extra: Any) -> dict[str, Any]:
        """Settings that point a cfgateway client (or an adapter class) at this emulator.

        ``gateway=True`` routes through gateway ``"gw"`` (or the id given as a string), with its configured
        token when that gateway is authenticated; ``extra`` overrides or adds settings.
        """
        kw: dict[str, Any] = {
            "account_id": self.config.account_id or "acct",
            "api_token": self.config.api_token or "test-token",
            "base_url": self.base_url,
            "gateway_base_url": self.gateway_base_url,
        }
        if gateway:
            gw_id = gateway if isinstance(gateway, str) else "gw"
            gw = self.config.gateways.get(gw_id)
            kw["gateway_id"] = gw_id
            kw["gateway_token"] = (gw.auth_token if gw and gw.auth_token else "gw-token")
        kw.update(extra)
        return kw

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> EmulatorServer:
        if self.running:
            return self
        install_log_filter()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto=IPPROTO_TCP: asyncio only sets TCP_NODELAY on such sockets (else every reply waits ~40 ms)
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._server = uvicorn.Server(_uvicorn_config(create_app(state=self.state), self.host, self.port))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True, name="cf-emulator"
        )
        self._thread.start()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._server is not None and self._server.started:
                try:
                    if httpx.get(f"{self.url}/__emulator/health", timeout=1.0).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            if not self.running:
                break
            time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"the emulator did not start on {self.url}")

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self._server = None
        self._thread = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmulatorServer(url={self.url!r}, running={self.running})"


def serve(host: str = "127.0.0.1", port: int = 8787, config: EmulatorConfig | None = None) -> None:
    """Run the emulator in the foreground until interrupted (``cfgateway emulate --port N``)."""
    check_loopback(host)
    install_log_filter()
    app = create_app(config or EmulatorConfig())
    uvicorn.Server(_uvicorn_config(app, host, port)).run()


__all__ = ["EmulatorServer", "check_loopback", "serve"]
