"""Configuration: defaults, then the documented environment variables, then a test mapping.

Nothing here runs at import time; ``load_config`` is called by ``create_app``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from fundcircle.errors import ConfigurationError

#: FUNDCIRCLE_ENV values. The dev outbox and the demo seed exist only outside production.
ENVIRONMENTS = ("development", "demo", "production", "testing")


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


def default_instance_path() -> Path:
    return Path(os.environ.get("FUNDCIRCLE_INSTANCE_PATH", Path.cwd() / "instance")).resolve()


def _secret_key(instance_path: Path, environment: str) -> str:
    from_env = os.environ.get("SECRET_KEY")
    if from_env:
        if len(from_env) < 32:
            raise ConfigurationError("SECRET_KEY must be at least 32 characters long")
        return from_env
    if environment == "production":
        raise ConfigurationError(
            "SECRET_KEY is not set. In production fundcircle refuses to start without one: "
            "set SECRET_KEY to a long random value shared by every app server."
        )
    # Development and demo: generate once and keep it under instance/ so sessions survive restarts.
    key_file = instance_path / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def load_config(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The app's configuration as a dict; ``overrides`` (tests) win over the environment."""
    overrides = dict(overrides or {})
    environment = overrides.get("ENVIRONMENT") or os.environ.get("FUNDCIRCLE_ENV", "development")
    if environment not in ENVIRONMENTS:
        raise ConfigurationError(f"FUNDCIRCLE_ENV must be one of {', '.join(ENVIRONMENTS)} (got {environment!r})")
    instance_path = Path(overrides.get("INSTANCE_PATH") or default_instance_path())
    https = overrides.get("HTTPS", _env_bool("FUNDCIRCLE_HTTPS", environment == "production"))

    config: dict[str, Any] = {
        "ENVIRONMENT": environment,
        "INSTANCE_PATH": instance_path,
        "DATABASE_URL": os.environ.get("DATABASE_URL") or f"sqlite:///{instance_path / 'fundcircle.sqlite3'}",
        "HTTPS": https,
        # Public base URL used in e-mailed links; behind a proxy set it explicitly.
        "BASE_URL": os.environ.get("FUNDCIRCLE_BASE_URL", ""),
        # Number of proxies in front of the app whose X-Forwarded-* headers are trusted.
        "TRUSTED_PROXIES": int(os.environ.get("FUNDCIRCLE_TRUSTED_PROXIES", "0")),
        "MAIL_SERVER": os.environ.get("MAIL_SERVER", ""),
        "MAIL_PORT": int(os.environ.get("MAIL_PORT", "587")),
        "MAIL_USERNAME": os.environ.get("MAIL_USERNAME", ""),
        "MAIL_PASSWORD": os.environ.get("MAIL_PASSWORD", ""),
        "MAIL_USE_TLS": _env_bool("MAIL_USE_TLS", True),
        "MAIL_FROM": os.environ.get("MAIL_FROM", "fundcircle <no-reply@fundcircle.local>"),
        # Sessions: server-side rows; idle and absolute limits (ASVS 5.0 7.3.1/7.3.2).
        "SESSION_IDLE_TIMEOUT": timedelta(minutes=30),
        "SESSION_ABSOLUTE_LIFETIME": timedelta(hours=12),
        "LOGIN_TOKEN_LIFETIME": timedelta(minutes=10),
        "LOGIN_LINKS_PER_ADDRESS_PER_HOUR": 5,
        "LOGIN_LINKS_PER_IP_PER_HOUR": 30,
        "LOGIN_CODE_MAX_ATTEMPTS": 5,
        "INVITATION_LIFETIME": timedelta(days=14),
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        "MAX_CONTENT_LENGTH": 2 * 1024 * 1024,
        "SQL_ECHO": _env_bool("FUNDCIRCLE_SQL_ECHO", False),
        # Open Collective (payouts, reconciliation). Without a token `fundcircle up` starts the local
        # fake OC server and points these at it. The webhook endpoint is /webhooks/opencollective/<secret>
        # (disabled while the secret is empty).
        "OPENCOLLECTIVE_API_URL": os.environ.get("OPENCOLLECTIVE_API_URL", "https://api.opencollective.com/graphql/v2"),
        "OPENCOLLECTIVE_WEBSITE_URL": os.environ.get("OPENCOLLECTIVE_WEBSITE_URL", "https://opencollective.com"),
        "OPENCOLLECTIVE_TOKEN": os.environ.get("OPENCOLLECTIVE_TOKEN", ""),
        "OPENCOLLECTIVE_WEBHOOK_SECRET": os.environ.get("OPENCOLLECTIVE_WEBHOOK_SECRET", ""),
        "OPENCOLLECTIVE_TIMEOUT_S": float(os.environ.get("OPENCOLLECTIVE_TIMEOUT_S", "15")),
        # Stripe (contributions). No key outside production: `fundcircle up` starts a local fake
        # Stripe and fills these in. STRIPE_WEBHOOK_SECRET may list several (comma-separated).
        "STRIPE_SECRET_KEY": os.environ.get("STRIPE_SECRET_KEY", ""),
        "STRIPE_WEBHOOK_SECRET": os.environ.get("STRIPE_WEBHOOK_SECRET", ""),
        "STRIPE_API_BASE": os.environ.get("STRIPE_API_BASE", ""),
        "CONTRIBUTION_MIN_MINOR": int(os.environ.get("FUNDCIRCLE_CONTRIBUTION_MIN_MINOR", "100")),
        "CONTRIBUTION_MAX_MINOR": int(os.environ.get("FUNDCIRCLE_CONTRIBUTION_MAX_MINOR", "1000000")),
        "CONTRIBUTIONS_PER_ADDRESS_PER_HOUR": 20,  # each one creates a Stripe Checkout Session
        # Second factor (TOTP): wrong codes in a row before code entry locks, and for how long.
        "SECOND_FACTOR_MAX_ATTEMPTS": 5,
        "SECOND_FACTOR_LOCKOUT": timedelta(minutes=15),
    }
    config.update(overrides)
    config["SECRET_KEY"] = overrides.get("SECRET_KEY") or _secret_key(instance_path, environment)
    secure = bool(config["HTTPS"])
    config.update(
        SESSION_COOKIE_NAME="__Host-session" if secure else "session",
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_PATH="/",
        PREFERRED_URL_SCHEME="https" if secure else "http",
        PERMANENT_SESSION_LIFETIME=config["SESSION_ABSOLUTE_LIFETIME"],
    )
    config["OUTBOX_ENABLED"] = environment in ("development", "demo", "testing") and not config["MAIL_SERVER"]
    if environment == "production" and config["STRIPE_SECRET_KEY"] and not config["STRIPE_WEBHOOK_SECRET"]:
        # Without it every webhook is refused and no contribution ever reaches the pot.
        raise ConfigurationError("STRIPE_SECRET_KEY is set but STRIPE_WEBHOOK_SECRET is not: copy the signing "
                                 "secret (whsec_…) of the /webhooks/stripe endpoint from Stripe's dashboard.")
    return config


def resource_dir(name: str) -> Path:
    """The top-level ``templates`` or ``migrations`` folder: the checkout's in development, the
    copy shipped in the wheel (``fundcircle._<name>``) when installed."""
    checkout = Path(__file__).resolve().parent.parent / name
    if (checkout / ".fundcircle").exists():
        return checkout
    from importlib.resources import files

    return Path(str(files(f"fundcircle._{name}")))
