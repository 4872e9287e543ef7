"""Errors of hardware profiles, bench measurements and sizing."""

from __future__ import annotations

from cordon.errors import CordonError

__all__ = ["BenchError", "HardwareError", "MeasurementError", "ProfileError", "SizingError"]


class HardwareError(CordonError):
    """Base class of hardware errors."""


class ProfileError(HardwareError, ValueError):
    """A hardware profile file is missing or invalid; the message names the file, key and bad value."""


class MeasurementError(HardwareError, ValueError):
    """A bench measurement file is missing or invalid, or has nothing for the resolution asked about."""


class BenchError(HardwareError, RuntimeError):
    """The bench could not run (no model files, the video cannot be rendered or decoded)."""


class SizingError(HardwareError, ValueError):
    """A sizing question is out of range (cameras, frame rates, headroom) or has no measurement to use."""
