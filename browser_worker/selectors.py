"""Every selector, URL path and page constant the worker uses (docs/aistudio.md §1, §2, §8).

Nothing else in the worker spells a CSS, XPath, role or label selector or a page path: the
page wing (``browser_worker/page/``) builds its locators from these names and hands them to its
in-page scripts as arguments (``tests/browser_worker/test_page_literals.py`` checks). Lists are
"primary first"; a comma-joined form is provided where one locator is enough.
AI Studio's hosts and RPC paths, which the stream proxy needs too, live in
``shared/wire/endpoints.py``.
"""

from __future__ import annotations

from typing import Final

# --------------------------------------------------------------------------- URLs (docs/aistudio.md §1.1)

NEW_CHAT_PATH = "/prompts/new_chat"
PROMPTS_PATH_FRAGMENT = "/prompts/"
LOGIN_HOST = "accounts.google.com"

# --------------------------------------------------------------------------- localStorage (docs/aistudio.md §1.3)

PREFS_KEY = "aiStudioUserPreference"
PREF_DEFAULTS: dict[str, object] = {
    "bidiModel": "models/gemini-1.0-pro-001",
    "isSafetySettingsOpen": False,
    "hasShownSearchGroundingTos": False,
    "autosaveEnabled": True,
    "theme": "system",
    "bidiOutputFormat": 3,
    "isSystemInstructionsOpen": False,
    "warmWelcomeDisplayed": True,
    "getCodeLanguage": "Node.js",
    "getCodeHistoryToggle": False,
    "fileCopyrightAcknowledged": True,
}

# --------------------------------------------------------------------------- page shell (docs/aistudio.md §1.1, §2.1)

INPUT_CONTAINER = (
    "ms-chunk-editor",
    "ms-prompt-input-wrapper .prompt-input-wrapper",
    "ms-prompt-input-wrapper",
    "ms-prompt-box .prompt-box-container",
    "ms-prompt-box",
)
MODEL_NAME = '[data-test-id="model-name"]'
MORE_ACTIONS = 'button[aria-label="View more actions"]'
TEMP_CHAT_TOGGLE = (
    'button[data-test-incognito-toggle], button[aria-label="Temporary chat toggle"], '
    'button[aria-label="Toggle temporary chat"]'
)
TEMP_CHAT_INDICATOR = (
    'ms-incognito-mode-indicator [data-test-id="main-text"], ms-incognito-mode-indicator .main-text'
)
TEMP_CHAT_CHECKMARK = "[data-test-incognito-checkmark]"
TEMP_CHAT_TEXT = "temporary chat"
TEMP_CHAT_ACTIVE_CLASS = "ms-button-active"

# --------------------------------------------------------------------------- prompt input (docs/aistudio.md §2.2)

PROMPT_TEXTAREA = ", ".join(
    (
        "textarea.textarea",
        "ms-autosize-textarea textarea",
        "ms-chunk-input textarea",
        "ms-prompt-input-wrapper ms-autosize-textarea textarea",
        'ms-prompt-input-wrapper textarea[aria-label*="prompt" i]',
        "ms-prompt-input-wrapper textarea",
        "ms-prompt-box ms-autosize-textarea textarea",
        'ms-prompt-box textarea[aria-label="Enter a prompt"]',
        "ms-prompt-box textarea",
    )
)
UPLOAD_TRIGGER = (
    'button[data-test-id="add-media-button"], button[aria-label^="Insert assets"], '
    'button[aria-label^="Insert images"]'
)
OVERLAY_CONTAINER = "div.cdk-overlay-container"
OVERLAY_MENU = "div.cdk-overlay-container div[role='menu']"
UPLOAD_MENU_ITEM = "div[role='menu'] button[role='menuitem']"
UPLOAD_MENU_TEXTS = ("Upload File", "Upload a file")
FILE_INPUT = "input[type=file]"
#: Buttons (by role and exact name) that accept a first-use or post-upload dialog.
DIALOG_ACCEPT_ROLE: Final = "button"
DIALOG_ACCEPT_TEXTS = ("Agree", "I agree", "Allow", "Continue", "OK", "Confirm", "Yes")
DIALOG_ACK_BUTTON = 'button[aria-label*="copyright" i], button[aria-label*="acknowledge" i]'

# --------------------------------------------------------------------------- run button (docs/aistudio.md §2.3)

RUN_BUTTON = ", ".join(
    (
        'ms-run-button button[type="submit"].ms-button-primary',
        'ms-run-button button[type="submit"]',
        'ms-prompt-input-wrapper ms-run-button button[aria-label="Run"]',
        'ms-prompt-input-wrapper button[aria-label="Run"][type="submit"]',
        'button[aria-label="Run"].run-button',
        'ms-run-button button[type="submit"].run-button',
        'ms-prompt-box ms-run-button button[aria-label="Run"]',
        'ms-prompt-box button[aria-label="Run"][type="submit"]',
    )
)
STOP_GENERATING = 'button[aria-label="Stop generating"]'

# --------------------------------------------------------------------------- turns and answer (docs/aistudio.md §2.4, §2.5)

CHAT_TURN = "ms-chat-turn"
#: From an element, its enclosing chat turn (a turn in edit mode has a textarea of its own).
INSIDE_CHAT_TURN = "xpath=ancestor::ms-chat-turn"
LAST_TURN = "ms-chat-turn:last-child"
MODEL_TURN_CONTAINER = ".chat-turn-container.model"
MODEL_TURN = f"{CHAT_TURN} {MODEL_TURN_CONTAINER}"
CMARK_ROOT = "ms-cmark-node.cmark-node"
EDIT_BUTTON = ".actions-container button.toggle-edit-button"
EDIT_LABEL = "Edit"
STOP_EDITING_LABEL = "Stop editing"
EDIT_TEXT = "ms-autosize-textarea"
#: Inside ``EDIT_TEXT``: the field, read when the holder has no ``data-value``.
EDIT_TEXTAREA = "textarea"
OPTIONS_LABEL = "Open options"
COPY_MARKDOWN_ROLE: Final = "menuitem"
COPY_MARKDOWN_NAME = "Copy markdown"
FINAL_RESPONSE = ", ".join(
    (
        "ms-text-chunk:not(:has(ms-thought-chunk))",
        "ms-cmark-node.cmark-node:not(ms-thought-accordion .content):not(ms-thought-chunk .mat-expansion-panel-body)",
        "[data-testid*='response']",
        "[class*='response-content']",
        ".chat-response",
    )
)
THOUGHT_CONTAINER = "ms-thought-chunk, ms-thought-accordion"
THOUGHT_TEXT = "ms-thought-chunk .mat-expansion-panel-body, ms-thought-accordion .content"
FUNCTION_CALL_CHUNK = "ms-function-call-chunk"
FUNCTION_CALL_NAME = (
    "ms-code-block mat-panel-title span:not(.material-symbols-outlined), "
    "ms-code-block .mat-expansion-panel-header-title span:nth-child(2)"
)
FUNCTION_CALL_ARGS = "ms-code-block pre code"

# --------------------------------------------------------------------------- run settings (docs/aistudio.md §2.6)

TEMPERATURE_INPUT = (
    'ms-slider input[type="number"][max="2"], ms-slider input.slider-number-input[aria-valuemax="2"], '
    'input.slider-number-input[aria-valuemax="2"]'
)
TOP_P_INPUT = (
    'ms-slider input[type="number"][max="1"], ms-slider input.slider-number-input[aria-valuemax="1"], '
    'input.slider-number-input[aria-valuemax="1"]'
)
MAX_TOKENS_INPUT = 'input[aria-label="Maximum output tokens"]'
STOP_INPUT = 'input[aria-label="Add stop token"]'
STOP_CHIP_REMOVE = 'mat-chip button.remove-button[aria-label*="Remove"]'
#: A stop chip's remove button is labelled with this prefix and the sequence.
STOP_CHIP_LABEL_PREFIX = "Remove "
TOOLS_GROUP_HEADER = 'button[aria-label="Expand or collapse tools"]'
#: From the tools header to the group that carries ``GROUP_EXPANDED_CLASS``.
TOOLS_GROUP_FROM_HEADER = "xpath=../.."
GROUP_EXPANDED_CLASS = "expanded"

THINKING_MAIN_TOGGLE = (
    'button[role="switch"][aria-label="Toggle thinking mode"], '
    'mat-slide-toggle[data-test-toggle="enable-thinking"] button[role="switch"].mdc-switch, '
    '[data-test-toggle="enable-thinking"] button[role="switch"].mdc-switch'
)
THINKING_MANUAL_TOGGLE = (
    'button[role="switch"][aria-label="Toggle thinking budget between auto and manual"], '
    'mat-slide-toggle[data-test-toggle="manual-budget"] button[role="switch"].mdc-switch, '
    '[data-test-toggle="manual-budget"] button[role="switch"].mdc-switch'
)
THINKING_BUDGET_INPUT = '[data-test-id="user-setting-budget-animation-wrapper"] input[type="number"]'
#: The budget input's nearest slider ancestor, and the range input beside it (both carry a ``max``).
THINKING_SLIDER_SCOPE = "[data-test-slider]"
THINKING_SLIDER_RANGE = 'input[type="range"]'
THINKING_LEVEL_SELECT = (
    '[role="combobox"][aria-label="Thinking Level"], mat-select[aria-label="Thinking Level"], '
    '[role="combobox"][aria-label="Thinking level"], mat-select[aria-label="Thinking level"]'
)
THINKING_LEVEL_VALUE = ".mat-mdc-select-value-text .mat-mdc-select-min-line"
THINKING_LEVEL_LISTBOX = (
    '[role="listbox"][aria-label="Thinking Level"], [role="listbox"][aria-label="Thinking level"]'
)
THINKING_LEVEL_OPTION = '[role="option"]'

STRUCTURED_TOGGLE = '[data-test-id="structuredOutputTooltip"] button[role="switch"]'
STRUCTURED_EDIT = 'button[aria-label="Edit JSON schema"]'
SCHEMA_DIALOG = (
    'mat-dialog-container:has(h2:has-text("Structured output")), '
    'mat-mdc-dialog-container:has(h2:has-text("Structured output"))'
)
SCHEMA_TEXTAREA = "ms-text-editor textarea, textarea"
SCHEMA_SAVE = 'button[aria-label="Save the JSON schema"], button:has-text("Save")'
#: The run settings panel's "Reset default settings" (docs/aistudio.md §2.6): the only way to empty a saved schema.
RESET_SETTINGS = 'button#resetSettingsBtn, button[aria-label="Reset default settings"]'

FC_CONTAINER = '[data-test-id="functionCallingTooltip"]'
FC_TOGGLE = (
    '[data-test-id="functionCallingTooltip"] mat-slide-toggle button[role="switch"].mdc-switch, '
    '[data-test-id="functionCallingTooltip"] .function-calling-toggle button[role="switch"], '
    '[data-test-id="functionCallingTooltip"] button.mdc-switch'
)
FC_EDIT = (
    '[data-test-id="functionCallingTooltip"] .edit-function-declarations-button, '
    'button.edit-function-declarations-button[aria-label="Edit function declarations"], '
    "button.edit-function-declarations-button"
)
SEARCH_TOGGLE = 'div[data-test-id="searchAsAToolTooltip"] mat-slide-toggle button'
URL_CONTEXT_TOGGLE = 'button[aria-label="Browse the url context"]'
SWITCH_DISABLED_CLASS = "mdc-switch--disabled"

# --------------------------------------------------------------------------- function declarations dialog (docs/aistudio.md §2.7)

FC_DIALOG = (
    'mat-dialog-container:has(h2:has-text("Function declarations")), '
    'mat-mdc-dialog-container:has(h2:has-text("Function declarations"))'
)
FC_DIALOG_FALLBACK = ".mat-mdc-dialog-container"
FC_CODE_TAB = 'ms-tab-group button[role="tab"]:has-text("Code Editor")'
FC_TEXTAREA = 'ms-text-editor textarea, textarea[placeholder*="Tab"]'
FC_SAVE = 'button[aria-label="Save the current function declarations"], button:has-text("Save")'
FC_CLOSE = 'button[aria-label="Close"], button.close-button, button:has-text("Cancel")'
FC_ERROR = ".error, mat-error, .error-message, [role='alert']"

# --------------------------------------------------------------------------- new chat (docs/aistudio.md §2.8)

NEW_CHAT = 'button[data-test-clear="outside"][aria-label="New chat"], button[aria-label="New chat"]'
DISCARD_CONFIRM = 'button.ms-button-primary:has-text("Discard and continue")'
DIALOG_SURFACE = ".mat-mdc-dialog-inner-container"

# --------------------------------------------------------------------------- errors and overlays (docs/aistudio.md §2.9, §2.10)

TOAST = "div.toast.warning, div.toast.error"
QUOTA_CALLOUT = "ms-callout.error-callout .message"
#: The legacy quota callout: a warning callout whose text contains ``LEGACY_QUOTA_TEXT`` (any case).
LEGACY_QUOTA_CALLOUT = "ms-callout.warning-callout"
LEGACY_QUOTA_TEXT = "out of free generations"
BACKDROP_SHOWING = "div.cdk-overlay-backdrop.cdk-overlay-backdrop-showing"
TOOLTIP_SELECTORS = (
    ".cdk-overlay-pane:has(.mdc-tooltip)",
    ".mat-mdc-tooltip-panel",
    ".mdc-tooltip",
    ".mat-mdc-tooltip",
    ".mdc-tooltip__surface",
    ".mat-mdc-tooltip-surface",
    ".mat-tooltip-panel",
    '[role="tooltip"]',
)
SURVEY_IFRAMES = 'iframe[id*="google-hats-survey"], iframe[src*="google_hats"]'
COOKIE_BANNER_REJECT = ".glue-cookie-notification-bar__reject"
#: The overlay pane around a tooltip or menu; one holding ``OVERLAY_PANE_KEEP`` is never removed.
OVERLAY_PANE = ".cdk-overlay-pane"
OVERLAY_PANE_KEEP = "[role=dialog], [role=menu], [role=listbox]"

#: The self-test's checks (docs/aistudio.md §10.1): each check's name → the named selector it looks for.
SELF_TEST = {
    "input_container": "INPUT_CONTAINER",
    "prompt_textarea": "PROMPT_TEXTAREA",
    "model_name": "MODEL_NAME",
    "run_button": "RUN_BUTTON",
    "new_chat": "NEW_CHAT",
    "temperature": "TEMPERATURE_INPUT",
    "top_p": "TOP_P_INPUT",
    "max_output_tokens": "MAX_TOKENS_INPUT",
    "stop_sequences": "STOP_INPUT",
    "tools_group": "TOOLS_GROUP_HEADER",
    "function_calling": "FC_CONTAINER",
    "upload": "UPLOAD_TRIGGER",
}


def selector(name: str) -> str:
    """The named selector as one locator string, as it is now (a list is joined: any of them)."""
    value = globals()[name]
    return ", ".join(value) if isinstance(value, tuple) else str(value)


#: The self-test's essential checks: without any of them no request can run, so the page is taken out of
#: service until they hold (a selector override and ``POST /api/selectors/reload``, or a code fix). The
#: other checks are secondary: requests that do not need them still run (degraded mode, docs/selectors.md).
ESSENTIAL = ("input_container", "prompt_textarea", "run_button", "page_uncovered")

# --------------------------------------------------------------------------- what an override may change

#: Names that are texts, labels, roles, classes or XPath steps rather than CSS selector lists: an override
#: may replace them (same type) but not prepend to them, and they are not parsed as selectors.
TEXTS = frozenset(
    {
        "LOGIN_HOST",
        "TEMP_CHAT_TEXT",
        "TEMP_CHAT_ACTIVE_CLASS",
        "UPLOAD_MENU_TEXTS",
        "DIALOG_ACCEPT_ROLE",
        "DIALOG_ACCEPT_TEXTS",
        "INSIDE_CHAT_TURN",
        "EDIT_LABEL",
        "STOP_EDITING_LABEL",
        "OPTIONS_LABEL",
        "COPY_MARKDOWN_ROLE",
        "COPY_MARKDOWN_NAME",
        "STOP_CHIP_LABEL_PREFIX",
        "TOOLS_GROUP_FROM_HEADER",
        "GROUP_EXPANDED_CLASS",
        "SWITCH_DISABLED_CLASS",
        "LEGACY_QUOTA_TEXT",
    }
)
#: Names no override may change: page paths, storage keys and the tables built from the others.
FIXED = frozenset(
    {"NEW_CHAT_PATH", "PROMPTS_PATH_FRAGMENT", "PREFS_KEY", "PREF_DEFAULTS", "SELF_TEST", "ESSENTIAL"}
)
