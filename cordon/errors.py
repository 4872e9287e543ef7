"""Cordon's base errors; each role refines them in its own ``errors.py``."""

from __future__ import annotations

__all__ = ["BrokerError", "ConfigError", "CordonError"]


class CordonError(Exception):
    """Base class of every error Cordon raises on purpose."""


class ConfigError(CordonError, ValueError):
    """Settings are missing or invalid; the message names the setting and the bad value."""


class BrokerError(CordonError, RuntimeError):
    """The Kafka broker could not be started, reached or used."""
