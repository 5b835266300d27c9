"""The documentation matches the code: every setting is in .env.example and the README; the Makefile imports what exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from shared.settings import Settings
from tests.conftest import PROJECT_ROOT

SETTINGS = sorted(name.upper() for name in Settings.model_fields)


@pytest.mark.parametrize("var", SETTINGS)
def test_every_setting_is_in_env_example_with_its_default(var):
    """.env.example has a `VAR=` line for each setting."""
    text = (PROJECT_ROOT / ".env.example").read_text()
    assert re.search(rf"^{var}=", text, re.M), f"{var} missing from .env.example"


@pytest.mark.parametrize("var", SETTINGS)
def test_every_setting_is_in_the_readme_configuration_table(var):
    """The README's configuration table has a row for each setting."""
    text = (PROJECT_ROOT / "README.md").read_text()
    assert re.search(rf"^\| `{var}` \|", text, re.M), f"{var} missing from README's configuration table"


def test_ci_runs_exactly_the_readme_test_command():
    """.ci/run calls the test command the README gives."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    ci = (PROJECT_ROOT / ".ci" / "run").read_text()
    assert "scripts/test.sh" in readme and "scripts/test.sh" in ci


def test_the_makefile_s_inline_python_imports_exist():
    """`make camoufox` and friends import names that still exist (a moved function broke it once)."""
    import importlib

    text = (PROJECT_ROOT / "Makefile").read_text()
    imports = re.findall(r"from ([\w.]+) import (\w+)", text)
    assert imports, "expected inline python in the Makefile"
    for module, name in imports:
        assert hasattr(importlib.import_module(module), name), f"Makefile: {module}.{name} does not exist"


# ---- the repository stands alone (issue 16) ----

#: What a clone of the public repository does not have beside it: the old spec and fixture home.
OUTSIDE_REFERENCE = re.compile(
    r"\.\./shared\b|shared/ai[s]tudio|\"shared\"\s*/\s*\"ai[s]tudio\"|\bSPEC \u00a7|SPEC\.md"
)
CONTRACT = PROJECT_ROOT / "docs" / "aistudio.md"
CITATION = re.compile(r"docs/aistudio\.md \u00a7(\d+(?:\.\d+)?)")


def repository_text_files() -> list[Path]:
    """Every file git tracks or would track (untracked but not ignored), read as text where it is text."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    files = [PROJECT_ROOT / name for name in listed if name]
    return [path for path in files if path.is_file() and b"\0" not in path.read_bytes()[:4096]]


def test_no_file_refers_to_anything_outside_the_repository():
    """Nothing reads or cites the old spec beside the repo: the AI Studio contract is docs/aistudio.md, the fixtures tests/fixtures/."""
    offenders = [
        f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()}"
        for path in repository_text_files()
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE_REFERENCE.search(line)
    ]
    assert not offenders, "references to outside the repository:\n" + "\n".join(offenders)


def contract_sections() -> set[str]:
    """The section numbers docs/aistudio.md defines: its headings, and the numbered items of a section without
    subsections (so `§9.1` is item 1 of §9)."""
    sections: set[str] = set()
    top = ""
    for line in CONTRACT.read_text().splitlines():
        if heading := re.match(r"#{2,3} (\d+(?:\.\d+)?)\.? ", line):
            sections.add(heading[1])
            top = heading[1] if line.startswith("## ") else ""
        elif top and (item := re.match(r"(\d+)\. ", line)):
            sections.add(f"{top}.{item[1]}")
    return sections


def test_every_citation_of_the_contract_names_a_section_it_has():
    """`docs/aistudio.md §N` in code, tests and docs points at a section that exists."""
    sections = contract_sections()
    cited = {
        (match[1], str(path.relative_to(PROJECT_ROOT)))
        for path in repository_text_files()
        for match in CITATION.finditer(path.read_text(errors="replace"))
    }
    assert cited, "nothing cites docs/aistudio.md"
    missing = sorted(f"§{number} in {where}" for number, where in cited if number not in sections)
    assert not missing, "citations of sections docs/aistudio.md does not have:\n" + "\n".join(missing)


def test_ci_run_passes_its_arguments_on(project_root: Path) -> None:
    """.ci/run hands its arguments to the README's test command (and so to pytest)."""
    text = (project_root / ".ci" / "run").read_text()
    assert 'exec scripts/test.sh "$@"' in text


def test_under_ci_a_missing_tool_fails_instead_of_skipping(project_root: Path, tmp_path: Path) -> None:
    """With CI=true and no Chromium/curl/node on PATH the suite stops with a failure naming them, and the
    skip helpers fail rather than skip; outside CI they skip."""
    import subprocess
    import sys

    probe = tmp_path / "test_probe.py"
    probe.write_text(
        "from tests.requirements import skip_unless\n"
        "def test_needs_a_tool():\n"
        "    skip_unless(False, 'imaginary-tool')\n"
    )
    env_base = {"PATH": "/nonexistent", "PYTHONPATH": str(project_root), "HOME": str(tmp_path)}
    for ci, expected in (("true", "failed"), ("", "skipped")):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "--rootdir",
                str(tmp_path),
                "-c",
                "/dev/null",
                str(probe),
            ],
            capture_output=True,
            text=True,
            env={**env_base, "CI": ci},
            cwd=tmp_path,
            timeout=120,
        )
        assert f"1 {expected}" in proc.stdout, proc.stdout
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--co", "tests/shared/test_docs.py"],
        capture_output=True,
        text=True,
        cwd=project_root,
        env={**env_base, "CI": "true", "PATH": "/nonexistent"},
        timeout=120,
    )
    assert (
        proc.returncode == 1 and "curl" in proc.stdout + proc.stderr and "node" in proc.stdout + proc.stderr
    )
