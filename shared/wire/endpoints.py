"""AI Studio's hosts and RPC paths (docs/aistudio.md §1.1, §4.1): the one place they are spelled.

The stream proxy decrypts ``HOSTS`` and sniffs GenerateContent; the worker opens ``PAGE_URL``,
watches ListModels and GenerateContent responses and tells jserror reports apart.
"""

from __future__ import annotations

#: The page (``/prompts/...``, ``/_/MakerSuite/jserror``); ``/u/<n>/`` paths live on the same host.
PAGE_HOST = "aistudio.google.com"
#: The RPC host (``/$rpc/google.internal.alkali.applications.makersuite.v1.MakerSuiteService/<Method>``).
RPC_HOST = "alkalimakersuite-pa.clients6.google.com"
#: Every AI Studio host, the ones whose TLS the stream proxy intercepts.
HOSTS = (PAGE_HOST, RPC_HOST)
#: The page's origin, the default ``AISTUDIO_URL``.
PAGE_URL = f"https://{PAGE_HOST}"

LIST_MODELS_FRAGMENT = "MakerSuiteService/ListModels"
GENERATE_CONTENT_SUFFIX = "MakerSuiteService/GenerateContent"
JSERROR_FRAGMENT = "/_/MakerSuite/jserror"

#: The ``Content-Type`` of a GenerateContent response body, errors included (docs/aistudio.md §4.1).
WIRE_CONTENT_TYPE = "application/json+protobuf"


def is_generate_content(path: str) -> bool:
    """True for a GenerateContent RPC path (only the part before ``?`` counts)."""
    return path.split("?", 1)[0].endswith(GENERATE_CONTENT_SUFFIX)
