"""``shared.tokens.estimate_tokens`` against a rule-of-thumb reference on mixed English/CJK text.

The reference is independent of the estimator's segmentation: for non-CJK text
the mean of OpenAI's two published rules of thumb (4 characters per token and
3/4 of a word per token); one token per CJK character (close to what
cl100k/Gemini tokenizers give for common Han, kana and Hangul).
"""

from __future__ import annotations

import re

import pytest

from shared.tokens import estimate_tokens

_CJK = r"[\u3000-\u30ff\u3100-\u9fff\uac00-\ud7af\uff00-\uffef]"

CORPUS = [
    "The quick brown fox jumps over the lazy dog. It was a bright cold day in April, and the clocks were "
    "striking thirteen.",
    "Large language models are trained on vast amounts of text and can generate fluent answers to many kinds "
    "of questions, from history to programming.",
    "Please summarise the following meeting notes and list every action item with its owner and due date.",
    "人工智能正在改变我们的生活方式。从医疗到教育，各个领域都在经历深刻的变化。",
    "東京は日本の首都であり、世界で最も人口の多い都市圏の一つです。",
    "오늘 날씨가 정말 좋네요. 공원에 산책하러 갈까요?",
    "我们明天上午十点在会议室讨论 project roadmap 和 Q3 的 OKR，请提前准备好 slides。",
    "The API returned an error: 请检查您的输入参数是否正确 (invalid parameter 'temperature').",
    "Machine translation between Japanese and English has improved: 機械翻訳の品質は大きく向上しました。",
    "She said the museum opens at nine, but the guided tours only start in the afternoon.",
]


def reference_tokens(text: str) -> float:
    cjk = len(re.findall(_CJK, text))
    rest = re.sub(_CJK, " ", text).strip()
    if not rest:
        return cjk
    words = len(rest.split())
    return cjk + (len(rest) / 4 + words * 4 / 3) / 2


def test_estimate_is_within_ten_percent_on_the_mixed_corpus() -> None:
    """Summed over the corpus the estimate is within ±10% of the reference."""
    estimate = sum(estimate_tokens(t) for t in CORPUS)
    reference = sum(reference_tokens(t) for t in CORPUS)
    assert abs(estimate - reference) / reference <= 0.10, (estimate, reference)


@pytest.mark.parametrize("text", CORPUS, ids=lambda t: t[:20])
def test_each_sentence_is_close_to_the_reference(text: str) -> None:
    """No single sentence is off by more than 15%."""
    assert abs(estimate_tokens(text) - reference_tokens(text)) / reference_tokens(text) <= 0.15


def test_empty_text_is_zero_and_any_text_at_least_one() -> None:
    """Empty is 0 tokens; whitespace-free short text is at least 1."""
    assert estimate_tokens("") == 0
    assert estimate_tokens("a") == 1
    assert estimate_tokens("   ") == 1


def test_each_cjk_character_is_one_token() -> None:
    """CJK characters are counted one by one, even next to Latin letters."""
    assert estimate_tokens("中文") == 2
    assert estimate_tokens("abc中文") == 3
