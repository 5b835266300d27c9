"""The stream proxy: a mitmproxy-based HTTPS interceptor the browser uses as its proxy.

* ``__main__``: ``python -m stream_proxy`` (serve until SIGTERM) and ``ca-info``.
* ``server``: builds mitmproxy's ``DumpMaster`` with the addon, serves ``proxy.sock``,
  shuts down in order (open streams get ``SHUTDOWN_GRACE_S``).
* ``addon``: ``StreamTap``, which feeds each GenerateContent response, as it streams, to
  the pure decoder in ``shared/wire`` and publishes its events.
* ``publisher``: the subscribers of ``proxy.sock`` (the browser worker).
* ``ca``: creates the per-install CA (key 0600) in ``CERTS_DIR``.
* ``decode``: ``python -m stream_proxy.decode FILE``, the decoder on a saved body.

It can be restarted alone (``supervisorctl restart stream_proxy``): the worker resubscribes,
and an answer that loses its events mid-way is finished from the page.
"""
