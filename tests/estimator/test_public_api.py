"""The estimator's public surface and its purity (numpy + standard library only)."""

import ast
import sys
from pathlib import Path

import estimator

PKG = Path(estimator.__file__).parent


def test_all_is_complete_and_importable():
    public = {n for n in dir(estimator) if not n.startswith("_")}
    modules = {p.stem for p in PKG.glob("*.py")}
    assert set(estimator.__all__) == public - modules
    for name in estimator.__all__:
        assert getattr(estimator, name) is not None


def test_estimator_imports_only_numpy_and_stdlib():
    allowed = set(sys.stdlib_module_names) | {"numpy", "estimator"}
    for path in PKG.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = [node.module.split(".")[0]]
            else:
                continue
            for root in roots:
                assert root in allowed, f"{path.name} imports {root}"
            for banned in ("asyncio", "socket", "urllib", "http", "sqlite3", "io"):
                assert banned not in roots, f"{path.name} imports {banned}: estimator is pure"
