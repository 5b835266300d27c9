"""The per-install certificate authority that the stream proxy signs its host certificates with.

``ensure_ca`` creates it in mitmproxy's ``confdir`` (``settings.certs_dir``) through mitmproxy's own
cert store when it is missing, with the folder at 0700 and every file holding the key at 0600. The
file names and the SPKI pin, which the browser worker needs too, are in ``shared/ca.py``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from shared.ca import BASENAME, CERT_FILE, KEY_FILES, spki_hash

#: Matches mitmproxy's ``key_size`` option default, which the proxy leaves alone.
KEY_SIZE = 2048


@contextlib.contextmanager
def _locked(certs_dir: Path) -> Iterator[None]:
    """Serialise CA creation between processes (the proxy and the worker may start together)."""
    fd = os.open(certs_dir / ".ca.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def ensure_ca(certs_dir: Path) -> Path:
    """Create the CA in ``certs_dir`` if it is missing; return the path of its certificate (PEM).

    The folder is made 0700 and the key files 0600, also when the CA already existed.
    """
    from mitmproxy.certs import CertStore  # heavy import, only needed here

    certs_dir = Path(certs_dir)
    certs_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(certs_dir, 0o700)
    with _locked(certs_dir):
        if not (certs_dir / KEY_FILES[0]).exists():
            CertStore.create_store(certs_dir, BASENAME, KEY_SIZE)
        for name in KEY_FILES:
            path = certs_dir / name
            if path.exists():
                os.chmod(path, 0o600)
    return certs_dir / CERT_FILE


def ca_info(certs_dir: Path) -> dict[str, str]:
    """``{"cert": <absolute path>, "spki_sha256": <hash>}``, creating the CA first if needed."""
    cert = ensure_ca(certs_dir)
    return {"cert": str(cert.absolute()), "spki_sha256": spki_hash(cert)}
