"""A tokenizer-free token estimate, used when the wire carries no usage numbers.

The rule (calibrated against the usual published rules of thumb for
BPE/SentencePiece tokenizers: about 4 characters or 3/4 of a word per token in
English, about one token per CJK character):

* every CJK character (Han, kana, Hangul, CJK and full-width punctuation) is one
  token;
* a run of ASCII/Latin letters (a word) costs ``1 + (len - 1) // 6`` tokens,
  since long words split into several pieces;
* a run of digits costs one token per three digits (rounded up);
* every other visible character (punctuation, symbols, emoji) is one token;
* whitespace is free, except that each newline counts as a token (line
  breaks are rarely merged into neighbouring pieces);
* a non-empty text is at least one token.

``estimate_tokens`` is deterministic and pure; the API server uses it for the
prompt (the serialised message text) and the completion (answer, reasoning
and tool-call arguments) and labels such usage ``x-usage-source: estimate``.
"""

from __future__ import annotations

import re

_CJK = (
    "\u1100-\u11ff"  # Hangul Jamo
    "\u2e80-\u2fdf"  # CJK radicals
    "\u3000-\u303f"  # CJK symbols and punctuation
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3100-\u31ff"  # Bopomofo, Hangul compatibility, Katakana ext
    "\u3200-\u4dbf"  # enclosed CJK, CJK ext A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uac00-\ud7af"  # Hangul syllables
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\uff00-\uffef"  # half/full-width forms
    "\U00020000-\U0002fa1f"  # CJK ext B-F, compatibility supplement
)

_PIECES = re.compile(
    rf"(?P<cjk>[{_CJK}])"
    rf"|(?P<word>[^\W\d_{_CJK}]+)"
    r"|(?P<digits>\d+)"
    r"|(?P<newline>\n)"
    r"|(?P<space>\s+)"
    r"|(?P<other>.)",
    re.DOTALL,
)


def estimate_tokens(text: str) -> int:
    """Estimated token count of ``text`` (see the module docstring for the rule)."""
    if not text:
        return 0
    total = 0
    for match in _PIECES.finditer(text):
        kind = match.lastgroup
        piece = match.group()
        if kind == "word":
            total += 1 + (len(piece) - 1) // 6
        elif kind == "digits":
            total += -(-len(piece) // 3)
        elif kind == "space":
            continue
        else:  # cjk, newline, other
            total += 1
    return max(total, 1)
