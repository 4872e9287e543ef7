"""The camera registry: where each camera is and whether it covers an arterial route into the borough."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stream.errors import RegistryError

__all__ = ["CameraInfo", "CameraRegistry"]


class CameraInfo(BaseModel):
    """One registered camera."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=64, description="Camera id, as in PlateRead.camera_id.")
    name: str = Field(default="", max_length=200)
    latitude: float | None = Field(default=None, ge=-90.0, le=90.0, description="WGS84 latitude, degrees.")
    longitude: float | None = Field(
        default=None, ge=-180.0, le=180.0, description="WGS84 longitude, degrees."
    )
    road: str = Field(default="", max_length=100, description="Road name or number, e.g. A580.")
    bearing_deg: float | None = Field(
        default=None, ge=0.0, lt=360.0, description="Direction the camera faces."
    )
    arterial: bool = Field(default=False, description="Covers a main arterial route into/out of the borough.")


class CameraRegistry:
    """Cameras by id. Unknown cameras are treated as not arterial."""

    def __init__(self, cameras: Iterable[CameraInfo] = ()) -> None:
        self._cameras: dict[str, CameraInfo] = {}
        for camera in cameras:
            if camera.id in self._cameras:
                raise RegistryError(f"camera id {camera.id!r} is registered twice")
            self._cameras[camera.id] = camera

    def get(self, camera_id: str) -> CameraInfo | None:
        """The camera, or None if it is not registered."""
        return self._cameras.get(camera_id)

    def is_arterial(self, camera_id: str) -> bool:
        """Whether the camera covers an arterial route (False if unknown)."""
        camera = self._cameras.get(camera_id)
        return camera is not None and camera.arterial

    def __len__(self) -> int:
        return len(self._cameras)

    @classmethod
    def from_records(
        cls, records: Iterable[Mapping[str, Any]], *, origin: str = "registry"
    ) -> CameraRegistry:
        """Build from dicts; every invalid record is reported at once, naming its position and field."""
        cameras: list[CameraInfo] = []
        problems: list[str] = []
        for number, record in enumerate(records, start=1):
            cleaned = {k: (None if v == "" else v) for k, v in record.items()}
            try:
                cameras.append(CameraInfo.model_validate(cleaned))
            except ValidationError as exc:
                for err in exc.errors():
                    field = ".".join(str(p) for p in err["loc"])
                    problems.append(
                        f"{origin} record {number}, field {field!r}: {err['msg']} (got {err.get('input')!r})"
                    )
        if problems:
            raise RegistryError("invalid camera registry:\n" + "\n".join(problems))
        return cls(cameras)

    @classmethod
    def load(cls, path: Path) -> CameraRegistry:
        """Load a YAML (a list of cameras, or ``{cameras: [...]}``) or CSV (header row) registry file."""
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RegistryError(f"cannot read camera registry {str(path)!r}: {exc}") from exc
        if path.suffix.lower() == ".csv":
            records: Any = list(csv.DictReader(io.StringIO(text)))
        else:
            try:
                records = yaml.safe_load(text) or []
            except yaml.YAMLError as exc:
                raise RegistryError(f"camera registry {str(path)!r} is not valid YAML: {exc}") from exc
            if isinstance(records, dict):
                records = records.get("cameras", [])
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise RegistryError(f"camera registry {str(path)!r} must be a list of cameras")
        return cls.from_records(records, origin=path.name)
