"""The page wing: the only code in the worker that touches Playwright's page (docs/aistudio.md §1-§3).

``StudioPage`` (``studio.py``) is the facade the job and the worker hold. It creates one object per
region of the AI Studio page, each holding the Playwright page and doing that region's work, and
exposes them; what spans regions (a model switch, a fresh chat document) and the document's health
stay on the facade, which also names the intents the job calls as thin delegates.

- ``navigation.py``   ``Navigation``: load and reload ``/prompts/new_chat``, readiness, the login
  redirect, the preferences in localStorage.
- ``composer.py``     ``PromptComposer``: the prompt box, attachments, the Run button.
- ``run_settings.py`` ``RunSettingsPanel`` (and the ``RunSettings`` it reads): sampling numbers, stop
  sequences, the tools group, Google Search, URL context, thinking.
- ``dialogs.py``      ``ToolDialogs``: function declarations and the response schema, each a switch
  plus a dialog saved only when its content changed.
- ``answer.py``       ``AnswerReader`` (and ``DomState``): the generation state while it runs, the
  final markdown, the thoughts and the function calls of the last turn.
- ``chat.py``         ``ChatControls``: Stop, New chat, the temporary-chat toggle.
- ``overlays.py``     ``Overlays``: first-use dialogs, backdrops, tooltips, surveys, the cookie banner;
  every region clears the way through it before it clicks.
- ``switch.py``       ``Switch``: one ``role=switch`` control, shared by the settings and the dialogs.
- ``scripts.py``      every piece of in-page JavaScript, as named constants.
- ``translate.py``    ``@translated``: Playwright's exceptions become the worker's errors at this boundary.

Selectors live in ``browser_worker/selectors.py`` only and reach the scripts as arguments
(``tests/browser_worker/test_page_literals.py`` checks both rules).
"""
