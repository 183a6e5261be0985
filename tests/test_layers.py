"""The house reads one way: the layers of pyproject.toml's import-linter contract, no import
circles, and the configuration and the physics importable without MPI, PETSc or DOLFINx."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def layers() -> list[list[str]]:
    """The contract's layers, bottom first, each a list of its (independent) modules."""
    contract = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]
    assert contract["type"] == "layers"
    return [[m.strip() for m in layer.split("|")] for layer in reversed(contract["layers"])]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported app module, line, inside a function) for every import of ``path``."""
    tree = ast.parse(path.read_text())
    out = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.ImportFrom) and child.module and child.level == 0 and child.module.split(".")[0] == "app":
                for alias in child.names:  # `from app.numerics import fem` imports app.numerics.fem
                    sub = f"{child.module}.{alias.name}"
                    is_module = (ROOT / Path(*sub.split(".")).with_suffix(".py")).exists() or (ROOT / Path(*sub.split("."))).is_dir()
                    out.append((sub if is_module else child.module, child.lineno, inner))
            elif isinstance(child, ast.Import):
                out.extend((a.name, child.lineno, inner) for a in child.names if a.name.split(".")[0] == "app")
            visit(child, inner)

    visit(tree, False)
    return out


def layer_of(module: str, table: list[list[str]]) -> int | None:
    for i, members in enumerate(table):
        if any(module == m or module.startswith(m + ".") for m in members):
            return i
    return None


MODULES = {module_name(p): p for p in sorted((ROOT / "app").rglob("*.py"))}


def test_every_module_is_in_a_layer():
    table = layers()
    outside = [m for m in MODULES if m != "app" and layer_of(m, table) is None]
    assert not outside, f"modules in no layer of pyproject.toml's contract: {outside}"


def test_no_import_runs_up_the_layers():
    table = layers()
    wrong = []
    for name, path in MODULES.items():
        if name == "app":  # the package's public API, reached lazily: above everything
            continue
        mine = layer_of(name, table)
        for target, line, _ in imports(path):
            theirs = layer_of(target, table)
            if theirs is not None and theirs > mine:
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {name} imports {target} from a layer above")
    assert not wrong, "\n".join(wrong)


def test_no_import_of_the_app_is_hidden_in_a_function():
    """Module-level imports only (heavy third-party ones may be deferred; the app's are not),
    except the package's lazy public API."""
    hidden = [f"{p.relative_to(ROOT)}:{line}: {t}" for n, p in MODULES.items() if n != "app"
              for t, line, inner in imports(p) if inner]  # fmt: skip
    assert not hidden, "\n".join(hidden)


def test_no_import_circles():
    graph = {n: {t for t, _, _ in imports(p) if t in MODULES and t != n} for n, p in MODULES.items() if n != "app"}
    index, low, stack, on, circles = {}, {}, [], set(), []

    def strong(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in graph:
        if v not in index:
            strong(v)
    assert not circles, f"import circles: {circles}"


def test_a_checker_that_cannot_fail_is_no_checker(tmp_path, monkeypatch):
    """The walker sees an upward import, also one inside a function."""
    bad = tmp_path / "bad.py"
    bad.write_text("from app.numerics import fem\n\ndef f():\n    from app.studies import figures\n")
    found = imports(bad)
    assert ("app.numerics.fem", 1, False) in found and ("app.studies.figures", 4, True) in found


@pytest.mark.serial
@pytest.mark.parametrize(
    "code",
    [
        "import app; app.build(domain={'geometry': 'slab'}, model={'B0': 2.0})",
        "import app; app.load([], overrides=['model.B0=2', 'domain.geometry=\"layer\"'])",
        "import app.lattice as L, numpy as np, app; L.diffusion_tensor_3d(np.zeros((1, 3)), app.build().model)",
        "import app; app.ConfigError, app.__version__, app.Config",
    ],
)
def test_configuration_and_physics_start_no_mpi(code):
    """A script that only builds configurations or evaluates the lattice physics never imports
    mpi4py, petsc4py or dolfinx (a fresh interpreter)."""
    check = code + "; import sys; print(sorted(m for m in ('mpi4py', 'petsc4py', 'dolfinx') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
