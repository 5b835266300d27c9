"""The OpenAI-compatible HTTP API (aiohttp) in front of the browser worker.

Layout, one module per concern:

* ``app.create_app(settings)``: the factory; ``__main__`` serves it plus ``api.sock``.
* ``keys``: the typed ``AppKey``/``RequestKey`` names of all state.
* ``lifecycle``: cleanup contexts (worker connection, queue dispatcher, HTTP
  session) and the ordered shutdown (``drain``).
* ``routes.openai`` (chat, models, queue, cancel) and ``routes.admin``
  (health, info, keys, OpenAPI): handlers validate, call a service, render.
* ``middleware``: the one error renderer (OpenAI error shape, request ids,
  404 unknown_url / 405 for unknown paths) and the API-key checks.
* ``schemas``: pydantic models of the chat request; ``chat``: request -> Job ->
  queued ticket -> worker events; ``queue``: FIFO and dispatcher;
  ``worker``: the reconnecting ``worker.sock`` client; ``attachments``: files
  for the worker; ``render``: events -> OpenAI objects; ``sse``: the only SSE
  writer; ``auth``: the client-key store; ``openapi``: ``/openapi.json``.
"""
