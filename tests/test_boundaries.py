"""Import boundaries between the core and its adapters (architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The composition root is the one place in app/ that may wire adapters in.
COMPOSITION_ROOT = ROOT / "app" / "main.py"
FORBIDDEN = {"app": {"bot", "miniapp_api"}, "bot": {"miniapp_api"}, "miniapp_api": {"bot"}}


def imported_top_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def violations() -> list[str]:
    found = []
    for package, forbidden in FORBIDDEN.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == COMPOSITION_ROOT:
                continue
            for name in imported_top_packages(path) & forbidden:
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


def test_core_and_adapters_respect_the_import_boundaries():
    assert violations() == []


def test_the_checker_sees_a_forbidden_import(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("import bot.dingtalk\nfrom miniapp_api import routes\nfrom . import y\n")
    assert imported_top_packages(sample) == {"bot", "miniapp_api"}
