"""The per-install certificate authority's files and pin: what the stream proxy and the worker share.

mitmproxy keeps the CA in its ``confdir`` (``settings.certs_dir``): ``mitmproxy-ca.pem`` (private
key + certificate) and ``mitmproxy-ca-cert.pem`` (certificate only, the file a browser trusts). The
stream proxy creates them (``stream_proxy/ca.py``); the browser worker pins the certificate in
Chromium with ``spki_hash``, the value ``--ignore-certificate-errors-spki-list`` expects.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

#: mitmproxy's file-name prefix inside ``confdir``.
BASENAME = "mitmproxy"
CERT_FILE = f"{BASENAME}-ca-cert.pem"
#: Files that contain the CA's private key.
KEY_FILES = (f"{BASENAME}-ca.pem", f"{BASENAME}-ca.p12")


def spki_hash(cert_path: Path) -> str:
    """Base64 of the SHA-256 of the certificate's SubjectPublicKeyInfo (Chromium's SPKI pin format)."""
    from cryptography import x509  # not needed by the processes that only read CERT_FILE
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")
