"""The floor for the proxy hop: the least an ASGI proxy in Python costs on this machine. Starlette under uvicorn
(uvloop + httptools, as the real proxy runs), one aiohttp session, the request body forwarded as bytes to the
upstream's OpenAI-compatible ``/ai/v1/chat/completions`` and the answer (or the stream, chunk by chunk) passed
back untouched: no validation, no key check, no routing, no usage, no cost, no metrics.

    python bench/_floor_proxy.py PORT UPSTREAM_BASE TOKEN
"""

from __future__ import annotations

import sys
from typing import Any

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


def floor_app(upstream: str, token: str) -> Starlette:
    state: dict[str, Any] = {}

    async def session() -> aiohttp.ClientSession:
        if "s" not in state:
            state["s"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
        return state["s"]  # type: ignore[no-any-return]

    async def chat(request: Request) -> Response:
        body = await request.body()
        s = await session()
        headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
        resp = await s.post(f"{upstream}/chat/completions", data=body, headers=headers)
        if not resp.headers.get("content-type", "").startswith("text/event-stream"):
            data = await resp.read()
            resp.release()
            return Response(data, resp.status, media_type="application/json")

        async def pieces() -> Any:
            async for piece in resp.content.iter_any():
                yield piece
            resp.release()
        return StreamingResponse(pieces(), resp.status, media_type="text/event-stream")

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]),
                             Route("/healthz", health, methods=["GET"])])


if __name__ == "__main__":
    port, upstream, token = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    uvicorn.run(floor_app(upstream, token), host="127.0.0.1", port=port, log_level="warning", access_log=False)
