"""Settings of the edge worker (``CORDON_*`` env vars, nested keys with ``__``, or a YAML file)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from cordon.errors import ConfigError
from cordon.settings import RoleSettings

__all__ = ["CameraConfig", "EdgeSettings", "ImageMotion", "RecogniserSettings", "TrackerSettings"]

ImageMotion = Literal["up", "down", "left", "right"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CameraConfig(_Strict):
    """One camera attached to this box."""

    id: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="Camera id, unique in the fleet."
    )
    url: str = Field(min_length=1, description="rtsp:// URL of the stream, or a video file path to replay.")
    roi: tuple[tuple[float, float], ...] | None = Field(
        default=None,
        description="Region of interest for motion gating: polygon of (x, y) frame fractions, 0..1.",
    )
    inbound_motion: ImageMotion | None = Field(
        default=None,
        description="Image motion of a vehicle entering the borough; sets each read's direction in/out.",
    )
    credentials_env: str | None = Field(
        default=None,
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="Environment variable holding 'user:password' for an rtsp:// URL (kept out of configs).",
    )

    def stream_url(self) -> str:
        """The URL to open: ``url`` with the credentials from ``credentials_env`` put in, if it names one.

        Raises
        ------
        ConfigError
            ``credentials_env`` names a variable that is not set.
        """
        if self.credentials_env is None or "://" not in self.url:
            return self.url
        secret = os.environ.get(self.credentials_env)
        if secret is None:
            raise ConfigError(f"cameras.{self.id}.credentials_env: {self.credentials_env} is not set")
        scheme, rest = self.url.split("://", 1)
        return f"{scheme}://{quote(secret, safe=':')}@{rest.split('@', 1)[-1]}"

    @field_validator("roi")
    @classmethod
    def verify_roi(
        cls, roi: tuple[tuple[float, float], ...] | None
    ) -> tuple[tuple[float, float], ...] | None:
        if roi is None:
            return None
        if len(roi) < 3:
            raise ValueError(f"roi needs at least 3 points, got {len(roi)}")
        bad = [p for p in roi if not (0.0 <= p[0] <= 1.0 and 0.0 <= p[1] <= 1.0)]
        if bad:
            raise ValueError(f"roi points must be frame fractions within 0..1, got {bad}")
        return roi

    @property
    def is_live(self) -> bool:
        """Whether the URL is a network stream (else a file replayed frame by frame)."""
        return "://" in self.url


class RecogniserSettings(_Strict):
    """Which plate models to load. ``model_dir`` set: local files only (air-gapped); unset: hub names."""

    model_dir: Path | None = Field(
        default=None, description="Directory holding the model files; no download."
    )
    detector_file: str = Field(
        default="yolo-v9-t-416-license-plates-end2end-int8.onnx", description="Detector ONNX in model_dir."
    )
    ocr_file: str = Field(default="cct_xs_v2_global.onnx", description="OCR ONNX in model_dir.")
    ocr_config_file: str = Field(
        default="cct_xs_v2_global_plate_config.yaml", description="OCR plate config YAML in model_dir."
    )
    detector_model: str = Field(
        default="yolo-v9-t-384-license-plate-end2end", description="fast-alpr hub detector (no model_dir)."
    )
    ocr_model: str = Field(default="cct-xs-v2-global-model", description="fast-alpr hub OCR (no model_dir).")
    detector_conf_threshold: float = Field(
        default=0.4, ge=0.05, le=0.99, description="Plate detector score cut."
    )
    providers: tuple[str, ...] = Field(
        default=("CPUExecutionProvider",), min_length=1, description="ONNX Runtime execution providers."
    )


class TrackerSettings(_Strict):
    """How detections across frames are grouped into one vehicle pass."""

    max_gap_s: float = Field(
        default=1.0, gt=0.0, le=30.0, description="A track ends after this long unseen, s."
    )
    min_sightings: int = Field(default=2, ge=1, le=100, description="Shorter tracks are discarded as noise.")
    min_motion_plate_widths: float = Field(
        default=0.2, ge=0.0, le=10.0, description="Least plate movement that sets a direction, plate widths."
    )
    repeat_suppression_s: float = Field(
        default=10.0, ge=0.0, le=600.0, description="Same plate again within this long is the same pass, s."
    )
    duplicate_overlap: float = Field(
        default=0.7,
        gt=0.0,
        le=1.0,
        description="Two boxes in one frame are one plate if this share of the smaller is in the other.",
    )


class EdgeSettings(RoleSettings):
    """Everything one edge box needs: its cameras, models, spool, and where to publish."""

    model_config = SettingsConfigDict(env_prefix="CORDON_", env_nested_delimiter="__", extra="forbid")

    box_id: str = Field(
        default_factory=lambda: f"edge-{socket.gethostname()}"[:64],
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="Id of this edge box.",
    )
    cameras: tuple[CameraConfig, ...] = Field(default=(), description="Cameras read by this box.")
    recogniser: RecogniserSettings = Field(default_factory=RecogniserSettings)
    tracker: TrackerSettings = Field(default_factory=TrackerSettings)
    motion_gating: bool = Field(default=True, description="Skip frames with no motion in the ROI.")
    motion_min_changed_fraction: float = Field(
        default=0.002, ge=0.0, le=1.0, description="Changed share of ROI pixels that counts as motion."
    )
    skip_plates_at_frame_edge: bool = Field(
        default=True, description="Ignore plates whose box touches the frame border (likely cut off)."
    )
    spool_path: Path = Field(default=Path("var/edge-spool.sqlite3"), description="SQLite spool file.")
    spool_max_reads: int = Field(default=100_000, ge=1, le=50_000_000, description="Spool capacity, reads.")
    spool_full_policy: Literal["drop_oldest", "reject_new"] = Field(
        default="drop_oldest",
        description="What a full spool does: drop the oldest read or refuse the new one.",
    )
    reads_topic: str = Field(default="cordon.reads", min_length=1)
    heartbeats_topic: str = Field(default="cordon.heartbeats", min_length=1)
    heartbeat_interval_s: float = Field(default=10.0, ge=0.1, le=3600.0, description="Heartbeat period, s.")
    metrics_port: int | None = Field(default=9101, ge=0, le=65535, description="Prometheus port; None: off.")
    crop_jpeg_quality: int = Field(default=85, ge=10, le=100, description="JPEG quality of plate crops.")
    reconnect_backoff_initial_s: float = Field(default=0.25, gt=0.0, le=60.0)
    reconnect_backoff_max_s: float = Field(default=2.0, gt=0.0, le=300.0)
    selftest_timeout_s: float = Field(
        default=10.0, ge=0.5, le=300.0, description="Longest wait of each `cordon edge selftest` check, s."
    )
    clock_reference: str | None = Field(
        default=None,
        pattern=r"^(ntp|https?)://[^\s/]+",
        description=(
            "Reference clock for the self-test: ntp://host[:port] (SNTP) or an http(s):// URL whose Date "
            "header is read (e.g. the API's /healthz); None: the clock is not checked."
        ),
    )
    clock_max_offset_s: float = Field(
        default=2.0,
        ge=0.001,
        le=3600.0,
        description="Largest clock offset from the reference that passes, s.",
    )
    clock_check_required: bool = Field(
        default=False,
        description="Fail the self-test when the clock offset is unknown (no reference set or reachable).",
    )
    spool_min_free_mb: int = Field(
        default=1024, ge=1, le=100_000_000, description="Least free disk beside the spool file, MB."
    )

    @model_validator(mode="after")
    def verify_cameras_unique(self) -> EdgeSettings:
        ids = [c.id for c in self.cameras]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"camera ids must be unique, repeated: {duplicates}")
        return self

    @model_validator(mode="after")
    def verify_backoff(self) -> EdgeSettings:
        if self.reconnect_backoff_max_s < self.reconnect_backoff_initial_s:
            raise ValueError(
                f"reconnect_backoff_max_s={self.reconnect_backoff_max_s} is below "
                f"reconnect_backoff_initial_s={self.reconnect_backoff_initial_s}"
            )
        return self
