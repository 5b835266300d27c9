"""What the three processes share, each concern in one module.

* ``settings``: every tunable, read once (``Settings``); ``logging``: the log format;
  ``process``: run a process's main coroutine until SIGTERM.
* ``protocol``: the framed socket protocol, sans-IO: its messages, which are also the answer's
  events from the wire to the API (reasoning, content, tool call, grounding, usage, finish,
  error, done), ``encode`` and ``FrameDecoder``; ``channel``: its asyncio side (``serve``,
  ``connect``, ``Connection``, ``ReconnectingClient``).
* ``errors``: every error a client can see, with its status, OpenAI type and Retry-After default.
* ``answer`` (finish reason, capture label), ``deadlines`` (the completion timeout) and
  ``tokens`` (the usage estimate): facts more than one process decides, decided once.
* ``wire``: AI Studio's side of the wire (hosts and paths, codecs, the pure decoder).
* ``ca``: the interceptor CA's file names and SPKI pin; ``browsers``: which browser can run.

Nothing here imports ``api_server``, ``browser_worker`` or ``stream_proxy``.
"""
