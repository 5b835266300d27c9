"""The documentation matches the code: every setting is in .env.example and the README; the Makefile imports what exists."""

from __future__ import annotations

import re

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
