"""AI Studio simulator: a local HTTPS fake of the AI Studio page and its RPCs (see README.md).

It serves a page with the same DOM contract and the same RPCs and wire format as
docs/aistudio.md describes, answered by a deterministic scripted model (``#sim:`` directives
in the prompt). It is the demo mode's target (``python -m aistudio_sim``) and what every
end-to-end test and benchmark runs against.

* ``server``, ``state``, ``model``, ``wire``, ``tls``, ``helper``, ``static/``: the simulator.
* ``stack``: the real stack (supervisord, the three processes, the simulator) in a temporary
  copy, shared by the end-to-end tests and ``bench/``; ``processes``: process-tree helpers.
"""
