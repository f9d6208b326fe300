"""The call, sans-IO (layer 5): everything about one call except sending it.

- :mod:`~cfgateway.calls.plan` — :func:`plan_chat`: route, wire, URL, headers, body (a dict), delivery
  (:class:`Streamed` or :class:`OnePiece`), client-side stop, what the budget holds; request validation.
- :mod:`~cfgateway.calls.limits` — what a route cannot do as asked (images, streams, the 256-token default).
- :mod:`~cfgateway.calls.outcome` — answers parsed and priced; :func:`make_record`.
- :mod:`~cfgateway.calls.stream` — :class:`StreamRun`, the state of one streamed answer.
- :mod:`~cfgateway.calls.embed` — :func:`plan_embed`: input checks, batches, :func:`merge`.
- :mod:`~cfgateway.calls.books` — :class:`Books`: budget holds and usage records.

:mod:`cfgateway.client` sends and iterates (sync and async, a few lines each); the fallback chain and
gateway mode use the same plan and books.
"""

from cfgateway.calls.books import Books, Hold
from cfgateway.calls.plan import ChatPlan, OnePiece, Streamed, plan_chat
from cfgateway.calls.stream import StreamRun

__all__ = ["Books", "ChatPlan", "Hold", "OnePiece", "StreamRun", "Streamed", "plan_chat"]
