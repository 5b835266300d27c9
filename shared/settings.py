"""Every tunable of the three processes, read once from the environment and ``.env``.

``load_settings()`` is called only from each process's ``__main__``; the result
is a frozen ``Settings`` handed to constructors. Nothing else reads
``os.environ``. Tests build ``Settings(...)`` directly. A bad value fails at
start with one line naming the variable (``SettingsError``).

Relative paths are relative to the working directory, which supervisord sets
to the project root. ``.env.example`` documents each variable with its default.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.ca import CERT_FILE
from shared.wire import endpoints

VERSION = "0.1.0"

#: Unix socket paths must fit in sockaddr_un (108 bytes on Linux, 104 on macOS).
MAX_SOCKET_PATH = 100


class SettingsError(Exception):
    """A setting has a bad value; the message names the variable."""


def parse_aliases(value: str) -> tuple[tuple[str, str], ...]:
    """Parse ``MODEL_ALIASES``: ``name=model,pattern*=model`` in order (a ``*`` matches any run of characters)."""
    pairs: list[tuple[str, str]] = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, sep, target = (x.strip() for x in item.partition("="))
        if not sep or not name or not target:
            raise ValueError(f"MODEL_ALIASES: expected name=model, got {item!r}")
        pairs.append((name, target))
    return tuple(pairs)


def parse_resolve(value: str) -> dict[str, tuple[str, int]]:
    """Parse ``host=ip:port,host=ip:port`` (like curl's ``--resolve``)."""
    mapping: dict[str, tuple[str, int]] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        host, sep, target = item.partition("=")
        ip, colon, port = target.rpartition(":")
        if not sep or not colon or not host.strip() or not ip or not port.isdigit():
            raise ValueError(f"expected host=ip:port, got {item!r}")
        if not 0 < int(port) < 65536:
            raise ValueError(f"port out of range in {item!r}")
        mapping[host.strip().lower()] = (ip.strip("[]"), int(port))
    return mapping


#: The smallest and largest page a viewport may ask for (pixels).
VIEWPORT_MIN, VIEWPORT_MAX = (800, 600), (7680, 4320)


def parse_viewport(value: str) -> dict[str, int]:
    """``"1440x900"`` → ``{"width": 1440, "height": 900}``; ``ValueError`` with the accepted form otherwise."""
    match = re.fullmatch(r"\s*(\d{1,5})\s*[xX×]\s*(\d{1,5})\s*", value)
    if match is None:
        raise ValueError(f"{value!r} is not WIDTHxHEIGHT, e.g. 1440x900")
    width, height = int(match[1]), int(match[2])
    if not (VIEWPORT_MIN[0] <= width <= VIEWPORT_MAX[0] and VIEWPORT_MIN[1] <= height <= VIEWPORT_MAX[1]):
        raise ValueError(
            f"{width}x{height} is outside {VIEWPORT_MIN[0]}x{VIEWPORT_MIN[1]} to {VIEWPORT_MAX[0]}x{VIEWPORT_MAX[1]}"
            " (a small page hides AI Studio's run settings panel)"
        )
    return {"width": width, "height": height}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        frozen=True,
        extra="ignore",
        case_sensitive=False,
        validate_default=True,
    )

    # --- network
    api_host: str = "127.0.0.1"
    api_port: int = Field(2048, ge=1, le=65535)
    stream_host: str = "127.0.0.1"
    #: 0 turns interception off: the worker reads answers from the DOM.
    stream_port: int = Field(3120, ge=0, le=65535)
    #: Optional upstream proxy for the stream proxy (http://, https://, socks5://).
    upstream_proxy: str = ""
    #: TEST/DEMO ONLY: send these hosts to local addresses, e.g. the simulator.
    aistudio_resolve: str = ""

    # --- files and folders
    run_dir: Path = Path("run")
    log_dir: Path = Path("logs")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    certs_dir: Path = Path("certs")
    auth_profiles_dir: Path = Path("auth_profiles")
    #: Storage-state JSON to use; empty = first *.json in auth_profiles/active/.
    auth_profile: Path | None = None
    excluded_models_file: Path = Path("excluded_models.txt")
    api_keys_file: Path = Path("data/api_keys.json")
    #: Private folder (0700) of the stored Responses API responses (``responses.sqlite3``).
    data_dir: Path = Path("data")
    #: Days a stored response (``store: true``) is kept for previous_response_id and GET /v1/responses/{id}.
    responses_retention_days: int = Field(30, ge=1)
    #: Days a usage ledger row (``DATA_DIR/usage.sqlite3``: one per generation request) is kept.
    usage_retention_days: int = Field(90, ge=1)
    #: The usage ledger never grows past this (MB); rows beyond it are dropped and logged.
    usage_max_mb: float = Field(1024, gt=0)
    error_snapshot_dir: Path = Path("errors")
    max_error_snapshots: int = Field(50, ge=0)
    #: Folder that local-path attachments must live in; empty = local paths refused.
    attachments_dir: Path | None = None
    #: http(s) attachment URLs: off (refused) or public (fetched from public addresses only; SSRF guard).
    remote_attachments: Literal["off", "public"] = "off"

    # --- browser
    browser: Literal["auto", "camoufox", "chromium"] = "auto"
    browser_executable: Path = Path("/usr/bin/chromium")
    headless: bool = True
    aistudio_url: str = endpoints.PAGE_URL
    #: Optional external stream helper (capture tier 2), e.g. http://127.0.0.1:3121/getStreamResponse.
    helper_endpoint: str = ""
    cookie_refresh_interval_s: int = Field(1800, ge=0)
    #: Demo mode: how many simulator accounts (demo@example.com, demo2@example.com …) the pool serves.
    demo_accounts: int = Field(1, ge=1, le=16)
    #: Pages (slots) per account (saved login), each its own browser context running one request at a time.
    pages_per_account: int = Field(1, ge=1, le=16)
    #: Each page's window size, ``WIDTHxHEIGHT`` (a small one hides AI Studio's run settings panel).
    viewport: str = "1440x900"
    #: TOML file that replaces or prepends named selectors of ``browser_worker/selectors.py`` without a code change
    #: (docs/selectors.md); reloaded by ``POST /api/selectors/reload``. Empty = the built-in selectors.
    selectors_file: Path | None = None

    # --- requests
    #: The old name without the unit, ``RESPONSE_COMPLETION_TIMEOUT``, is still read.
    response_completion_timeout_ms: int = Field(
        300_000,
        ge=1_000,
        validation_alias=AliasChoices("response_completion_timeout_ms", "response_completion_timeout"),
    )
    silence_timeout_ms: int = Field(60_000, ge=1_000)
    queue_limit: int = Field(100, ge=1)
    #: Waiting requests of one API key beyond this get 429; 0 = only QUEUE_LIMIT applies.
    queue_limit_per_key: int = Field(0, ge=0)
    #: A stream's headers wait this long for the first answer event, so that a failure before it is a real
    #: HTTP status; after it, SSE keep-alive comments start and errors are in-band.
    stream_header_hold_s: float = Field(25.0, ge=0)
    max_request_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    max_frame_bytes: int = Field(128 * 1024 * 1024, ge=1024 * 1024)
    shutdown_grace_s: float = Field(10.0, ge=0)
    function_calling_mode: Literal["auto", "native", "emulated"] = "auto"
    #: A request that sets a control the page no longer offers (top-P, stop sequences…) fails with 502 naming it;
    #: false: it runs without it, like a request that did not set it, and the answer says so (``x-aistudio-degraded``).
    strict_settings: bool = True
    enable_google_search: bool = False
    enable_url_context: bool = False
    #: Stop sequences for a request that gives none; none by default (no hidden cut-off, issue 13).
    default_stop_sequences: list[str] = Field(default_factory=list)
    #: Model names clients hard-code, as ``name=model`` pairs, comma-separated; ``*`` in a name matches any
    #: characters (``claude-haiku-*=gemini-2.5-flash``). An exact name wins, then the first matching pattern.
    model_aliases: str = ""

    # --- keys
    #: Key for /api/keys; empty = those routes are refused.
    admin_key: SecretStr | None = None
    #: Web origins allowed to call /v1 from a browser, comma-separated (``https://app.example``); empty = none;
    #: ``*`` only together with ADMIN_KEY (keys required), else any web page could drive the server.
    cors_origins: str = ""
    #: Host names the API answers to (the Host header), comma-separated, besides the loopback names and API_HOST;
    #: ``*`` = any (e.g. behind a reverse proxy that checks it). Refuses DNS-rebinding pages.
    allowed_hosts: str = ""
    #: Failed key checks from one client address within a minute before it is refused (429); 0 = never.
    auth_failure_limit: int = Field(10, ge=0)
    #: How long (s) such an address is refused.
    auth_lockout_s: float = Field(300.0, gt=0)

    @field_validator("aistudio_resolve")
    @classmethod
    def _check_resolve(cls, value: str) -> str:
        parse_resolve(value)
        return value

    @field_validator("model_aliases")
    @classmethod
    def _check_aliases(cls, value: str) -> str:
        parse_aliases(value)
        return value

    @field_validator("viewport")
    @classmethod
    def _check_viewport(cls, value: str) -> str:
        parse_viewport(value)
        return value

    @property
    def viewport_size(self) -> dict[str, int]:
        """``VIEWPORT`` as Playwright's ``{"width", "height"}``."""
        return parse_viewport(self.viewport)

    @field_validator("auth_profile", "attachments_dir", "selectors_file", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("admin_key", mode="before")
    @classmethod
    def _empty_key_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("helper_endpoint")
    @classmethod
    def _check_helper(cls, value: str) -> str:
        url = urlsplit(value)
        if value and (url.scheme not in ("http", "https") or not url.netloc):
            raise ValueError(
                "must be an http:// or https:// URL, e.g. http://127.0.0.1:3121/getStreamResponse"
            )
        return value

    @field_validator("cors_origins")
    @classmethod
    def _check_cors(cls, value: str, info: ValidationInfo) -> str:
        origins = [o.strip() for o in value.split(",") if o.strip()]
        for origin in origins:
            url = urlsplit(origin)
            if origin != "*" and (url.scheme not in ("http", "https") or not url.netloc or url.path):
                raise ValueError(
                    f"{origin!r} is not an origin such as https://app.example or http://localhost:3000"
                )
        if "*" in origins and info.data.get("admin_key") is None:
            raise ValueError("'*' is allowed only together with ADMIN_KEY (API keys required)")
        return value

    @field_validator("upstream_proxy")
    @classmethod
    def _check_upstream(cls, value: str) -> str:
        if value and value.split("://", 1)[0] not in ("http", "https", "socks5"):
            raise ValueError("must start with http://, https:// or socks5://")
        return value

    # --- derived values

    @property
    def allowed_host_names(self) -> frozenset[str]:
        """Lower-case host names (no port) the Host header may carry; contains ``*`` when any is allowed."""
        names = {"localhost", "127.0.0.1", "::1", self.api_host.strip("[]").lower()}
        names.update(h.strip().strip("[]").lower() for h in self.allowed_hosts.split(",") if h.strip())
        return frozenset(names)

    @property
    def cors_origin_list(self) -> tuple[str, ...]:
        return tuple(o.strip() for o in self.cors_origins.split(",") if o.strip())

    @property
    def model_alias_list(self) -> tuple[tuple[str, str], ...]:
        return parse_aliases(self.model_aliases)

    @property
    def resolve_map(self) -> dict[str, tuple[str, int]]:
        return parse_resolve(self.aistudio_resolve)

    @property
    def demo_mode(self) -> bool:
        """True when AI Studio hosts are mapped to a local stand-in (the simulator)."""
        return bool(self.aistudio_resolve)

    def socket_path(self, name: str) -> Path:
        """Path of a process's Unix socket in the private run dir."""
        path = self.run_dir / f"{name}.sock"
        if len(str(path.absolute())) > MAX_SOCKET_PATH:
            raise SettingsError(f"RUN_DIR: socket path {path.absolute()} is too long for a Unix socket")
        return path

    @property
    def api_socket(self) -> Path:
        return self.socket_path("api")

    @property
    def worker_socket(self) -> Path:
        return self.socket_path("worker")

    @property
    def proxy_socket(self) -> Path:
        return self.socket_path("proxy")

    @property
    def ca_cert_path(self) -> Path:
        """The per-install CA certificate (mitmproxy's confdir is ``certs_dir``)."""
        return self.certs_dir / CERT_FILE


def load_settings(**overrides: object) -> Settings:
    """Read the settings once; raise ``SettingsError`` naming the bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        var = "_".join(str(p) for p in err["loc"]).upper() or "settings"
        given = err.get("input")
        shown = f" (got {given!r})" if isinstance(given, (str, int, float)) else ""
        raise SettingsError(f"{var}: {err['msg']}{shown}") from None
