"""The layer contracts of ``make lint`` (import-linter, ``[tool.importlinter]`` in pyproject.toml).

Run on a temporary copy of the source tree, so a test can add an upward import and show that
the contracts catch it (``docs/architecture.md`` describes the layers).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of ``src/kitaru`` and ``pyproject.toml`` to break."""
    shutil.copytree(
        ROOT / "src" / "kitaru",
        tmp_path / "src" / "kitaru",
        ignore=shutil.ignore_patterns("__pycache__", "static"),
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(tree / "pyproject.toml")],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _add_line(path: Path, line: str) -> None:
    text = path.read_text()
    marker = "from __future__ import annotations\n"
    assert marker in text, path
    path.write_text(text.replace(marker, marker + "\n" + line + "\n", 1))


def test_the_tree_keeps_its_layers(tree: Path) -> None:
    result = _lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "imported"),
    [
        # the lowest layers reaching up to what uses them
        ("store._base", "kitaru.runtime._runtime"),
        ("events._api", "kitaru.runtime._scope"),
        # the runtime building its own default (the composition root's job)
        ("runtime._runtime", "kitaru._compose"),
        # a producer reaching into the read-side client
        ("remote._store", "kitaru.client._client"),
    ],
)
def test_an_upward_import_fails_the_lint(tree: Path, module: str, imported: str) -> None:
    _add_line(tree / "src" / "kitaru" / (module.replace(".", "/") + ".py"), f"import {imported}")
    result = _lint(tree)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "kitaru layers: imports go downwards only BROKEN" in result.stdout
    assert f"kitaru.{module} -> {imported}" in result.stdout, result.stdout


def test_a_module_outside_every_layer_fails_the_lint(tree: Path) -> None:
    (tree / "src" / "kitaru" / "_stray.py").write_text('"""Placed in no layer."""\n')
    result = _lint(tree)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "kitaru._stray" in result.stdout
