"""Process-wide facts about the running API server (start time, fingerprint, draining)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from shared.settings import VERSION, Settings


@dataclass
class ServerState:
    version: str = VERSION
    demo_mode: bool = False
    started_at: float = field(default_factory=time.time)
    #: Set on SIGTERM: new chat requests get 503.
    stopping: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> ServerState:
        return cls(demo_mode=settings.demo_mode)

    @property
    def fingerprint(self) -> str:
        kind = "sim" if self.demo_mode else "proxy"
        return f"fp_aistudio_{kind}_{self.version}"
