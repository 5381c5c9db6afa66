"""pruner: keeps the backups of VPSBG cloud servers within YAML-defined retention policies."""

from __future__ import annotations

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    """`__version__`, read from the installed metadata on first use: importlib.metadata costs
    tens of milliseconds that `pruner health` should not pay."""
    if name != "__version__":
        raise AttributeError(f"module 'pruner' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("pruner")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0+unknown"
