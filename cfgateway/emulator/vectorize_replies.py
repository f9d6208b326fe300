"""The Vectorize emulator's replies and lookups, shared by the index routes (:mod:`.vectorize`) and the vector
routes (:mod:`.vectorize_vectors`): the error envelope, the JSON body check, the index lookup."""

from __future__ import annotations

from typing import Any

from cfgateway.emulator.context import Ctx, envelope
from cfgateway.emulator.reply import Reply, cf_error
from cfgateway.emulator.vectorize_state import EmuIndex, VectorizeState

FAMILY = "vectorize"
BAD = 40000  # guess: the code of validation failures the contract does not record (see .vectorize)


def err(status: int, code: int, message: str) -> Reply:
    return cf_error(status, code, message, family=FAMILY)


def ok(result: Any, status: int = 200) -> Reply:
    return Reply(status=status, body=envelope(result), family=FAMILY)


def bad(message: str) -> Reply:
    return err(400, BAD, message)


def state_of(ctx: Ctx) -> VectorizeState:
    return ctx.state.vectorize


def json_body(ctx: Ctx) -> dict[str, Any] | Reply:
    """The JSON object body, or the 40026 answers recorded for a wrong content type and unparsable JSON."""
    if not ctx.headers.get("content-type", "").lower().startswith("application/json"):
        return err(400, 40026, "Expected request with `Content-Type: application/json`")
    if not ctx.json_ok or not isinstance(ctx.body, dict):
        return err(400, 40026, "Failed to parse the request body as JSON: expected an object")
    return ctx.body


def find(ctx: Ctx, account: str, name: str | None) -> EmuIndex | Reply:
    """The (advanced) index, or the 3000/3005 answer."""
    st = state_of(ctx)
    index = st.indexes.get((account, name or ""))
    if index is None:
        status = st.settings.not_found_status
        if (account, name or "") in st.deleted:
            return err(status, 3005, f'vectorize.index.deleted - Index name "{name}" was deleted')
        return err(status, 3000, f'vectorize.index.not_found - Index name "{name}"')
    st.advance(index)
    return index


__all__ = ["BAD", "FAMILY", "bad", "err", "find", "json_body", "ok", "state_of"]
