"""A problem in words, worded once: its plan JSON entry, the scope its log event carries, and
the line people read (the table, the demo)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pruner.engine.models import Problem

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

__all__ = ["log_problem", "problem_entry", "problem_line", "problem_scope"]


def problem_entry(problem: Problem) -> dict[str, Any]:
    """The problem in the plan JSON: every field, null where it has none."""
    return {"level": problem.level, "message": problem.message, **_where(problem)}


def problem_scope(problem: Problem) -> dict[str, Any]:
    """What the problem names (resource, server, backup, field), for its log event."""
    return {key: value for key, value in _where(problem).items() if value is not None}


def log_problem(problem: Problem, log: FilteringBoundLogger) -> None:
    """One `plan.problem` event, scoped by whatever the problem names."""
    emit = log.error if problem.level == "error" else log.warning
    emit("plan.problem", message=problem.message, **problem_scope(problem))


def problem_line(problem: Problem) -> str:
    """`error: …` or `warning: …`."""
    return f"{problem.level}: {problem.message}"


def _where(problem: Problem) -> dict[str, Any]:
    return {
        "resource": problem.resource,
        "server_id": problem.server_id,
        "backup_id": problem.backup_id,
        "field": problem.field,
    }
