"""The browser worker: one real browser on the AI Studio page, serving OpenAI jobs over ``worker.sock``.

Its wings, from the process down to the page:

* ``__main__.py`` — ``python -m browser_worker`` (serve until SIGTERM) and
  ``python -m browser_worker login`` (save a Google login).
* ``worker.py`` — ``Worker``: the socket server and the job queue; runs each job
  on a free page of the pool, reports its outcome, pushes ``WorkerStatus``.
* ``supervisor.py`` — ``Supervisor``: the browser's life (launch, relaunch after
  a crash, cookie refresh) and its pool of pages (``acquire``/``release``).
* ``slot.py`` — ``Slot``: one page of the pool in its own browser context
  (start-up, replacement when it breaks, the login wait, ``hand_back``).
  ``accounts.py`` — which pages each account (login file) gets, and its state;
  ``cooldowns.py`` — accounts resting after a quota error, ramping up after.
  ``job_queue.py`` — the jobs waiting for a page.
* ``job/`` — one job on the page, stage by stage: plan → apply settings →
  submit → capture → finish → clear (``job/__init__.py`` maps it).
* ``mapping/`` — pure: what a request means for the page (the prompt text,
  function declarations, emulated tools, the thinking plan, the model list).
* ``page/`` — ``StudioPage``: the AI Studio page, a facade over one object per
  page region; the only code that touches Playwright's page (``page/__init__.py``
  maps it).
* ``feed.py`` — capture tier 1: the subscription to the stream proxy's events
  and the per-job ``FlowWatch``.
* ``helper.py`` — capture tier 2: the answer's body from ``HELPER_ENDPOINT``.
* ``browser.py`` — ``BrowserSession``: Playwright and the browser; ``SlotPage``:
  one slot's context and page. ``auth.py`` — saved logins, cookie refresh, the interactive login.
* ``errors.py`` — the worker's error types and the one reading of AI Studio's
  error texts. ``snapshots.py`` — the failed page, kept for diagnosis.
* ``selectors.py`` — every selector, URL path and page constant.
"""
