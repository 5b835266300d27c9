"""``SELECTORS_FILE`` (issue 21): the file's format, its refusals and how a checked set is put in place; the
degraded-mode rule for a run setting the page lacks; every named selector documented in docs/selectors.md."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from browser_worker import selector_control
from browser_worker import selector_overrides as overrides
from browser_worker import selectors as S
from browser_worker.job import degraded
from browser_worker.job.settings import Control
from shared import protocol
from shared.errors import SettingUnavailable
from shared.settings import Settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def built_in_selectors() -> Iterator[None]:
    yield
    overrides.apply(overrides.Overrides())


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "selectors.toml"
    path.write_text(text)
    return path


def test_replace_and_prepend_give_each_name_its_new_value(tmp_path: Path) -> None:
    loaded = overrides.load(
        write(
            tmp_path,
            "[replace]\nRUN_BUTTON = 'button.send'\nEDIT_LABEL = 'Modify'\n"
            "[prepend]\nTOP_P_INPUT = 'input.top-p'\nDIALOG_ACCEPT_TEXTS = ['Start building', 'Begin']\n"
            "INPUT_CONTAINER = 'ms-new-editor'\n",
        )
    )
    values = loaded.values
    assert values["RUN_BUTTON"] == "button.send"
    assert values["EDIT_LABEL"] == "Modify"
    assert values["TOP_P_INPUT"] == f"input.top-p, {overrides.BUILT_IN['TOP_P_INPUT']}"
    assert values["DIALOG_ACCEPT_TEXTS"] == ("Start building", "Begin", *S.DIALOG_ACCEPT_TEXTS)
    assert values["INPUT_CONTAINER"][0] == "ms-new-editor" and len(values["INPUT_CONTAINER"]) == 6


def test_apply_changes_the_module_and_a_later_set_restores_what_it_leaves_out(tmp_path: Path) -> None:
    first = overrides.load(
        write(tmp_path, "[replace]\nRUN_BUTTON = 'button.send'\nNEW_CHAT = 'button.new'\n")
    )
    assert overrides.apply(first) == ["RUN_BUTTON", "NEW_CHAT"]
    assert S.RUN_BUTTON == "button.send" and S.selector("RUN_BUTTON") == "button.send"
    second = overrides.load(write(tmp_path, "[replace]\nNEW_CHAT = 'button.new'\n"))
    assert overrides.apply(second) == ["RUN_BUTTON"]
    assert S.RUN_BUTTON == overrides.BUILT_IN["RUN_BUTTON"] and S.NEW_CHAT == "button.new"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[replace]\nRUN_BUTON = 'x'\n", "[replace] RUN_BUTON: unknown selector name"),
        ("[replace]\nPREFS_KEY = 'x'\n", "PREFS_KEY: unknown selector name (it cannot be overridden)"),
        ("[replace]\nSELF_TEST = 'x'\n", "it cannot be overridden"),
        (
            "[prepend]\nEDIT_LABEL = 'x'\n",
            "EDIT_LABEL: is a text, label or XPath step: it can only be replaced",
        ),
        ("[replace]\nRUN_BUTTON = ['a', 'b']\n", "holds one string (join several selectors with ', ')"),
        ("[replace]\nRUN_BUTTON = ''\n", "must be a non-empty string or a list of non-empty strings"),
        ("[replace]\nRUN_BUTTON = 3\n", "must be a non-empty string"),
        ("[replace]\nDIALOG_ACCEPT_TEXTS = []\n", "must be a non-empty string"),
        ("[swap]\nRUN_BUTTON = 'x'\n", "unknown table(s) ['swap']; use [replace] and [prepend]"),
        ("replace = 'x'\n", "[replace] must be a table"),
        ("[replace]\nRUN_BUTTON = 'a'\n[prepend]\nRUN_BUTTON = 'b'\n", "both replaced and prepended"),
        ("[replace\n", "not valid TOML"),
    ],
)
def test_a_bad_file_is_refused_with_a_message_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(overrides.OverrideError) as refused:
        overrides.load(path)
    assert message in str(refused.value)
    assert str(path) in str(refused.value)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(overrides.OverrideError, match="cannot read it"):
        overrides.load(tmp_path / "nope.toml")


def test_every_overridable_name_is_a_string_or_a_list_of_strings() -> None:
    assert "RUN_BUTTON" in overrides.BUILT_IN and "DIALOG_ACCEPT_TEXTS" in overrides.BUILT_IN
    assert not set(overrides.BUILT_IN) & S.FIXED
    assert S.TEXTS <= set(overrides.BUILT_IN)
    assert set(S.SELF_TEST.values()) <= set(overrides.BUILT_IN)


def test_every_named_selector_is_documented() -> None:
    doc = (REPO / "docs" / "selectors.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", doc, re.M))
    names = {n for n in vars(S) if n.isupper()}
    assert names - documented == set(), "undocumented in docs/selectors.md"
    assert documented - names == set(), "documented but not in selectors.py"


# ---- degraded mode: a run setting the page lacks


def job(**fields: object) -> protocol.Job:
    return protocol.Job(model="m", messages=[{"role": "user", "content": "hi"}], **fields)  # type: ignore[arg-type]


def test_a_setting_the_request_did_not_set_is_skipped_and_named() -> None:
    assert degraded.skip("top_p", "is not on the page", job(), strict=True) == "top_p"
    assert degraded.skip("stop_sequences", "could not be set", job(stop=[]), strict=True) == "stop_sequences"


def test_a_setting_the_request_set_fails_with_its_control_unless_settings_are_lax() -> None:
    with pytest.raises(SettingUnavailable) as refused:
        degraded.skip("top_p", "is not on the page", job(top_p=0.5), strict=True)
    assert refused.value.status == 502 and refused.value.code == "setting_unavailable"
    assert refused.value.param == "top_p"
    assert "TOP_P_INPUT" in refused.value.message and "STRICT_SETTINGS=false" in refused.value.message
    assert degraded.skip("top_p", "is not on the page", job(top_p=0.5), strict=False) == "top_p"


@pytest.mark.parametrize(
    ("control", "fields"),
    [
        ("temperature", {"temperature": 0.2}),
        ("top_p", {"top_p": 0.3}),
        ("max_output_tokens", {"max_output_tokens": 10}),
        ("stop_sequences", {"stop": ["END"]}),
        ("thinking", {"reasoning_effort": "low"}),
        ("structured_output", {"response_format": {"type": "json_object"}}),
        ("url_context", {"tools": [{"type": "url_context"}]}),
        ("google_search", {"tools": [{"google_search": {}}]}),
    ],
)
def test_what_counts_as_asking_for_a_setting(control: Control, fields: dict[str, object]) -> None:
    assert degraded.asked(control, job(**fields))
    assert not degraded.asked(control, job())


async def test_a_control_missing_again_after_a_reload_is_warned_about_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One warning per control, not per request; but a reload starts over (it may fix or break any control)."""
    file = tmp_path / "selectors.toml"
    file.write_text("# nothing\n")
    settings = Settings(selectors_file=file, run_dir=tmp_path / "run")
    caplog.set_level(logging.WARNING, logger="browser_worker.job.degraded")
    degraded.forget()
    try:
        degraded.note("top_p", "not found")
        degraded.note("top_p", "not found")
        assert len(caplog.records) == 1
        reloaded = await selector_control.reload(settings, None, "req_1")
        assert reloaded.ok, reloaded.error
        degraded.note("top_p", "not found")
        assert len(caplog.records) == 2 and "running without top_p" in caplog.records[1].getMessage()
    finally:
        degraded.forget()
        overrides.apply(overrides.load(file))  # nothing overridden
