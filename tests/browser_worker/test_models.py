"""ListModels parsing and the exclusion list (docs/aistudio.md §4.8)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from browser_worker.mapping.models import (
    display_name_for,
    is_excluded,
    load_excluded_models,
    parse_excluded_models,
    parse_list_models,
)
from shared.protocol import ModelInfo
from tests.fixtures import FIXTURES_DIR

ROOT = Path(__file__).resolve().parents[2]
BODY = (FIXTURES_DIR / "list_models.json").read_bytes()
DEFAULT_EXCLUSIONS = load_excluded_models(ROOT / "excluded_models.txt")

EXPECTED = [
    ("gemini-2.0-flash", "Gemini 2.0 Flash", 8192, "none"),
    ("gemini-2.5-flash", "Gemini 2.5 Flash", 65536, "budget_flash"),
    ("gemini-2.5-pro", "Gemini 2.5 Pro", 65536, "budget_pro"),
    ("gemini-3-pro-preview", "Gemini 3 Pro Preview", 65536, "level2"),
    ("gemma-3-27b-it", "Gemma 3 27B", 8192, "none"),
]


def test_fixture_gives_the_five_expected_models_in_order():
    """The fixture with the shipped exclusions gives exactly the README table, sorted."""
    models = parse_list_models(BODY, excluded=DEFAULT_EXCLUSIONS)
    assert [(m.id, m.display_name, m.output_token_limit, m.thinking) for m in models] == EXPECTED
    for model in models:
        assert model.default_top_p == 0.95
        assert model.default_temperature == 1.0
        assert model.raw_model_path == f"models/{model.id}"
    assert all(model.id != "gemini-2.5-flash-preview-tts" for model in models)


def test_fixture_fields_are_read_from_their_indexes():
    """Description is index 4 verbatim; input limit index 5."""
    pro = next(m for m in parse_list_models(BODY) if m.id == "gemini-2.5-pro")
    assert pro == ModelInfo(
        id="gemini-2.5-pro",
        display_name="Gemini 2.5 Pro",
        description="Strong reasoning and coding model with adaptive thinking.",
        raw_model_path="models/gemini-2.5-pro",
        input_token_limit=1048576,
        output_token_limit=65536,
        default_top_p=0.95,
        thinking="budget_pro",
    )


def test_without_exclusions_the_tts_model_is_listed():
    """The exclusion list is what removes the TTS model."""
    assert "gemini-2.5-flash-preview-tts" in [m.id for m in parse_list_models(BODY)]


def test_xssi_prefix_and_parsed_input_are_accepted():
    """A ``)]}'`` prefix is stripped; an already-parsed body works too."""
    text = BODY.decode()
    assert (
        parse_list_models(")]}'\n" + text) == parse_list_models(text) == parse_list_models(json.loads(text))
    )


def test_two_level_list_is_accepted():
    """``[model, …]`` without the outer wrapper parses the same."""
    data = json.loads(BODY)
    assert parse_list_models(data[0]) == parse_list_models(data)


def test_sorting_is_by_lower_cased_display_name():
    """``alpha`` sorts before ``Beta`` regardless of case."""
    body = [
        [
            ["models/b", None, None, "Beta"],
            ["models/a", None, None, "alpha"],
            ["models/c", None, None, "ALPHA"],
        ]
    ]
    assert [m.id for m in parse_list_models(body)] == ["a", "c", "b"]


def test_missing_display_name_falls_back_to_title_case_id():
    """An empty display name becomes the id with dashes as spaces, Title Case."""
    (model,) = parse_list_models([[["models/gemini-2.5-flash-lite", None, None, "", None]]])
    assert model.display_name == "Gemini 2.5 Flash Lite"
    assert model.description == ""
    assert model.output_token_limit is None
    assert model.default_top_p is None
    assert display_name_for("gemma-3-27b-it") == "Gemma 3 27B It"


@pytest.mark.parametrize(
    ("raw", "expected"), [(1.7, 1.0), (-0.2, 0.0), ("0.5", 0.5), (0, 0.0), ("x", None), (True, None)]
)
def test_top_p_is_clamped_to_unit_interval(raw, expected):
    """Index 9 is clamped to [0, 1]; non-numbers give None."""
    (model,) = parse_list_models([[["models/m", None, None, "M", "", 1, 2, [], 1, raw]]])
    assert model.default_top_p == expected


@pytest.mark.parametrize(
    ("raw", "expected"), [(8192, 8192), ("65536", 65536), (0, None), (-1, None), ("lots", None)]
)
def test_output_limit_accepts_ints_and_digit_strings(raw, expected):
    """Index 6 may be an int or an int64 digit string; non-positive values are dropped."""
    (model,) = parse_list_models([[["models/m", None, None, "M", "", 1, raw]]])
    assert model.output_token_limit == expected


def test_entries_without_a_name_and_duplicates_are_skipped():
    """Entries without ``models/<id>`` are ignored; a repeated id keeps the first."""
    body = [
        [
            [None, None, None, "X"],
            ["models/", None],
            ["models/m", None, None, "First"],
            ["models/m", None, None, "Second"],
        ]
    ]
    assert [(m.id, m.display_name) for m in parse_list_models(body)] == [("m", "First")]


@pytest.mark.parametrize("body", ["", "not json", b"\xef\xbb\xbf{oops"])
def test_a_non_json_body_raises_value_error(body):
    """Garbage is a ``ValueError`` naming ListModels."""
    with pytest.raises(ValueError, match="ListModels"):
        parse_list_models(body)


@pytest.mark.parametrize("body", [[], [[]], {}, {"models": []}, None, 42])
def test_empty_or_odd_shapes_give_no_models(body):
    """No models is an empty list, not an error."""
    assert parse_list_models(body) == []


@pytest.mark.parametrize("wrap", [lambda m: m, lambda m: {"data": m}, lambda m: {"models": m}])
def test_dict_shapes_are_accepted(wrap):
    """List-of-dicts, ``{"data": …}`` and ``{"models": …}`` with the alternative key names."""
    models = [
        {
            "id": "gemini-2.5-pro",
            "displayName": "Pro",
            "maxOutputTokens": 65536,
            "topP": 0.9,
            "temperature": 1.5,
        },
        {"modelId": "gemma-3-1b-it", "display_name": "Gemma", "outputTokenLimit": "8192", "defaultTopP": 2},
        {"name": "models/gemini-3-flash-preview", "defaultMaxOutputTokens": 1024, "description": "d"},
        {"model_id": "x-tts", "name": "Speech"},
        {"displayName": "no id"},
    ]
    parsed = parse_list_models(wrap(models), excluded=["*-tts"])
    assert [(m.id, m.display_name, m.output_token_limit, m.default_top_p, m.thinking) for m in parsed] == [
        ("gemini-3-flash-preview", "Gemini 3 Flash Preview", 1024, None, "level4"),
        ("gemma-3-1b-it", "Gemma", 8192, 1.0, "none"),
        ("gemini-2.5-pro", "Pro", 65536, 0.9, "budget_pro"),
    ]
    assert parsed[2].default_temperature == 1.5
    assert parsed[0].raw_model_path == "models/gemini-3-flash-preview"
    assert parsed[0].description == "d"


def test_exclusion_file_syntax():
    """Comments, blank lines, ``models/`` prefixes and case are handled."""
    text = "# header\n\n  Gemini-1.5-*  \nveo-2.0-generate-001  # trailing comment\nmodels/foo\nfoo\n"
    assert parse_excluded_models(text) == ("gemini-1.5-*", "veo-2.0-generate-001", "foo")


def test_missing_exclusion_file_means_no_exclusions(tmp_path):
    """A path that does not exist gives no patterns."""
    assert load_excluded_models(tmp_path / "nope.txt") == ()


def test_exclusion_file_is_read_from_the_given_path(tmp_path):
    """The file at the given path is parsed."""
    path = tmp_path / "excluded.txt"
    path.write_text("a-*\n# b\n", encoding="utf-8")
    assert load_excluded_models(path) == ("a-*",)


@pytest.mark.parametrize(
    ("model_id", "excluded"),
    [
        ("gemini-1.5-pro", True),
        ("gemini-1.5-flash-8b", True),
        ("gemini-2.0-flash-exp", True),
        ("gemini-2.0-flash-lite-001", True),
        ("gemini-2.0-flash-live-001", True),
        ("learnlm-1.5-pro-experimental", True),
        ("imagen-3.0-generate-002", True),
        ("veo-2.0-generate-001", True),
        ("gemini-3-pro-image-preview", True),
        ("gemini-2.5-flash-preview-tts", True),
        ("gemini-2.5-pro-preview-tts", True),
        ("gemini-2.5-flash-preview-native-audio-dialog", True),
        ("gemini-2.5-flash-exp-native-audio-thinking-dialog", True),
        ("models/GEMINI-1.5-PRO", True),
        ("gemini-2.0-flash", False),
        ("gemini-2.0-flash-lite", False),
        ("gemini-2.5-flash", False),
        ("gemini-2.5-pro", False),
        ("gemini-3-pro-preview", False),
        ("gemma-3-27b-it", False),
    ],
)
def test_shipped_exclusion_list(model_id, excluded):
    """The repo's ``excluded_models.txt`` hides the docs/aistudio.md §4.8 models and nothing current."""
    assert is_excluded(model_id, DEFAULT_EXCLUSIONS) is excluded


def test_glob_star_is_the_only_special_character():
    """``*`` matches any run; dots and brackets are literal; the whole id must match."""
    assert is_excluded("gemini-1.5-pro", ["gemini-1.5-*"])
    assert not is_excluded("gemini-1x5-pro", ["gemini-1.5-*"])
    assert not is_excluded("my-gemini-1.5-pro", ["gemini-1.5-*"])
    assert is_excluded("a[1]", ["a[1]"])
    assert not is_excluded("anything", [])
