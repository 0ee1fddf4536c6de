"""The docs document every setting, and the commands and files they name exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import kitaru.environment_variables as ev

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text()
CONTRIBUTING = (ROOT / "CONTRIBUTING.md").read_text()


def test_every_kitaru_variable_is_in_the_configuration_table():
    names = [n for n in ev.__all__ if n.startswith("KITARU_")]
    assert names, "environment_variables.__all__ lists no variables"
    for name in names:
        assert f"| `{name}` |" in CONFIGURATION, f"{name} is missing from docs/configuration.md"


def test_every_variable_constant_is_exported_and_documented():
    tree = ast.parse((ROOT / "src/kitaru/environment_variables.py").read_text())
    body = tree.body
    for i, node in enumerate(body):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if not name.startswith("KITARU_"):
                continue
            assert name in ev.__all__, f"{name} is not in __all__"
            nxt = body[i + 1] if i + 1 < len(body) else None
            assert isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant), (
                f"{name} has no docstring"
            )


def test_readme_commands_exist():
    makefile = (ROOT / "Makefile").read_text()
    targets = re.findall(r"^make ([a-z-]+)", README + CONTRIBUTING, flags=re.M)
    assert {"demo", "test"} <= set(re.findall(r"^make ([a-z-]+)", README, flags=re.M))
    assert "make tools" in CONTRIBUTING
    for target in targets:
        assert re.search(rf"^{re.escape(target)}:", makefile, flags=re.M), target
    assert "make test" in (ROOT / ".ci/run").read_text()
    for doc in [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *(ROOT / "docs").glob("*.md")]:
        for rel in re.findall(r"\]\(([\w./-]+\.(?:md|png|yaml))(?:#[^)]*)?\)", doc.read_text()):
            assert (doc.parent / rel).exists(), f"{doc.name} links to {rel}, which is missing"
    for example in re.findall(r"^- `([a-z_/]+\.py)`", README, flags=re.M):
        assert (ROOT / "examples" / example).exists(), example


def test_readme_python_blocks_compile():
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert len(blocks) >= 4
    for i, block in enumerate(blocks):
        compile(block, f"README.md python block {i}", "exec")


def test_readme_quick_start_runs(kitaru_events):
    first = re.findall(r"```python\n(.*?)```", README, flags=re.S)[0]
    namespace: dict[str, object] = {"__name__": "readme_quick_start"}
    exec(compile(first, "README.md quick start", "exec"), namespace)
    assert kitaru_events.kinds() == [
        "kitaru.checkpoint.started",
        "kitaru.checkpoint.progress",
        "kitaru.checkpoint.progress",
        "kitaru.checkpoint.returned",
    ]
