"""Make a folder that Python sees as an installed distribution with jpilot plugins.

A `NAME-0.0.dist-info` with METADATA and entry_points.txt, plus the plugin module, is
what `pip install` leaves behind; put the folder on sys.path (or PYTHONPATH of a server
subprocess) and `importlib.metadata.entry_points(group="jpilot.plugins")` finds it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "jpilot-no-todo" / "jpilot_no_todo.py"
GATE = Path(__file__).resolve().parent / "e2e" / "plugins" / "jpilot_test_gate.py"


def install_fake(folder: Path, dist: str, plugins: dict[str, str], modules: list[Path]) -> Path:
    """Write a fake installed distribution into `folder`; return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    info = folder / f"{dist.replace('-', '_')}-0.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in plugins.items())
    (info / "entry_points.txt").write_text(f"[jpilot.plugins]\n{lines}")
    for module in modules:
        shutil.copy(module, folder / module.name)
    return folder
