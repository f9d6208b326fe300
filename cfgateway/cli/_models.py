"""``cfgateway models``: the price and model catalog."""

from __future__ import annotations

import argparse
import json
from typing import Any


def _price(v: object) -> str:
    return "-" if v is None else f"{v}"


def _run(args: argparse.Namespace) -> int:
    from cfgateway.config import load_settings
    from cfgateway.costs.catalog import load_catalog

    catalog = load_catalog(load_settings().catalog)
    rows = [m for m in catalog.models.values() if args.kind in (None, m.kind)]
    if args.json:
        out = [
            {
                "model": m.model, "kind": m.kind, "provider": m.provider,
                "input_per_m": _price(m.input_price), "output_per_m": _price(m.output_price),
                "cached_input_per_m": _price(m.cached_input_price), "context_window": m.context_window,
                "dims": m.dims, "max_batch": m.max_batch, "as_of": m.as_of, "source": m.source,
            }
            for m in rows
        ]
        print(json.dumps(out, indent=1))
        return 0
    print(f"price catalog as of {catalog.as_of}; USD per million tokens; '-' = no published price")
    print(f"{'model':<50} {'kind':<5} {'in':>8} {'out':>8} {'ctx/dims':>9}")
    for m in sorted(rows, key=lambda r: (r.kind, r.model)):
        size = m.context_window if m.kind == "chat" else m.dims
        print(f"{m.model:<50} {m.kind:<5} {_price(m.input_price):>8} {_price(m.output_price):>8} {size or '-':>9}")
    return 0


def register(sub: Any) -> None:
    m = sub.add_parser("models", help="list the price and model catalog")
    m.add_argument("--kind", choices=["chat", "embed"])
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=_run)
