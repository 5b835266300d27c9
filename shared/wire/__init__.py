"""Google AI Studio's side of the wire, one home for the proxy, the worker and the API server.

* ``endpoints`` — the hosts, the RPC paths and the wire's content type (docs/aistudio.md §4.1);
* ``codecs`` — incremental ``Content-Encoding`` decoders (gzip, deflate, br, zstd);
* ``decoder`` — the pure, incremental GenerateContent decoder, yielding ``shared.protocol`` events
  (docs/aistudio.md §4.4-§4.6).

Nothing here does I/O or imports mitmproxy, aiohttp or Playwright.
"""
