"""The emulator's optional dependencies (the ``[emulator]`` extra) and the error that names them.

Stdlib only: the pytest plugin imports this on every pytest run of every project that has cfgateway
installed, so it must stay free.
"""

from __future__ import annotations

import importlib.util
from typing import NoReturn

EXTRA_MODULES = ("starlette", "uvicorn")
INSTALL_HINT = "pip install 'cfgateway[emulator]'"


class EmulatorExtraMissing(ImportError):
    """The ``[emulator]`` extra (starlette, uvicorn) is not installed."""


def missing_modules() -> list[str]:
    """The emulator's optional dependencies that are not importable, in ``EXTRA_MODULES`` order."""
    return [name for name in EXTRA_MODULES if importlib.util.find_spec(name) is None]


def extra_missing_error(missing: list[str]) -> EmulatorExtraMissing:
    return EmulatorExtraMissing(
        f"the cfgateway emulator needs starlette and uvicorn (missing: {', '.join(missing)}): {INSTALL_HINT}"
    )


def reraise_if_extra_missing(exc: ModuleNotFoundError) -> NoReturn:
    """Raise :class:`EmulatorExtraMissing` naming the extra when ``exc`` is a missing starlette/uvicorn;
    re-raise ``exc`` unchanged otherwise (a real bug stays a real traceback)."""
    top = (exc.name or "").split(".")[0]
    if top in EXTRA_MODULES:
        raise extra_missing_error(missing_modules() or [top]) from exc
    raise exc
