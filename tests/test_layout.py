"""The package's shape: stage subpackages whose imports run one way (later stages use
earlier ones and ``core/``), no cycles, and a core install that needs no heavy extra."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import datacomp_sci

PKG = Path(datacomp_sci.__file__).parent

# Pipeline order: a module may import from its own stage or an earlier one.
STAGES = {
    "core": 0, "engines": 1, "samplegen": 1, "extract": 2, "pool": 3, "annotate": 4,
    "subsets": 5, "curation": 6, "resharding": 7, "training": 8, "evaluation": 9,
    "reporting": 10, "leaderboard": 11, "pipeline": 12, "cli": 13,
}

# Optional dependencies: imported lazily (inside functions), except by the modules that
# implement an extra, whose whole job needs it; those are themselves imported lazily by
# the commands (checked by test_cli_and_core_steps_load_without_any_heavy_extra).
EXTRA_MODULES = {
    "datacomp_sci.leaderboard.app": {"fastapi", "starlette", "uvicorn"},
}
HEAVY = ("torch", "torchvision", "open_clip", "open_clip_train", "clip_benchmark", "sklearn",
         "matplotlib", "img2dataset", "huggingface_hub", "ray", "timm", "faiss", "fastapi",
         "uvicorn", "starlette", "ahocorasick")


def _modules() -> dict[str, Path]:
    return {".".join(p.relative_to(PKG.parent).with_suffix("").parts): p
            for p in PKG.rglob("*.py")}


def _imports(path: Path, module: str) -> list[tuple[str, bool]]:
    """(imported module, at module level) for every datacomp_sci import of a file."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            out.append((name, id(node) in top))
    return out


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "datacomp_sci" else None


def test_every_module_lives_in_a_known_stage():
    loose = [m for m, p in _modules().items()
             if m.count(".") >= 1 and _stage(m) not in STAGES and _stage(m) not in ("__init__",)
             and not m.startswith("datacomp_sci.resources")]
    assert loose == []


def test_imports_run_from_later_stages_to_earlier_ones():
    wrong = []
    for module, path in _modules().items():
        here = _stage(module)
        if here not in STAGES:
            continue
        for name, _ in _imports(path, module):
            there = _stage(name)
            if there in STAGES and STAGES[there] > STAGES[here]:
                wrong.append(f"{module} imports {name}")
    assert wrong == []


def test_no_import_cycles_between_modules():
    modules = _modules()
    graph = {m: {n for n, top in _imports(p, m) if top and n in modules and n != m}
             for m, p in modules.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycles.append(" -> ".join(stack[stack.index(n):] + [n]))
            elif n not in state:
                visit(n, stack + [n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def test_heavy_dependencies_are_imported_lazily():
    eager = []
    for module, path in _modules().items():
        tree = ast.parse(path.read_text())
        for node in tree.body:
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            eager += [f"{module}: {n}" for n in names if n.split(".")[0] in HEAVY
                      and n.split(".")[0] not in EXTRA_MODULES.get(module, ())]
    assert eager == []


def test_the_library_never_imports_click():
    offenders = [m for m, p in _modules().items() if _stage(m) != "cli"
                 and any(n.split(".")[0] == "click" for n, _ in _imports(p, m))]
    assert offenders == []


def test_cli_and_core_steps_load_without_any_heavy_extra():
    """With every optional dependency made unimportable, the CLI loads, every command's
    --help works, and a missing extra is reported in one line naming it."""
    blocked = ", ".join(repr(m) for m in HEAVY)
    code = f"""
import sys
for name in ({blocked},):
    sys.modules[name] = None  # import raises ImportError
from click.testing import CliRunner
from datacomp_sci.cli import main
runner = CliRunner()
for name in sorted(main.commands):
    r = runner.invoke(main, [name, "--help"])
    assert r.exit_code == 0, (name, r.output)
import datacomp_sci.pool.build, datacomp_sci.pool.query, datacomp_sci.subsets.filters
import datacomp_sci.resharding.reshard, datacomp_sci.resharding.mix
from datacomp_sci.core.deps import missing_extra_message
try:
    import open_clip  # noqa
except ImportError as e:
    err = ModuleNotFoundError("blocked", name="open_clip")
    print(missing_extra_message(err))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "pip install 'datacomp-sci[train]'" in r.stdout
