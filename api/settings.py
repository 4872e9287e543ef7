"""Settings of the API service (``CORDON_*`` env vars, or a YAML file)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from cordon.settings import RoleSettings

__all__ = ["ApiSettings"]

_PLACEHOLDERS = {"changeme", "change-me", "password", "admin", "secret"}


class ApiSettings(RoleSettings):
    """The API service: its store, where it listens, retention and fleet-health rules."""

    model_config = SettingsConfigDict(env_prefix="CORDON_", env_nested_delimiter="__", extra="forbid")

    database_url: str = Field(
        default="sqlite:///cordon.sqlite3",
        min_length=8,
        description="SQLAlchemy URL: sqlite:///file (embedded default) or postgresql+psycopg://user@host/db.",
    )
    bind_host: str = Field(default="127.0.0.1", min_length=1, description="Address the HTTP server binds.")
    bind_port: int = Field(default=8000, ge=1, le=65535, description="HTTP port.")
    bootstrap_admin_password: SecretStr | None = Field(
        default=None,
        description="If set and the store has no users, create user 'admin' with this password at start-up.",
    )
    token_ttl_s: int = Field(default=8 * 3600, ge=60, le=30 * 86_400, description="Access token lifetime, s.")
    login_rate_limit: str = Field(
        default="10/minute", pattern=r"^\d+/(second|minute|hour)$", description="Logins per client address."
    )
    consume_events: bool = Field(
        default=True, description="Persist reads, hits and heartbeats from Kafka into the store."
    )
    group_id: str = Field(
        default="cordon-api", min_length=1, description="Kafka consumer group of the store."
    )
    session_timeout_ms: int = Field(
        default=10_000, ge=1_000, le=300_000, description="Kafka group session timeout of the ingest."
    )
    max_poll_interval_ms: int = Field(
        default=30_000,
        ge=1_000,
        le=600_000,
        description="Longest gap between ingest polls before a rebalance.",
    )
    reads_retention_days: int = Field(
        default=365, ge=1, le=3650, description="Reads older than this are purged (National ANPR Standards)."
    )
    hits_retention_days: int = Field(
        default=730, ge=1, le=3650, description="Hits older than this are purged; at least the reads' period."
    )
    purge_interval_s: float = Field(
        default=3600.0, ge=10.0, le=86_400.0, description="How often the scheduled purge runs, s."
    )
    camera_down_after_s: float = Field(
        default=30.0, ge=1.0, le=86_400.0, description="A camera reported down this long raises an alert, s."
    )
    box_silent_after_s: float = Field(
        default=60.0, ge=1.0, le=86_400.0, description="No heartbeat from a box this long raises an alert, s."
    )
    hotlist_publish: bool = Field(
        default=True, description="Publish activated hotlist versions to Kafka for the matchers."
    )
    registry_publish: bool = Field(
        default=True,
        description="Publish camera registry changes to Kafka (cordon.cameras) for the matchers.",
    )

    @field_validator("bootstrap_admin_password")
    @classmethod
    def verify_not_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and (
            value.get_secret_value().lower() in _PLACEHOLDERS or len(value.get_secret_value()) < 8
        ):
            raise ValueError("bootstrap_admin_password is a placeholder or shorter than 8 characters")
        return value

    @model_validator(mode="after")
    def verify_hits_outlive_reads(self) -> ApiSettings:
        if self.hits_retention_days < self.reads_retention_days:
            raise ValueError(
                f"hits_retention_days={self.hits_retention_days} must be at least "
                f"reads_retention_days={self.reads_retention_days}"
            )
        return self
