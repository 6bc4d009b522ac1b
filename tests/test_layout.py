"""The package's layout holds: no import circles, the input pipeline reads no finished run, and
what reads a finished run (predict, export, align, report, the run-artifacts layer) never
imports the training code.

Imports are read from the source with ``ast`` (function-level ones included), so a circle hidden
inside a function counts, and nothing heavy is imported to check.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("aslx", "finetune", "pretrain")
#: Modules that load finished runs and must work without the training code.
INFERENCE_SIDE = ("aslx.predict", "aslx.align", "aslx.export", "aslx.report", "aslx.run")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def imports_of(path: Path, modules: dict[str, Path], root: Path = ROOT) -> set[str]:
    """Project modules ``path`` imports anywhere in its body (``from a import b`` names the
    module ``a.b`` when it is one, else ``a``)."""
    found = set()
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative imports: resolve against this module's package
                base = ".".join(filter(None, [package, base]))
            # ``from a import b`` imports module ``a.b`` when there is one, else a name of ``a``.
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    found.discard(module_name(path, root))
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` as a list of modules, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        for nxt in graph.get(node, ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_the_cycle_finder_finds_a_hidden_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_function_level_and_relative_imports_are_read(tmp_path):
    package = tmp_path / "aslx"
    package.mkdir()
    (package / "m.py").write_text(
        "def f():\n    from aslx.training import loop\n    from . import other\n"
    )
    modules = {"aslx.m": package / "m.py", "aslx.training.loop": package, "aslx.other": package}
    assert imports_of(package / "m.py", modules, tmp_path) == {"aslx.training.loop", "aslx.other"}


def test_there_are_no_import_circles():
    cycle = find_cycle(import_graph())
    assert cycle is None, " → ".join(cycle)


def test_reading_a_finished_run_needs_no_training_code():
    graph = import_graph()
    offenders = {}
    for name in graph:
        if name.startswith(INFERENCE_SIDE):
            training = sorted(m for m in reachable(graph, name) if m.startswith("aslx.training"))
            if training:
                offenders[name] = training
    assert not offenders, offenders


def test_the_input_pipeline_reads_no_run_artifacts():
    """The journey runs one way: records → input → … → run artifacts; the input pipeline reads
    record files (alignments included, :mod:`aslx.records.alignments`), never a finished run."""
    graph = import_graph()
    offenders = {
        name: sorted(m for m in graph[name] if m.startswith("aslx.run"))
        for name in graph
        if name.startswith("aslx.input")
    }
    assert not {k: v for k, v in offenders.items() if v}, offenders


def test_one_trainer_builds_every_step():
    """The programs and the benchmarks train through the one trainer: none builds a step of
    its own (``make_train_step``), and both programs call ``aslx.training.trainer.train``."""
    builders = {
        str(path.relative_to(ROOT))
        for folder in ("finetune", "pretrain", "benchmarks")
        for path in (ROOT / folder).rglob("*.py")
        if "make_train_step" in path.read_text()
    }
    assert not builders, builders
    modules = project_modules()
    for program in ("finetune.train", "pretrain.train"):
        assert "aslx.training.trainer" in imports_of(modules[program], modules), program


def test_the_library_imports_no_test_or_benchmark_code():
    """Test oracles (``tests/augment_reference.py``) and benchmark helpers stay beside what uses
    them: no module of ``aslx`` imports ``tests`` or ``benchmarks``."""
    offenders: dict[str, list[str]] = {}
    for path in sorted((ROOT / "aslx").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            found = [n for n in names if n.split(".")[0] in ("tests", "benchmarks")]
            if found:
                offenders.setdefault(module_name(path), []).extend(found)
    assert not offenders, offenders


#: The longest a function of the library or the programs may be, ``def`` to its last line.
MAX_FUNCTION_LINES = 100


def test_no_function_is_too_long_to_read():
    """Every function of ``aslx``, ``finetune`` and ``pretrain`` fits on a screen or two: a
    longer one is a switchboard to split into named steps."""
    long = [
        f"{module_name(path)}.{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in project_modules().values()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, long


def test_benchmarks_md_opens_with_its_results_and_stays_short():
    """BENCHMARKS.md is the current results (at most 300 lines, one table first); the dated
    log lives in docs/benchmarks-log.md, and no section anywhere is cited by an ordinal."""
    lines = (ROOT / "BENCHMARKS.md").read_text().splitlines()
    assert len(lines) <= 300, len(lines)
    first_table = next(i for i, line in enumerate(lines) if line.startswith("|"))
    assert lines[first_table].startswith("| benchmark | command") and first_table < 8
    assert (ROOT / "docs" / "benchmarks-log.md").is_file()
    ordinal = re.compile(r'"(Fourth attempt|Fifth|Sixth|Seventh|Eighth|Ninth|Tenth|Eleventh'
                         r'|Twelfth|Thirteenth|Fourteenth)"')  # fmt: skip
    texts = [*ROOT.glob("*.md"), *ROOT.glob("docs/*.md"), *ROOT.rglob("configs/**/*.py")]
    texts += [*ROOT.glob("benchmarks/*.py"), *ROOT.rglob("aslx/**/*.py")]
    cited = [str(p.relative_to(ROOT)) for p in texts if ordinal.search(p.read_text())]
    assert not cited, cited


def test_the_fault_table_names_tests_that_exist():
    """docs/faults.md points at a test for every fault; each must be there to be run."""
    import re

    text = (ROOT / "docs" / "faults.md").read_text()
    named = 0
    for cell in re.findall(r"\| ([^|]*`test_[^|]*)\|\s*$", text, flags=re.M):
        module = None
        for ref in re.findall(r"`([\w.]*)::(\w+)`", cell):
            module = ref[0] or module
            assert module, cell
            source = (ROOT / "tests" / module).read_text()
            assert f"def {ref[1]}(" in source, f"{module}::{ref[1]} not found"
            named += 1
    assert named >= 30
