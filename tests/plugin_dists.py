"""Make a folder that Python sees as an installed distribution with jpilot plugins.

A `NAME-0.0.dist-info` with METADATA and entry_points.txt, plus the plugin module, is
what `pip install` leaves behind; put the folder on sys.path (or PYTHONPATH of a server
subprocess) and `importlib.metadata.entry_points(group="jpilot.plugins")` finds it.
The helper itself ships with jpilot, for plugin authors: jpilot.plugins.testing.install.
"""

from __future__ import annotations

from pathlib import Path

from jpilot.plugins.testing import install

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "jpilot-no-todo" / "jpilot_no_todo.py"
GATE = Path(__file__).resolve().parent / "e2e" / "plugins" / "jpilot_test_gate.py"


def install_fake(folder: Path, dist: str, plugins: dict[str, str], modules: list[Path]) -> Path:
    """Write a fake installed distribution into `folder`; return the folder."""
    return install(folder, dist, plugins, modules)
