"""``cfgateway config show``: the resolved settings, each with where it came from; secrets masked."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def add_config_options(p: argparse.ArgumentParser) -> None:
    """``--profile`` / ``--config``, the same on every command that reads settings."""
    p.add_argument("--profile", help="a cfgateway.toml profile (env CFGATEWAY_PROFILE)")
    p.add_argument("--config", help="the config file (env CFGATEWAY_CONFIG; ./cfgateway.toml only with a profile)")


def _show(args: argparse.Namespace) -> int:
    from cfgateway.config import DEFAULT_FILE, describe, load_settings

    settings = load_settings(profile=args.profile, config_path=args.config)
    rows = describe(settings)
    if args.json:
        print(json.dumps([{"setting": n, "value": v, "source": s} for n, v, s in rows], indent=1))
        return 0
    profile = f", profile {settings.profile}" if settings.profile else ""
    print(f"config file: {settings.config_path or 'none'}{profile}")
    if settings.config_path is None and Path(DEFAULT_FILE).is_file():
        print(f"note: ./{DEFAULT_FILE} exists but is not read: set CFGATEWAY_CONFIG=./{DEFAULT_FILE}, pass --config, "
              "or name a profile (--profile / CFGATEWAY_PROFILE)")
    width = max(len(n) for n, _, _ in rows)
    for name, value, source in rows:
        print(f"{name:<{width}}  {value}  ({source})")
    return 0


def register(sub: Any) -> None:
    c = sub.add_parser("config", help="show the resolved configuration")
    csub = c.add_subparsers(dest="config_command", required=True)
    show = csub.add_parser("show", help="every setting with its value (secrets masked) and source")
    add_config_options(show)
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=_show)
