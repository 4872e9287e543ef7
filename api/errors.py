"""Errors of the API's domain; :mod:`api.app` maps them to HTTP responses in one place."""

from __future__ import annotations

from cordon.errors import CordonError

__all__ = [
    "ConflictError",
    "InvalidInputError",
    "NotFoundError",
    "PermissionDeniedError",
    "StoreUnavailableError",
]


class StoreUnavailableError(CordonError, ConnectionError):
    """The database cannot be reached."""


class NotFoundError(CordonError, LookupError):
    """The named object does not exist (HTTP 404)."""


class ConflictError(CordonError, ValueError):
    """The request clashes with the current state, e.g. acknowledging a closed alert (HTTP 409)."""


class InvalidInputError(CordonError, ValueError):
    """The request is well-formed but its content is invalid, e.g. a bad hotlist file (HTTP 422)."""


class PermissionDeniedError(CordonError, PermissionError):
    """The user's role may not do this (HTTP 403)."""
