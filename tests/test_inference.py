"""texnet.inference stays light: no Lightning, no training code, and no import cycle anywhere in texnet/."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAINING = (
    "pytorch_lightning",
    "lightning",
    "texnet.module",
    "texnet.losses",
    "texnet.vgg",
    "texnet.data",
    "texnet.callbacks",
)


def test_import_inference_loads_no_lightning_and_no_training_code():
    script = f"import json, sys, texnet.inference; print(json.dumps([m for m in {TRAINING!r} if m in sys.modules]))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


def texnet_imports(path: Path) -> set[str]:
    """The texnet modules a file imports anywhere (functions included), except under ``if TYPE_CHECKING``."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("texnet.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("texnet"):
            found.add(node.module)
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_import_cycle_in_texnet():
    """texnet/__init__ is left out: it imports texnet.inference lazily, on first use of ``texnet.load``."""
    files = [p for p in (ROOT / "texnet").rglob("*.py") if p != ROOT / "texnet" / "__init__.py"]
    graph = {module_name(p): texnet_imports(p) for p in files}
    graph = {name: {dep for dep in deps if dep in graph and dep != name} for name, deps in graph.items()}
    done: set[str] = set()

    def visit(name: str, stack: list[str]) -> None:
        assert name not in stack, f"import cycle: {' -> '.join(stack[stack.index(name) :] + [name])}"
        if name in done:
            return
        for dep in sorted(graph[name]):
            visit(dep, stack + [name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
