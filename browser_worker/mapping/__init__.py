"""The mapping wing: pure OpenAI -> AI Studio translation, no browser and no I/O.

* ``prompt``: the conversation as the one prompt text typed into the page (docs/aistudio.md §3.5).
* ``declarations``: OpenAI ``tools`` as the function-declarations JSON the page accepts (§2.7).
* ``emulated``: function calls the model wrote as text, found and parsed (§3.7, §4.7).
* ``thinking``: what the thinking controls should show for a model and ``reasoning_effort`` (§2.6).
* ``models``: the ListModels body as ``ModelInfo`` entries, with the exclusion file (§4.8).

The page wing (``browser_worker/page``) applies what these decide; the job wing runs them.
"""
