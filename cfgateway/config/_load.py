"""Resolve settings: arguments > environment > ``cfgateway.toml`` profile > defaults, remembering where
each value came from (``Settings.sources``; ``cfgateway config show`` prints them).

Which file is read (decided for issue 14: a process no longer picks up whatever ``cfgateway.toml``
happens to sit in its working directory):

1. ``config_path=`` (or ``config=``), else ``CFGATEWAY_CONFIG``: that file, which must exist;
2. else, only when a profile is asked for (``profile=`` or ``CFGATEWAY_PROFILE``): ``./cfgateway.toml``,
   which must then exist;
3. else no file at all.

Secrets stay out of the file: ``api_token_env = "MY_CF_TOKEN"`` / ``gateway_token_env = "…"`` /
``provider_keys_env = {openai = "OPENAI_KEY_PROD"}`` name the variables that hold them.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from cfgateway.config._settings import ENV_VARS, FILE_ONLY_KEYS, PROVIDER_KEY_ENV, Settings, coerce
from cfgateway.errors import ConfigError

DEFAULT_FILE = "cfgateway.toml"
_NOT_SETTINGS = ("profile", "config_path", "sources")


def setting_names() -> list[str]:
    """The keys a file profile may hold."""
    return sorted({f.name for f in fields(Settings) if f.name not in _NOT_SETTINGS} | set(FILE_ONLY_KEYS))


def _read_toml(path: Path, profile: str | None) -> tuple[dict[str, Any], dict[str, str]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    profiles = data.pop("profiles", {})
    sources = {k: f"file {path}" for k in data}
    if profile is not None:
        if profile not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            raise ConfigError(f"profile {profile!r} is not in {path} (profiles there: {known})")
        data.update(profiles[profile])
        sources.update({k: f"file {path} [profiles.{profile}]" for k in profiles[profile]})
    known_names = setting_names()
    unknown = sorted(set(data) - set(known_names))
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(known_names)}")
    return data, sources


def _config_file(config_path: Any, environ: Mapping[str, str], profile: str | None) -> Path | None:
    path_str = config_path or environ.get("CFGATEWAY_CONFIG")
    if path_str:
        path = Path(path_str)
        if not path.is_file():
            raise ConfigError(f"config file {path} (from CFGATEWAY_CONFIG or config_path=) does not exist")
        return path
    if profile is None:
        return None  # ./cfgateway.toml is read only when asked for (a profile, CFGATEWAY_CONFIG or config_path=)
    path = Path(DEFAULT_FILE)
    if not path.is_file():
        raise ConfigError(
            f"profile {profile!r} was asked for but there is no ./{DEFAULT_FILE}: set CFGATEWAY_CONFIG to the file "
            f"(or pass config_path=)"
        )
    return path


def _env_references(values: dict[str, Any], sources: dict[str, str], environ: Mapping[str, str]) -> list[str]:
    """Replace ``*_env`` file keys by the variables' values; the names of unset ones (an error only if needed)."""
    missing: list[str] = []
    for key in ("api_token", "gateway_token"):
        var = values.pop(f"{key}_env", None)
        if var is None:
            continue
        if environ.get(str(var)):
            values[key] = environ[str(var)]
            sources[key] = f"{sources.pop(f'{key}_env')} via env {var}"
        else:
            missing.append(f"{key}_env names {var}, which is not set")
    refs = values.pop("provider_keys_env", None)
    if refs is not None:
        if not isinstance(refs, Mapping):
            raise ConfigError("provider_keys_env is a table of provider = \"ENV_VAR\", e.g. {openai = \"OPENAI_KEY\"}")
        keys = dict(values.get("provider_keys", {}))
        for provider, var in refs.items():
            if not environ.get(str(var)):
                raise ConfigError(f"provider_keys_env: {provider} = {var!r} names a variable that is not set")
            keys[provider] = environ[str(var)]
        values["provider_keys"] = keys
        sources["provider_keys"] = sources.pop("provider_keys_env")
    return missing


def load_settings(
    *,
    profile: str | None = None,
    config_path: str | os.PathLike[str] | None = None,
    config: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Resolve settings: ``overrides`` (non-None) > ``env`` > config-file profile > defaults."""
    environ = os.environ if env is None else env
    profile = profile or environ.get("CFGATEWAY_PROFILE") or None
    path = _config_file(config_path or config, environ, profile)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if path is not None:
        data, sources = _read_toml(path, profile)
        values.update(data)
    missing = _env_references(values, sources, environ)
    for name, names in ENV_VARS.items():
        for var in names:
            if environ.get(var):
                values[name], sources[name] = environ[var], f"env {var}"
                break
    byok = coerce("byok", overrides.get("byok") if overrides.get("byok") is not None else values.get("byok", True))
    keys = dict(values.get("provider_keys", {}))
    if not byok:
        for provider, var in PROVIDER_KEY_ENV.items():
            if environ.get(var) and provider not in keys:
                keys[provider] = environ[var]
                sources.setdefault("provider_keys", f"env {var}")
    keys.update(overrides.pop("provider_keys", None) or {})
    values["provider_keys"] = keys
    given = {k: v for k, v in overrides.items() if v is not None}
    values.update(given)
    sources.update({k: "argument" for k in given})
    for problem in missing:
        name = problem.split("_env", 1)[0]
        if not values.get(name):
            raise ConfigError(f"{path}: {problem}; export it, or set {ENV_VARS[name][0]}")
    values["profile"] = profile
    values["config_path"] = str(path) if path is not None else None
    settings = Settings(**{k: coerce(k, v) for k, v in values.items()})
    object.__setattr__(settings, "sources", sources)
    return settings


def _shown(name: str, value: Any) -> str:
    from cfgateway.config._settings import redact_url

    if name in ("api_token", "gateway_token", "alert_webhook"):
        return "set (hidden)" if value else "not set"
    if name == "provider_keys":
        return ", ".join(f"{p}=set (hidden)" for p in sorted(value)) if value else "none"
    if name in ("ledger", "embed_cache", "base_url", "gateway_base_url", "catalog"):
        return str(redact_url(value)) if value else "-"
    if isinstance(value, tuple):
        return ", ".join(str(dict(v)) if isinstance(v, Mapping) else str(v) for v in value) if value else "-"
    if isinstance(value, Mapping):
        return str(dict(value)) if value else "-"
    return "-" if value is None else str(value)


def describe(settings: Settings) -> list[tuple[str, str, str]]:
    """``(name, value as printable, source)`` per setting; secrets never shown, URLs redacted."""
    rows = []
    for f in fields(Settings):
        if f.name in _NOT_SETTINGS:
            continue
        source = settings.sources.get(f.name, "default")
        rows.append((f.name, _shown(f.name, getattr(settings, f.name)), source))
    return rows


def default_spool_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where unsent usage records wait: ``$CFGATEWAY_SPOOL_DIR``, else ``$XDG_CACHE_HOME/cfgateway/spool``,
    else ``~/.cache/cfgateway/spool``; ``<tmp>/cfgateway-spool-<uid>`` when there is no home directory."""
    environ = os.environ if env is None else env
    if environ.get("CFGATEWAY_SPOOL_DIR"):
        return Path(environ["CFGATEWAY_SPOOL_DIR"])
    if environ.get("XDG_CACHE_HOME"):
        return Path(environ["XDG_CACHE_HOME"]) / "cfgateway" / "spool"
    try:
        return Path.home() / ".cache" / "cfgateway" / "spool"
    except RuntimeError:  # no home directory
        uid = os.getuid() if hasattr(os, "getuid") else 0
        return Path(tempfile.gettempdir()) / f"cfgateway-spool-{uid}"


__all__ = ["DEFAULT_FILE", "default_spool_dir", "describe", "load_settings", "setting_names"]
