"""Errors of the edge worker; adapters re-raise OpenCV, ONNX, SQLite and Kafka failures as these."""

from __future__ import annotations

from cordon.errors import CordonError

__all__ = ["CameraError", "EdgeError", "ModelNotFoundError", "PlateTextError", "SpoolError"]


class EdgeError(CordonError):
    """Base class of edge worker errors."""


class PlateTextError(EdgeError, ValueError):
    """Plate text cannot be normalised (no A-Z/0-9 characters, or too long)."""


class SpoolError(EdgeError, OSError):
    """The local spool cannot be opened or written."""


class ModelNotFoundError(EdgeError, FileNotFoundError):
    """A recogniser model file named in the settings does not exist."""


class CameraError(EdgeError, RuntimeError):
    """A camera source cannot be opened at all (bad URL or file)."""
