"""Runtime code does not depend on the test tree (issue 16): nothing outside ``tests/`` imports ``tests``.

The services, the simulator (demo mode), the stack harness and the benchmarks must all run from a copy
of the repository that has no ``tests/`` folder, so every Python file outside it is parsed and its
imports checked, and the programs that the scripts and configs start are checked the same way.

The packages depend on each other one way only: ``shared`` imports none of the three processes, and the
browser worker never imports the stream proxy (AI Studio's wire format, codecs and hosts and the CA pin
they both need live in ``shared/wire/`` and ``shared/ca.py``).
"""

from __future__ import annotations

import ast
import re
import subprocess
import tomllib
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path

from tests.conftest import PROJECT_ROOT

#: Files that start programs: a ``python -m tests.…`` in one of them runs the test tree.
LAUNCHERS = ("supervisord.conf", "Procfile", "Makefile", "scripts/*.sh", ".ci/*")


def tracked(*patterns: str) -> list[Path]:
    """The files git tracks or would track (untracked but not ignored) that match ``patterns``."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", *patterns],
            cwd=PROJECT_ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    return [PROJECT_ROOT / name for name in listed if name and (PROJECT_ROOT / name).is_file()]


def runtime_python_files() -> list[Path]:
    """Every .py file of the repository outside ``tests/`` (``.venv`` and the like are ignored by git)."""
    return [
        path for path in tracked("*.py") if path.relative_to(PROJECT_ROOT).parts[0] not in ("tests", ".venv")
    ]


def _is_test_tree(module: str | None) -> bool:
    return module is not None and (module == "tests" or module.startswith("tests."))


def imports_of_the_test_tree(source: str, filename: str) -> list[str]:
    """``line: statement`` for each import of ``tests`` or ``tests.*`` in ``source`` (also
    ``importlib.import_module("tests…")`` and ``python -m tests…`` spelled as a literal argument list)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] if node.level == 0 else []
        elif isinstance(node, ast.Call):
            args = [
                arg.value for arg in node.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
            ]
            func = ast.unparse(node.func)
            names = args[:1] if func.endswith(("import_module", "__import__")) else []
        elif isinstance(node, (ast.List, ast.Tuple)):
            items = [elt.value if isinstance(elt, ast.Constant) else None for elt in node.elts]
            names = [items[i + 1] for i, item in enumerate(items[:-1]) if item == "-m"]
        else:
            continue
        found += [(node.lineno, ast.unparse(node)[:120]) for name in names if _is_test_tree(name)]
    return [f"{line}: {text}" for line, text in sorted(found)]


def test_the_check_sees_every_way_of_importing_the_test_tree() -> None:
    source = (
        "import tests\nimport os, tests.processes\nfrom tests.e2e.stack import Stack\n"
        "from tests import conftest\nimportlib.import_module('tests.aistudio_sim')\n"
        "subprocess.run([sys.executable, '-m', 'tests.aistudio_sim'])\n"
        "import testsuite\nfrom . import tests\nfrom aistudio_sim.stack import Stack\n"
        "subprocess.run(['python', '-m', 'aistudio_sim'])\n"
    )
    assert [line.split(":")[0] for line in imports_of_the_test_tree(source, "<example>")] == list("123456")


def test_no_file_outside_tests_imports_the_test_tree() -> None:
    files = runtime_python_files()
    assert any(path.name == "__main__.py" and path.parent.name == "api_server" for path in files)
    offenders = [
        f"{path.relative_to(PROJECT_ROOT)}:{hit}"
        for path in files
        for hit in imports_of_the_test_tree(path.read_text(), str(path))
    ]
    assert not offenders, "runtime code imports the test tree:\n" + "\n".join(offenders)


def test_no_script_or_config_runs_a_module_of_the_test_tree() -> None:
    files = tracked(*LAUNCHERS)
    assert any(path.name == "supervisord.conf" for path in files)
    offenders = [
        f"{path.relative_to(PROJECT_ROOT)}:{n}: {line.strip()}"
        for path in files
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"-m\s+tests\b", line)
    ]
    assert not offenders, "these start a program from the test tree:\n" + "\n".join(offenders)


def test_the_simulator_is_packaged_with_its_page_files() -> None:
    """Demo mode serves the page from ``aistudio_sim/static``: an install must carry those files."""
    setuptools = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert any(fnmatch("aistudio_sim", pattern) for pattern in setuptools["packages"]["find"]["include"])
    patterns = setuptools["package-data"]["aistudio_sim"]
    package = PROJECT_ROOT / "aistudio_sim"
    static = [path.relative_to(package).as_posix() for path in tracked("aistudio_sim/static")]
    assert "static/index.html" in static
    assert [name for name in static if not any(fnmatch(name, pattern) for pattern in patterns)] == []


#: Where the simulator and the stack harness lived before issue 16 moved them out of the test tree.
OLD_HOMES = re.compile(r"tests[./]aistudio_sim|tests[./]e2e[./]stack\b|tests[./]processes\b")


def test_no_file_points_at_the_old_homes_of_the_simulator_or_the_stack_harness() -> None:
    offenders = []
    for path in tracked():
        if path == Path(__file__) or path.suffix in (".png", ".jpg", ".gz", ".stream"):
            continue
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        offenders += [
            f"{path.relative_to(PROJECT_ROOT)}:{n}: {line.strip()[:120]}"
            for n, line in enumerate(text.splitlines(), 1)
            if OLD_HOMES.search(line)
        ]
    assert not offenders, (
        "aistudio_sim/, aistudio_sim/stack.py and aistudio_sim/processes.py moved:\n" + "\n".join(offenders)
    )


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, module)`` for every absolute ``import``/``from ... import`` in one file, function-level ones too."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def imports_of(package: str, forbidden: str) -> list[str]:
    """``file:line module`` for each import of ``forbidden`` (or a submodule) anywhere in ``package``."""
    return [
        f"{path.relative_to(PROJECT_ROOT)}:{line} {module}"
        for path in sorted((PROJECT_ROOT / package).rglob("*.py"))
        for line, module in imported_modules(path)
        if module == forbidden or module.startswith(forbidden + ".")
    ]


def test_the_browser_worker_never_imports_the_stream_proxy() -> None:
    """The wire format, codecs, hosts and CA pin the worker needs live in ``shared``, not ``stream_proxy``."""
    assert imports_of("browser_worker", "stream_proxy") == []


def test_shared_imports_none_of_the_three_processes() -> None:
    """``shared`` is what the processes import; it imports none of them."""
    assert [
        hit
        for process in ("api_server", "browser_worker", "stream_proxy")
        for hit in imports_of("shared", process)
    ] == []


#: browser_worker is kept in small pieces (issue 16): the pool multiplies it, and it should multiply a clear design.
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80


def oversized(path: Path) -> list[str]:
    """The file itself when it is longer than MAX_FILE_LINES, and each function longer than MAX_FUNCTION_LINES."""
    source = path.read_text()
    found = [f"{path}: {source.count(chr(10))} lines"] if source.count("\n") > MAX_FILE_LINES else []
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{path}:{node.lineno} {node.name}: {length} lines")
    return found


def test_the_size_check_sees_a_long_function(tmp_path: Path) -> None:
    long = tmp_path / "long.py"
    long.write_text("def f():\n" + "    x = 1\n" * MAX_FUNCTION_LINES)
    assert oversized(long) == [f"{long}:1 f: {MAX_FUNCTION_LINES + 1} lines"]


def test_browser_worker_files_and_functions_stay_small() -> None:
    files = sorted((PROJECT_ROOT / "browser_worker").rglob("*.py"))
    assert files
    assert [problem for path in files for problem in oversized(path)] == []
