"""The OpenAI-compatible HTTP API (aiohttp) in front of the browser worker.

Layout, one module per concern:

* ``app.create_app(settings)``: the factory; ``__main__`` serves it plus ``api.sock``.
* ``app_keys``: the typed ``AppKey``/``RequestKey`` names of all state kept on the application and the
  requests (``CLIENT_KEYS`` is the store of client API keys).
* ``lifecycle``: cleanup contexts (worker connection, queue dispatcher, HTTP
  session) and the ordered shutdown (``drain``); ``state``: process-wide facts.
* ``routes.openai`` (chat, models, queue, cancel) and ``routes.admin``
  (health, info, keys, OpenAPI): handlers validate, call a service, render.
* ``middleware``: the one error renderer (OpenAI error shape, request ids,
  404 unknown_url / 405 for unknown paths), the request guards (body type, Host)
  and the API-key checks; ``cors``: browser clients (``CORS_ORIGINS``).
* ``schemas``: pydantic models of the chat request, with ``json_schemas`` (client
  JSON schemas checked first) and ``legacy_functions`` (``functions`` as tools);
  ``chat``: request -> Job -> queued ticket -> worker events; ``queue``: FIFO and
  dispatcher; ``worker_client``: the reconnecting ``worker.sock`` client;
  ``attachments`` and ``remote_fetch``: files for the worker (local ones confined,
  remote ones public only); ``render``: events -> OpenAI objects; ``sse``: the only
  SSE writer; ``auth``: the client-key store and the failed-key lockout;
  ``openapi``: ``/openapi.json``.
"""
