"""The API dialects, each a thin translation around the one engine (``api_server/engine.py``).

A dialect validates its request body and translates it into a ``JobSpec`` (canonical
messages and settings), and renders the worker's events in its own wire format through a
``Renderer`` (``api_server/delivery.py``); its errors have its own shape
(``api_server/dialects/errors.py``). Queue, keys, cancel, client disconnects, attachments
and every hardening rule are the engine's and apply to all alike.

* ``chat`` — OpenAI Chat Completions (``POST /v1/chat/completions``).
"""
