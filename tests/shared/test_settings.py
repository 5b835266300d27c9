"""Settings: defaults, environment, .env file, and one-line errors naming the variable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shared.settings import Settings, SettingsError, load_settings, parse_resolve

ENV_VARS = [
    "API_HOST",
    "API_PORT",
    "STREAM_PORT",
    "RUN_DIR",
    "LOG_DIR",
    "BROWSER",
    "HEADLESS",
    "RESPONSE_COMPLETION_TIMEOUT",
    "RESPONSE_COMPLETION_TIMEOUT_MS",
    "SILENCE_TIMEOUT_MS",
    "AISTUDIO_RESOLVE",
    "ADMIN_KEY",
    "AUTH_PROFILE",
    "UPSTREAM_PROXY",
    "DEFAULT_STOP_SEQUENCES",
    "HELPER_ENDPOINT",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """No developer .env or exported variable leaks into these tests."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_match_the_documented_ones():
    """With nothing set, the documented defaults apply."""
    s = load_settings()
    assert (s.api_host, s.api_port, s.stream_port) == ("127.0.0.1", 2048, 3120)
    assert s.run_dir == Path("run") and s.log_dir == Path("logs")
    assert s.browser == "auto" and s.headless is True
    assert s.response_completion_timeout_ms == 300_000 and s.silence_timeout_ms == 60_000
    assert s.admin_key is None and s.auth_profile is None and not s.demo_mode
    assert s.default_stop_sequences == []  # no hidden stop sequence (issue 13)


@pytest.mark.parametrize("var", ["RESPONSE_COMPLETION_TIMEOUT_MS", "RESPONSE_COMPLETION_TIMEOUT"])
def test_completion_timeout_is_read_under_its_new_and_its_old_name(monkeypatch, var):
    """The setting gained its unit (``_MS``); a .env written for the old name keeps working."""
    monkeypatch.setenv(var, "120000")
    assert load_settings().response_completion_timeout_ms == 120_000


def test_environment_overrides_defaults(monkeypatch):
    """Variables in the environment win over defaults, case-insensitively typed."""
    monkeypatch.setenv("API_PORT", "9000")
    monkeypatch.setenv("STREAM_PORT", "0")
    monkeypatch.setenv("HEADLESS", "false")
    monkeypatch.setenv("ADMIN_KEY", "s3cret")
    monkeypatch.setenv("DEFAULT_STOP_SEQUENCES", '["User:", "###"]')
    s = load_settings()
    assert (s.api_port, s.stream_port, s.headless) == (9000, 0, False)
    assert s.admin_key.get_secret_value() == "s3cret"
    assert s.default_stop_sequences == ["User:", "###"]


def test_dotenv_file_is_read_and_environment_beats_it(tmp_path, monkeypatch):
    """A .env in the working directory is read; an exported variable overrides it."""
    (tmp_path / ".env").write_text("API_PORT=7000\nBROWSER=chromium\n")
    assert load_settings().api_port == 7000
    assert load_settings().browser == "chromium"
    monkeypatch.setenv("API_PORT", "7001")
    assert load_settings().api_port == 7001


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("API_PORT", "not-a-number"),
        ("API_PORT", "70000"),
        ("STREAM_PORT", "-1"),
        ("BROWSER", "netscape"),
        ("RESPONSE_COMPLETION_TIMEOUT_MS", "5"),
        ("AISTUDIO_RESOLVE", "aistudio.google.com"),
        ("UPSTREAM_PROXY", "ftp://x:1"),
        ("HELPER_ENDPOINT", "127.0.0.1:3121/getStreamResponse"),
        ("HELPER_ENDPOINT", "http://"),
        ("VIEWPORT", "wide"),
        ("VIEWPORT", "640x480"),
        ("VIEWPORT", "1440x"),
        ("STRICT_SETTINGS", "sometimes"),
    ],
)
def test_bad_value_fails_with_one_line_naming_the_variable(monkeypatch, var, value):
    """A bad value raises SettingsError whose single line starts with the variable name."""
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(f"{var}:") and "\n" not in message


def test_process_exits_2_with_the_message_on_a_bad_setting(tmp_path, project_root):
    """`python -m api_server` with a bad setting prints one line and exits 2, no traceback."""
    env = {"PATH": "/usr/bin:/bin", "API_PORT": "abc", "LOG_DIR": str(tmp_path), "RUN_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "api_server"],
        cwd=project_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "API_PORT:" in proc.stderr and "Traceback" not in proc.stderr


def test_resolve_override_parses_host_ip_port_pairs():
    """AISTUDIO_RESOLVE maps lower-cased host names to (ip, port) and turns demo mode on."""
    assert parse_resolve("AIStudio.google.com=127.0.0.1:9443, accounts.google.com=[::1]:8443") == {
        "aistudio.google.com": ("127.0.0.1", 9443),
        "accounts.google.com": ("::1", 8443),
    }
    s = Settings(aistudio_resolve="aistudio.google.com=127.0.0.1:9443")
    assert s.demo_mode and s.resolve_map["aistudio.google.com"] == ("127.0.0.1", 9443)


def test_socket_paths_live_in_the_run_dir_and_reject_overlong_paths(tmp_path):
    """Each process's socket is <run_dir>/<name>.sock; a run dir too deep for AF_UNIX is refused."""
    s = Settings(run_dir=tmp_path / "r")
    assert s.worker_socket == tmp_path / "r" / "worker.sock"
    with pytest.raises(SettingsError, match="RUN_DIR"):
        _ = Settings(run_dir=tmp_path / ("x" * 120)).api_socket


def test_a_logged_client_value_cannot_forge_a_log_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """CR, LF and other control characters in a logged value are escaped: one record, one line."""
    import logging

    from shared.logging import configure_logging

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    configure_logging("forgery-test", tmp_path, "INFO")
    try:
        logging.getLogger("api_server.test").info(
            "model=%s", "x\r\n2026-01-01 00:00:00.000 INFO forged\x1b[2J"
        )
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("api_server.test").exception("failed for %s", "y\nz")
    finally:
        for handler in list(root.handlers):
            handler.close()
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
    lines = (tmp_path / "forgery-test.log").read_text().splitlines()
    assert "model=x\\r\\n2026-01-01 00:00:00.000 INFO forged\\x1b[2J" in lines[0]
    assert "failed for y\\nz" in lines[1] and lines[2] == "Traceback (most recent call last):"
    assert not any(line.startswith("2026-01-01") for line in lines)


def test_the_viewport_setting_sizes_every_page(monkeypatch):
    from browser_worker.browser import context_options

    assert Settings().viewport_size == {"width": 1440, "height": 900}
    monkeypatch.setenv("VIEWPORT", " 1920 x 1080 ")
    settings = load_settings()
    assert settings.viewport_size == {"width": 1920, "height": 1080}
    assert context_options(settings, None, None)["viewport"] == {"width": 1920, "height": 1080}
    monkeypatch.setenv("VIEWPORT", "640x480")
    with pytest.raises(SettingsError, match="VIEWPORT: .*640x480 is outside 800x600 to 7680x4320"):
        load_settings()
