"""Text already sent, text read at the end: never duplicated, never withdrawn.

DOM streaming rule (no duplicated or contradictory text): while the answer
renders, only its *stable prefix* is streamed, i.e. the rendered text that is
certain to equal the raw markdown (``DomState.stable_prefix``, computed by the page):

* leading finished paragraphs that hold plain text only (no inline markup and
  none of ``*_`[]<>#\\&|~``), joined by the blank line that separates two
  paragraphs; a paragraph followed by any other block (list, heading, code)
  ends the prefix, since the separator before it is unknown;
* then, if the growing last block is such a paragraph that starts with a
  letter, its text up to the last whitespace and before the first character
  or line start (``-``, ``+``, ``=``, ``>``, ``1.``) that markdown could still
  reinterpret.

A new stable prefix is sent only when it extends what was sent; the client
never sees text withdrawn. At the end the raw markdown is read (Edit → Copy
markdown → rendered text) and only what follows the text already sent is
emitted (``remainder_after``). Should the raw text not start with it exactly, the
position is found on a whitespace-insensitive comparison (only whitespace can
then differ). The same rule continues an answer whose stream tier dropped
mid-way: the wire text already sent is a prefix of the raw markdown.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def _normalise_ws(text: str) -> str:
    return " ".join(text.split())


def remainder_after(sent: str, final: str) -> str:
    """The part of ``final`` that follows the already-sent ``sent`` (see the module docstring)."""
    if final.startswith(sent):
        return final[len(sent) :]
    target = _normalise_ws(sent)
    if not target:
        return final
    # Walk ``final`` until its whitespace-normalised prefix covers ``sent``.
    for end in range(len(final) + 1):
        if len(_normalise_ws(final[:end])) >= len(target):
            if _normalise_ws(final[:end]) == target:
                # Only whitespace differed; the client already has a separator if ``sent`` ended in one.
                return final[end:].lstrip() if sent[-1:].isspace() else final[end:]
            break
    common = 0
    for a, b in zip(sent, final, strict=False):
        if a != b:
            break
        common += 1
    log.warning(
        "the raw answer does not extend the streamed text (common prefix %d of %d)", common, len(sent)
    )
    return final[common:] if common >= len(sent) else final[len(sent) :]
