"""Settings of the stream matcher (``CORDON_*`` env vars, or a YAML file)."""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from cordon.settings import RoleSettings

__all__ = ["MatcherSettings"]


class MatcherSettings(RoleSettings):
    """A matcher instance: where reads come from, where hits go, and the matching policy."""

    model_config = SettingsConfigDict(env_prefix="CORDON_", env_nested_delimiter="__", extra="forbid")

    instance_id: str = Field(
        default_factory=lambda: f"matcher-{socket.gethostname()}"[:64],
        min_length=1,
        max_length=64,
        description="Id of this matcher instance (logs, DLQ records).",
    )
    group_id: str = Field(default="cordon-matcher", min_length=1, description="Kafka consumer group.")
    reads_topic: str = Field(default="cordon.reads", min_length=1)
    hits_topic: str = Field(default="cordon.hits", min_length=1)
    dlq_topic: str = Field(default="cordon.dlq", min_length=1)
    hotlists_topic: str = Field(default="cordon.hotlists", min_length=1)
    cameras_topic: str = Field(
        default="cordon.cameras",
        min_length=1,
        description="Camera registry the API publishes; followed when camera_registry (a file) is unset.",
    )
    camera_registry: Path | None = Field(
        default=None,
        description="YAML/CSV camera registry (id, road, arterial, ...); None: no camera is arterial.",
    )
    all_cameras_hotlists: tuple[str, ...] = Field(
        default=(), description="Hotlists that raise hits on every camera, not only on arterial routes."
    )
    max_edits: int = Field(default=1, ge=0, le=1, description="Fuzzy matching: 1 edit, or 0 for exact only.")
    dedupe_window_s: float = Field(
        default=300.0, ge=0.0, le=86_400.0, description="Same plate + entry within this long: one alert, s."
    )
    low_confidence_threshold: float = Field(
        default=0.6,
        ge=0.0,
        le=1.0,
        description="Fuzzy hits scoring below this (score x read confidence) drop a priority.",
    )
    edit_max_read_confidence: float = Field(
        default=0.9,
        ge=0.0,
        le=1.0,
        description="One-edit matches raise hits only for reads less confident than this.",
    )
    edit_max_char_confidence: float = Field(
        default=0.9,
        ge=0.0,
        le=1.0,
        description="...and, for reads with per-character confidences, only where a character the edit "
        "touches is less confident than this.",
    )
    max_poll_records: int = Field(
        default=5_000,
        ge=1,
        le=50_000,
        description="Most reads per batch; one publish of hits and one commit per batch. A poll costs the "
        "fetcher process a few ms whatever its size (hand-overs to kafka-python's network thread), so "
        "batches of 2,000 fall behind; batches of 10,000 cost more CPU a read than 5,000 (on the matcher "
        "benchmark, fetcher 1.0 vs 0.9 s a run). A caught-up matcher's batches are small anyway.",
    )
    hotlist_load_timeout_s: float = Field(
        default=600.0, ge=1.0, le=7200.0, description="Longest wait for the current hotlist at start-up, s."
    )
    session_timeout_ms: int = Field(
        default=10_000, ge=1_000, le=300_000, description="Group session timeout."
    )
    max_poll_interval_ms: int = Field(
        default=30_000,
        ge=1_000,
        le=600_000,
        description="Longest gap between polls before the group rebalances.",
    )
    metrics_port: int | None = Field(default=9102, ge=0, le=65535, description="Prometheus port; None: off.")
    processes: int = Field(
        default=1,
        ge=1,
        le=32,
        description="Matcher processes on this machine (group members; process i serves metrics on "
        "metrics_port + i). More than the reads topic's partitions (6) leaves some idle.",
    )

    @model_validator(mode="after")
    def verify_timeouts(self) -> MatcherSettings:
        if self.session_timeout_ms > self.max_poll_interval_ms:
            raise ValueError(
                f"session_timeout_ms={self.session_timeout_ms} must not exceed "
                f"max_poll_interval_ms={self.max_poll_interval_ms}"
            )
        return self
