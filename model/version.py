"""The installed jpilot version, in the bottom layer so that every package can ask for it."""

from __future__ import annotations


def package_version() -> str:
    """Return the installed distribution's version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("jpilot")
    except PackageNotFoundError:
        return "0+unknown"
