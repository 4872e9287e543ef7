"""Settings of a planning run (``CORDON_*`` env vars, a YAML file, or the API's plan form)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from cordon.settings import RoleSettings

__all__ = ["PlannerSettings"]

_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


class PlannerSettings(RoleSettings):
    """Where the data is, what to plan for, and the solver limits. Paths are relative to ``data_dir``."""

    model_config = SettingsConfigDict(env_prefix="CORDON_", env_nested_delimiter="__", extra="forbid")

    data_dir: Path = Field(default=_SHARED, description="Folder of the public data (see ../shared/data).")
    crime_files: str = Field(
        default="police-uk/police-uk-2019-*-street.csv",
        min_length=1,
        description="Glob of police.uk street CSVs (consecutive months, for the back-test).",
    )
    lsoa_file: str = Field(default="lsoa-2001/england_low_soa_2001.shp", description="LSOA polygons.")
    boundary_prefix: str = Field(
        default="Knowsley", min_length=1, max_length=64, description="Dissolve LSOAs whose name starts so."
    )
    boundary_file: Path | None = Field(default=None, description="A boundary polygon file instead of LSOAs.")
    meridian_files: tuple[str, ...] = Field(
        default=(
            "os-meridian2/motorway_polyline.shp",
            "os-meridian2/a_road_polyline.shp",
            "os-meridian2/b_road_polyline.shp",
        ),
        description="OS Meridian 2 road line shapefiles.",
    )
    osm_file: Path | None = Field(default=None, description="A local .osm/.osm.pbf file instead of Meridian.")
    existing_cameras: Path | None = Field(default=None, description="CSV/GeoJSON of existing cameras (kept).")
    user_sites: Path | None = Field(
        default=None, description="CSV/GeoJSON of extra candidate sites (e.g. lamp columns with power)."
    )
    backup_coverage: bool = Field(
        default=False, description="Also reward covering crime twice (Hogan & ReVelle backup coverage)."
    )
    cameras: int | None = Field(default=10, ge=0, le=5000, description="New CCTV cameras to place.")
    money: float | None = Field(default=None, ge=0, description="Money budget for new CCTV sites, GBP.")
    camera_cost: float = Field(default=1500.0, ge=0, description="Cost of a CCTV camera, GBP.")
    pole_cost: float = Field(default=6000.0, ge=0, description="Cost of a new pole, GBP.")
    power_cost: float = Field(default=2500.0, ge=0, description="Cost of a power connection, GBP.")
    camera_class: str = Field(
        default="ptz-1080p-observe",
        description="Camera preset (planner.coverage.CAMERA_PRESETS); public-space CCTV is mostly PTZ.",
    )
    candidate_min_degree: int = Field(
        default=2, ge=1, le=8, description="Road nodes with this many links are candidates (2: along roads)."
    )
    radius_m: float | None = Field(
        default=None,
        gt=0,
        le=2000,
        description="Coverage radius, metres; None: from the camera class (DORI).",
    )
    network_coverage: bool = Field(
        default=False, description="Measure coverage along roads instead of straight-line distance."
    )
    anpr_budget: int | None = Field(
        default=None, ge=1, le=500, description="ANPR cameras; None: the full minimum-cut cordon."
    )
    protected: Literal["boundary"] | float = Field(
        default=500.0, description="Zone to seal: 'boundary', or the boundary shrunk by this many metres."
    )
    milp_time_limit_s: float = Field(default=30.0, gt=0, le=3600, description="HiGHS time limit, s.")
    backtest_months: int = Field(
        default=1, ge=1, le=24, description="Latest months held out in the back-test."
    )
    backtest_draws: int = Field(default=500, ge=10, le=100_000, description="Random-site baseline draws.")
    cctv_weight: float = Field(
        default=0.5, ge=0, le=1, description="Weight of crime coverage vs ANPR flow in the combined ranking."
    )

    @model_validator(mode="after")
    def verify_budget(self) -> PlannerSettings:
        if self.cameras is None and self.money is None:
            raise ValueError("give cameras or money (or both) as the CCTV budget")
        return self
