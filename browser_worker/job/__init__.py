"""The job wing: one OpenAI job on the AI Studio page, stage by stage (docs/aistudio.md §3.1).

* ``runner.py`` — ``JobRunner.run``: **plan** (model, prompt, completion timeout)
  → **apply settings** → **submit** → **capture** → **finish**, under the
  completion timeout and the cancel event; it owns its one retry and returns an
  ``Outcome``. ``JobRunner.clear`` is the last stage (a clean new chat for the
  next job), run by the worker after it reported the outcome.
* ``settings.py`` — pure: the job's ``WantedSettings`` and ``settings_diff``, the
  controls to change given what the page shows (unit-tested without a browser).
* ``capture.py`` — ``AnswerCapture``: the answer from the stream proxy's feed,
  the helper or the page (DOM), one handler per tier over typed queue items.
* ``prefix.py`` — pure: the DOM streaming rule and ``remainder_after`` (what of
  the raw answer follows the text already sent).
* ``degraded.py`` — a run setting the page cannot show or set: skipped for a job
  that did not ask for it (named in the answer), refused for one that did.
* ``finish.py`` — the answer's usage (wire or ``shared/tokens.py`` estimate) and
  finish reason (``shared/answer.py``).

The page itself is ``browser_worker/page/`` (``StudioPage``); what to type and
which settings a request means is ``browser_worker/mapping/``.
"""

from browser_worker.job.runner import LARGE_PROMPT_CHARS, JobRunner, Outcome

__all__ = ["LARGE_PROMPT_CHARS", "JobRunner", "Outcome"]
