"""Edge box hardware profiles and bench measurements, as validated data.

A profile (``hardware/profiles/<kind>.yaml``) describes one kind of box Cordon's edge worker can run on: CPU,
memory, accelerator, the ONNX Runtime execution providers fast-alpr can use there, power draw, enclosure notes
and a price band. Its ``measurements`` are bench results (``cordon hardware bench`` run on such a box); a
profile with none has no performance numbers, and ``cordon hardware size`` says so rather than guess.

Profiles are a tagged union on ``kind`` (one class per kind, each with its own rules); files are loaded
in layers (YAML text → dict → :func:`parse_profile`) so tests build profiles from dicts. Errors name the file,
the key path and the bad value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final, Literal, TypeAlias

import yaml
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from hardware.errors import MeasurementError, ProfileError

__all__ = [
    "MEASUREMENT_SCHEMA_VERSION",
    "RESOLUTIONS",
    "Accelerator",
    "Enclosure",
    "ExecutionProvider",
    "HardwareProfile",
    "IntelN100",
    "JetsonOrinNano",
    "MachineInfo",
    "Measurement",
    "PowerDraw",
    "PriceBand",
    "ProfileKind",
    "RaspberryPi5Hailo8L",
    "Resolution",
    "StreamMeasurement",
    "X86Server",
    "bundled_profiles",
    "dump_measurement",
    "format_errors",
    "load_measurement",
    "load_profile_file",
    "load_profiles",
    "parse_measurement",
    "parse_profile",
]

Resolution: TypeAlias = Literal["720p", "1080p"]
RESOLUTIONS: Final[dict[Resolution, tuple[int, int]]] = {"720p": (1280, 720), "1080p": (1920, 1080)}
"""Frame size of each resolution the bench measures, (width, height) pixels."""

ExecutionProvider: TypeAlias = Literal[
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "OpenVINOExecutionProvider",
    "CPUExecutionProvider",
]
"""ONNX Runtime execution providers a profile may name (fast-alpr runs its models with ONNX Runtime)."""

ProfileKind: TypeAlias = Literal["jetson-orin-nano", "raspberry-pi-5-hailo-8l", "intel-n100", "x86-server"]

MEASUREMENT_SCHEMA_VERSION: Final = 1
"""Version of the measurement YAML this code writes and the only one it reads."""

_IP_RATING = r"^IP[0-6X][0-9X]K?$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- Measurements (written by ``cordon hardware bench``, read by ``size``) ----------------------------------


class MachineInfo(_Strict):
    """The machine a measurement was taken on."""

    hostname: str = Field(min_length=1, max_length=255, description="Host name of the box.")
    platform: str = Field(min_length=1, description="Operating system and kernel (platform.platform()).")
    cpu_model: str = Field(min_length=1, description="CPU model name.")
    cpu_arch: str = Field(min_length=1, description="Machine architecture, e.g. x86_64 or aarch64.")
    logical_cpus: int = Field(ge=1, le=4096, description="CPUs the bench could run on (affinity mask).")
    physical_cores: int | None = Field(default=None, ge=1, le=4096, description="Physical cores, if known.")
    ram_gb: float = Field(gt=0.0, le=65_536.0, description="Physical memory, GB (10^9 bytes).")
    onnx_providers_available: tuple[str, ...] = Field(
        min_length=1, description="Execution providers this ONNX Runtime build offers."
    )
    python: str = Field(min_length=1, description="Python version.")
    onnxruntime: str = Field(min_length=1, description="onnxruntime version.")
    opencv: str = Field(min_length=1, description="OpenCV version.")
    fast_alpr: str = Field(min_length=1, description="fast-alpr version.")


class StreamMeasurement(_Strict):
    """One stream of one resolution run through the whole edge pipeline on one box.

    Times are wall-clock; "processed" means decoded, motion-gated, recognised (when gated in) and tracked.
    """

    resolution: Resolution = Field(description="Nominal resolution of the video.")
    width: int = Field(ge=16, le=16_384, description="Frame width, pixels.")
    height: int = Field(ge=16, le=16_384, description="Frame height, pixels.")
    source_fps: float = Field(gt=0.0, le=240.0, description="Frame rate of the video, frames per second.")
    motion_gating: bool = Field(description="Whether frames without motion skipped recognition.")
    frames: int = Field(ge=1, description="Frames processed in the measured window.")
    seconds: float = Field(gt=0.0, description="Length of the measured window, s.")
    decode_fps: float = Field(gt=0.0, description="Decode-only rate of the same file, frames per second.")
    processed_fps: float = Field(gt=0.0, description="Pipeline rate of one stream, frames per second.")
    frames_recognised: int = Field(
        ge=0, description="Frames the recogniser ran on (the rest were gated out)."
    )
    recognise_ms_per_call: float = Field(ge=0.0, description="Mean recogniser call (one frame), ms.")
    ms_per_plate: float | None = Field(
        default=None,
        ge=0.0,
        description="Recogniser time on frames where plates were found, per plate found, ms; None: no plate.",
    )
    plates_found: int = Field(ge=0, description="Plate detections with text, over all frames.")
    reads: int = Field(ge=0, description="Plate reads (vehicle passes) the pipeline produced.")
    reads_correct: int = Field(ge=0, description="Reads whose plate is in the video's ground truth.")
    cpu_percent: float = Field(
        ge=0.0, le=409_600.0, description="Process CPU time / wall time during the window, % of one CPU."
    )
    peak_rss_mb: float = Field(gt=0.0, description="Peak resident memory of the process in the window, MB.")

    @model_validator(mode="after")
    def verify_counts(self) -> StreamMeasurement:
        problems = []
        if self.frames_recognised > self.frames:
            problems.append(f"frames_recognised={self.frames_recognised} exceeds frames={self.frames}")
        if self.reads_correct > self.reads:
            problems.append(f"reads_correct={self.reads_correct} exceeds reads={self.reads}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class Measurement(_Strict):
    """One ``cordon hardware bench`` run: the machine, what was used, and one entry per resolution."""

    schema_version: Literal[1] = Field(
        default=MEASUREMENT_SCHEMA_VERSION, description="Measurement file format version."
    )
    measured_at: AwareDatetime = Field(description="When the bench started (UTC).")
    profile: ProfileKind | None = Field(
        default=None, description="Which profile kind this box is, if the person running the bench said."
    )
    machine: MachineInfo
    providers: tuple[str, ...] = Field(min_length=1, description="Execution providers the recogniser used.")
    recogniser_load_s: float = Field(ge=0.0, description="Time to load the plate models, s.")
    streams: tuple[StreamMeasurement, ...] = Field(min_length=1, description="One entry per resolution.")
    notes: str = Field(default="", max_length=2000, description="Free text: load on the box, cooling, ...")

    @model_validator(mode="after")
    def verify_resolutions_unique(self) -> Measurement:
        seen = [s.resolution for s in self.streams]
        repeated = sorted({r for r in seen if seen.count(r) > 1})
        if repeated:
            raise ValueError(f"one stream entry per resolution, repeated: {repeated}")
        return self

    def stream(self, resolution: Resolution) -> StreamMeasurement | None:
        """The entry for ``resolution``, or None if this run did not measure it."""
        return next((s for s in self.streams if s.resolution == resolution), None)


# --- Profiles ----------------------------------------------------------------------------------------------


class Accelerator(_Strict):
    """An inference accelerator on (or attached to) the box."""

    name: str = Field(min_length=2, max_length=120, description="Product name.")
    int8_tops: float | None = Field(
        gt=0.0,
        le=10_000.0,
        description="Vendor's peak INT8 throughput (sparse if so quoted), TOPS; None: none.",
    )
    interface: str = Field(min_length=2, max_length=120, description="How it attaches (integrated, M.2...).")
    used_by_cordon: bool = Field(
        description="Whether Cordon's recogniser (fast-alpr on ONNX Runtime) runs on it today."
    )
    notes: str = Field(default="", max_length=1000, description="What it takes to use it.")


class PowerDraw(_Strict):
    """Electrical power of the box, watts at the wall (cameras not included)."""

    idle_w: float = Field(gt=0.0, le=5000.0, description="Idle power, W.")
    typical_w: float = Field(gt=0.0, le=5000.0, description="Power running the edge worker, W.")
    max_w: float = Field(gt=0.0, le=5000.0, description="Peak power (supply sizing), W.")
    supply: str = Field(min_length=2, max_length=200, description="Power supply: PoE class, PSU, ...")

    @model_validator(mode="after")
    def verify_order(self) -> PowerDraw:
        if not self.idle_w <= self.typical_w <= self.max_w:
            raise ValueError(
                f"need idle_w <= typical_w <= max_w, got {self.idle_w} / {self.typical_w} / {self.max_w}"
            )
        return self


class Enclosure(_Strict):
    """Housing: what the box is as sold and what a roadside install needs."""

    ip_rating_as_sold: str | None = Field(
        default=None, pattern=_IP_RATING, description="IEC 60529 rating of the box as sold; None: bare board."
    )
    recommended_ip_rating: str = Field(
        pattern=_IP_RATING, description="Rating of the enclosure to install it in (IEC 60529), e.g. IP66."
    )
    ambient_min_c: float = Field(
        ge=-60.0, le=60.0, description="Lowest ambient temperature it is rated for, °C."
    )
    ambient_max_c: float = Field(
        ge=-20.0, le=90.0, description="Highest ambient temperature it is rated for, °C."
    )
    notes: str = Field(default="", max_length=1000, description="Cooling, mounting, condensation.")

    @model_validator(mode="after")
    def verify_ambient(self) -> Enclosure:
        if self.ambient_min_c >= self.ambient_max_c:
            raise ValueError(
                f"ambient_min_c={self.ambient_min_c} must be below ambient_max_c={self.ambient_max_c}"
            )
        return self


class PriceBand(_Strict):
    """Indicative price band of one box, pounds sterling excluding VAT."""

    low_gbp: float = Field(gt=0.0, le=1_000_000.0, description="Low end, £ ex VAT.")
    high_gbp: float = Field(gt=0.0, le=1_000_000.0, description="High end, £ ex VAT.")
    as_of: date = Field(description="When the band was last checked.")
    includes: str = Field(min_length=2, max_length=300, description="What the band covers.")

    @model_validator(mode="after")
    def verify_band(self) -> PriceBand:
        if self.low_gbp > self.high_gbp:
            raise ValueError(f"low_gbp={self.low_gbp} is above high_gbp={self.high_gbp}")
        return self


class _Profile(_Strict):
    """What every profile kind has; each kind adds its own rules."""

    supported_providers: ClassVar[tuple[str, ...]] = ("CPUExecutionProvider",)
    cpu_arch_required: ClassVar[str | None] = None

    name: str = Field(min_length=3, max_length=120, description="Display name.")
    cpu: str = Field(min_length=3, max_length=200, description="CPU model and clock.")
    cpu_arch: Literal["x86_64", "aarch64"] = Field(description="Instruction set (wheels and images differ).")
    cpu_cores: int = Field(ge=1, le=512, description="CPU cores.")
    ram_gb: float = Field(ge=0.5, le=4096.0, description="Memory, GB.")
    accelerator: Accelerator | None = Field(default=None, description="Inference accelerator, if any.")
    onnx_providers: tuple[ExecutionProvider, ...] = Field(
        min_length=1,
        description="ONNX Runtime providers (CORDON_RECOGNISER__PROVIDERS) in order; CPU last, the fallback.",
    )
    onnxruntime_package: str = Field(
        min_length=3,
        max_length=300,
        description="Which onnxruntime build gives those providers, and where from.",
    )
    video_decode: str = Field(
        min_length=3, max_length=500, description="How H.264 RTSP streams are decoded on this box."
    )
    storage: str = Field(min_length=3, max_length=300, description="Storage for the OS and the spool.")
    power: PowerDraw
    enclosure: Enclosure
    price: PriceBand
    notes: tuple[str, ...] = Field(default=(), description="Anything else an installer should know.")
    measurements: tuple[Measurement, ...] = Field(
        default=(), description="Bench runs on this kind of box; empty: no performance numbers yet."
    )

    @model_validator(mode="after")
    def verify_providers(self) -> _Profile:
        problems = []
        unsupported = [p for p in self.onnx_providers if p not in self.supported_providers]
        if unsupported:
            problems.append(
                f"onnx_providers {unsupported} are not available on {type(self).__name__}; "
                f"choose from {list(self.supported_providers)}"
            )
        if self.onnx_providers[-1] != "CPUExecutionProvider":
            problems.append(
                "onnx_providers must end with CPUExecutionProvider (the fallback), "
                f"got {list(self.onnx_providers)}"
            )
        if len(set(self.onnx_providers)) != len(self.onnx_providers):
            problems.append(f"onnx_providers repeats a provider: {list(self.onnx_providers)}")
        if self.cpu_arch_required is not None and self.cpu_arch != self.cpu_arch_required:
            problems.append(f"cpu_arch must be {self.cpu_arch_required!r}, got {self.cpu_arch!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def verify_measurements_match(self) -> _Profile:
        kind = getattr(self, "kind", None)
        wrong = [m.measured_at.isoformat() for m in self.measurements if m.profile not in (None, kind)]
        if wrong:
            raise ValueError(f"measurements taken on another profile kind than {kind!r}: {wrong}")
        return self

    def measurements_at(self, resolution: Resolution) -> list[tuple[Measurement, StreamMeasurement]]:
        """Every measurement of this profile that has ``resolution``, with its stream entry."""
        found = []
        for measurement in self.measurements:
            stream = measurement.stream(resolution)
            if stream is not None:
                found.append((measurement, stream))
        return found


class JetsonOrinNano(_Profile):
    """NVIDIA Jetson Orin Nano: Arm CPU with an Ampere GPU; ONNX Runtime's CUDA/TensorRT providers."""

    supported_providers: ClassVar[tuple[str, ...]] = (
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    )
    cpu_arch_required: ClassVar[str | None] = "aarch64"

    kind: Literal["jetson-orin-nano"]
    jetpack: str = Field(pattern=r"^\d+(\.\d+)*(\.x)?$", description="JetPack (L4T) release, e.g. 6.2.")
    power_mode_w: Literal[7, 15, 25] = Field(description="nvpmodel power mode the numbers assume, W.")


class RaspberryPi5Hailo8L(_Profile):
    """Raspberry Pi 5 with the Hailo-8L AI Kit. fast-alpr cannot use the Hailo: inference runs on the CPU."""

    cpu_arch_required: ClassVar[str | None] = "aarch64"

    kind: Literal["raspberry-pi-5-hailo-8l"]
    hailo_used: Literal[False] = Field(
        default=False,
        description="Always false until Cordon has a HailoRT recogniser (models compiled to HEF).",
    )


class IntelN100(_Profile):
    """Intel N100 mini PC: 4 efficient cores; ONNX Runtime's OpenVINO provider can use its iGPU."""

    supported_providers: ClassVar[tuple[str, ...]] = ("OpenVINOExecutionProvider", "CPUExecutionProvider")
    cpu_arch_required: ClassVar[str | None] = "x86_64"

    kind: Literal["intel-n100"]


class X86Server(_Profile):
    """Rack server in a control room: cameras stream to it over the network; optional NVIDIA GPU."""

    supported_providers: ClassVar[tuple[str, ...]] = (
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "OpenVINOExecutionProvider",
        "CPUExecutionProvider",
    )
    cpu_arch_required: ClassVar[str | None] = "x86_64"

    kind: Literal["x86-server"]
    gpu: str | None = Field(default=None, max_length=120, description="NVIDIA GPU, if fitted.")

    @model_validator(mode="after")
    def verify_gpu_for_cuda(self) -> X86Server:
        gpu_providers = {"CUDAExecutionProvider", "TensorrtExecutionProvider"} & set(self.onnx_providers)
        if gpu_providers and self.gpu is None:
            raise ValueError(f"onnx_providers {sorted(gpu_providers)} need a gpu; gpu is not set")
        return self


HardwareProfile: TypeAlias = Annotated[
    JetsonOrinNano | RaspberryPi5Hailo8L | IntelN100 | X86Server, Field(discriminator="kind")
]
_PROFILE: TypeAdapter[HardwareProfile] = TypeAdapter(HardwareProfile)


# --- Loading -----------------------------------------------------------------------------------------------


def format_errors(exc: ValidationError, *, source: str) -> str:
    """One line per problem: ``source: key.path: message; got value``."""
    lines = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "<root>"
        shown = "<missing>" if err["type"] == "missing" else repr(err.get("input"))
        if len(shown) > 100:
            shown = shown[:97] + "..."
        lines.append(f"{source}: {path}: {err['msg']}; got {shown}")
    return "\n".join(lines)


def parse_profile(data: object, *, source: str = "<profile>") -> HardwareProfile:
    """Validate one profile given as plain data (a dict from YAML).

    Raises
    ------
    ProfileError
        Every problem, each naming ``source``, the key path and the bad value.
    """
    if not isinstance(data, Mapping):
        raise ProfileError(f"{source}: a profile must be a mapping of keys, got {type(data).__name__}")
    try:
        return _PROFILE.validate_python(dict(data))
    except ValidationError as exc:
        raise ProfileError(f"invalid hardware profile:\n{format_errors(exc, source=source)}") from exc


def _read_yaml(text: str, *, source: str, error: type[ProfileError] | type[MeasurementError]) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{source}: not valid YAML: {exc}") from exc


def load_profile_file(path: Path) -> HardwareProfile:
    """Read and validate one profile YAML file; its name must be ``<kind>.yaml``.

    Raises
    ------
    ProfileError
        The file is missing, is not YAML, is invalid, or is named after another kind.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read profile: {exc}") from exc
    profile = parse_profile(_read_yaml(text, source=str(path), error=ProfileError), source=str(path))
    if path.stem != profile.kind:
        raise ProfileError(f"{path}: kind: file name must be {profile.kind}.yaml; got {profile.kind!r}")
    return profile


def load_profiles(paths: Iterable[Path]) -> dict[str, HardwareProfile]:
    """Load several profile files, keyed by kind; every invalid file is reported, then one error is raised.

    Raises
    ------
    ProfileError
        One or more files are invalid, or two files have the same kind.
    """
    profiles: dict[str, HardwareProfile] = {}
    problems = []
    for path in sorted(paths):
        try:
            profile = load_profile_file(path)
        except ProfileError as exc:
            problems.append(str(exc))
            continue
        if profile.kind in profiles:
            problems.append(f"{path}: kind: {profile.kind!r} is defined twice")
            continue
        profiles[profile.kind] = profile
    if problems:
        raise ProfileError("\n".join(problems))
    return profiles


def bundled_profiles() -> dict[str, HardwareProfile]:
    """The profiles shipped in the package (``hardware/profiles/*.yaml``), keyed by kind."""
    folder = resources.files("hardware").joinpath("profiles")
    paths = [Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".yaml")]
    if not paths:
        raise ProfileError(f"no profile files found in {folder} (is the package data installed?)")
    return load_profiles(paths)


def parse_measurement(data: object, *, source: str = "<measurement>") -> Measurement:
    """Validate one measurement given as plain data.

    Raises
    ------
    MeasurementError
        Every problem, each naming ``source``, the key path and the bad value.
    """
    if not isinstance(data, Mapping):
        raise MeasurementError(
            f"{source}: a measurement must be a mapping of keys, got {type(data).__name__}"
        )
    try:
        return Measurement.model_validate(dict(data))
    except ValidationError as exc:
        raise MeasurementError(f"invalid measurement:\n{format_errors(exc, source=source)}") from exc


def load_measurement(path: Path) -> Measurement:
    """Read a measurement YAML written by :func:`dump_measurement` (``cordon hardware bench``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MeasurementError(f"{path}: cannot read measurement: {exc}") from exc
    return parse_measurement(_read_yaml(text, source=str(path), error=MeasurementError), source=str(path))


def dump_measurement(measurement: Measurement, path: Path) -> None:
    """Write ``measurement`` as YAML to ``path`` (atomically), readable by :func:`load_measurement`."""
    data = measurement.model_dump(mode="json")
    header = (
        f"# Cordon edge bench measurement ({measurement.machine.cpu_model}, "
        f"{measurement.measured_at:%Y-%m-%d %H:%M} UTC). Read by `cordon hardware size --measurement`;\n"
        "# paste it under a profile's `measurements:` to make it part of that profile.\n"
    )
    text = header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
