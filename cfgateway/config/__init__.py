"""Settings: constructor arguments > environment > ``cfgateway.toml`` profile > defaults.

This package is the only reader of ``os.environ`` and of the config file.

``cfgateway.toml`` (read from ``CFGATEWAY_CONFIG`` or ``config_path=``; ``./cfgateway.toml`` only when a
profile is asked for with ``profile=`` or ``CFGATEWAY_PROFILE``)::

    account_id = "abc123"                  # top-level keys apply to every profile
    api_token_env = "CLOUDFLARE_API_TOKEN"  # secrets by reference to an environment variable

    [profiles.prod]                        # chosen by profile="prod" or CFGATEWAY_PROFILE=prod
    gateway_id = "prod-gw"
    gateway_token_env = "PROD_GATEWAY_TOKEN"
    chat_model = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
    embed_model = "@cf/baai/bge-m3"
    fallbacks = ["openai/gpt-4o-mini"]
    ledger = "sqlite:///var/lib/cfgateway/costs.db"
    budgets = [{limit = 500, window = "monthly", alerts = [100, 300]}]
"""

from cfgateway.config._load import DEFAULT_FILE, default_spool_dir, describe, load_settings, setting_names
from cfgateway.config._settings import (
    DEFAULT_BASE_URL,
    DEFAULT_GATEWAY_BASE_URL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    ENDPOINTS,
    ENV_VARS,
    FALLBACK_MODES,
    FILE_ONLY_KEYS,
    PROVIDER_KEY_ENV,
    Settings,
    redact_url,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_FILE",
    "default_spool_dir",
    "DEFAULT_GATEWAY_BASE_URL",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "ENDPOINTS",
    "ENV_VARS",
    "FALLBACK_MODES",
    "FILE_ONLY_KEYS",
    "PROVIDER_KEY_ENV",
    "Settings",
    "describe",
    "load_settings",
    "redact_url",
    "setting_names",
]
