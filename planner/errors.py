"""Errors of the planner: a base class and one refinement for bad input data (files, graphs, boundaries)."""

from __future__ import annotations

from cordon.errors import CordonError

__all__ = ["DataError", "PlannerError"]


class PlannerError(CordonError):
    """Base class of planner errors: the plan cannot be made from what it was given."""


class DataError(PlannerError, ValueError):
    """Input data or an argument is unusable; the message names the file, graph element or argument."""
