"""Every piece of JavaScript the page wing runs inside the AI Studio page, as named constants.

Each one is a function expression for ``evaluate`` / ``wait_for_function`` / ``evaluate_all``. None
spells a selector: the selectors arrive as arguments (from ``browser_worker/selectors.py``), so the
page contract stays in one module. The region that runs a script is named in its comment.
"""

from __future__ import annotations

# --------------------------------------------------------------------------- answer (answer.py)

#: The generation state in one round trip (``DomState``). ``stable_prefix`` is the part of the
#: rendered answer that is certain to equal the raw markdown: the leading run of *finished*
#: paragraphs (a later block exists) that hold text only, no inline markup and none of the
#: characters markdown could have consumed or escaped. ``sel.lite``: the text is not read.
SNAPSHOT = """
(sel) => {
  const SPECIAL = /[*_`\\[\\]<>#\\\\&|~]/;
  // Also stop before a line that could turn the paragraph into a list, rule, quote or heading.
  const SPECIAL_OR_LINE = /[*_`\\[\\]<>#\\\\&|~]|\\n\\s*([-+=>]|\\d+[.)])/;
  const q = (s) => document.querySelector(s);
  const visible = (el) => !!el && !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  const turns = document.querySelectorAll(sel.turn);
  const last = turns.length ? turns[turns.length - 1] : null;
  const model = last ? last.querySelector(sel.modelContainer) : null;
  let answer = "", stable = "", thoughts = "", calls = 0, edit = false;
  if (model && !sel.lite) {
    const th = model.querySelector(sel.thoughtText);
    thoughts = th ? th.textContent : "";
    const roots = [...model.querySelectorAll(sel.cmarkRoot)].filter((n) => !n.closest(sel.thoughtContainer));
    answer = roots.map((r) => r.innerText).join("\\n\\n");
    if (roots.length === 1) {
      const blocks = [...roots[0].children];
      const plain = (b) => {
        const p = b.tagName === "P" ? b : (b.children.length === 1 && b.children[0].tagName === "P" ? b.children[0] : null);
        return p && !p.children.length && !SPECIAL.test(p.textContent) ? p : null;
      };
      // Finished plain paragraphs. Between two paragraphs the markdown has a blank line
      // ("\\n\\n"); before any other block the separator is unknown, so stop there.
      const parts = [];
      let i = 0;
      for (; i < blocks.length - 1; i++) {
        const p = plain(blocks[i]);
        if (!p) break;
        parts.push(p.textContent);
        const next = blocks[i + 1];
        const nextP = next.tagName === "P" || (next.children.length === 1 && next.children[0].tagName === "P");
        if (!nextP) { i = -1; break; }
      }
      stable = parts.join("\\n\\n");
      if (i >= 0 && parts.length) stable += "\\n\\n";
      // The growing last paragraph: its text up to the last whitespace, when it is plain
      // prose so far (starts with a letter; nothing markdown could still reinterpret).
      if (i >= 0 && i === blocks.length - 1) {
        const b = blocks[i];
        const p = b.tagName === "P" ? b : (b.children.length === 1 && b.children[0].tagName === "P" ? b.children[0] : null);
        if (p && !p.children.length) {
          let text = p.textContent;
          const cut = text.search(SPECIAL_OR_LINE);
          if (cut >= 0) text = text.slice(0, cut);
          const ws = Math.max(text.lastIndexOf(" "), text.lastIndexOf("\\n"));
          text = ws > 0 ? text.slice(0, ws + 1) : "";
          if (/^\\p{L}/u.test(text)) stable += text;
        }
      }
    }
  }
  if (model) {
    calls = model.querySelectorAll(sel.functionCall).length;
    const btn = last.querySelector(sel.editButton);
    edit = !!btn && btn.getAttribute("aria-label") === sel.editLabel;
  }
  const run = q(sel.run);
  const ta = [...document.querySelectorAll(sel.textarea)].find((t) => !t.closest(sel.turn));
  const quotaEl = q(sel.quota);
  const legacy = [...document.querySelectorAll(sel.legacyQuota)].find(
    (c) => c.textContent.toLowerCase().includes(sel.legacyQuotaText));
  const toastEl = q(sel.toast);
  return {
    turns: turns.length, model_turn: !!model, answer, stable_prefix: stable, thoughts,
    function_calls: calls,
    stop_visible: visible(q(sel.stop)),
    run_disabled: !run || run.disabled || run.getAttribute("aria-disabled") === "true",
    textarea_empty: !ta || ta.value === "",
    edit_visible: edit,
    quota: quotaEl ? quotaEl.textContent.trim() : (legacy ? legacy.textContent.trim() : ""),
    toast: toastEl ? toastEl.textContent.trim() : "",
  };
}
"""

#: ``SNAPSHOT`` plus its own serialisation as ``key`` (what ``DOM_CHANGED`` compares against).
DOM_STATE = (
    "(sel) => { const s = (" + SNAPSHOT + ")(sel); return Object.assign(s, {key: JSON.stringify(s)}); }"
)

#: For ``wait_for_function``: the state once it differs from the previous ``key``, else null (keep polling).
DOM_CHANGED = (
    "([sel, prev]) => { const s = (" + SNAPSHOT + ")(sel);"
    " const key = JSON.stringify(s); return key !== prev ? Object.assign(s, {key}) : null; }"
)

#: The clipboard's text (after "Copy markdown").
READ_CLIPBOARD = "() => navigator.clipboard.readText()"

# --------------------------------------------------------------------------- run settings (run_settings.py)

#: One evaluate for every control the job compares against its request (``RunSettings``).
RUN_SETTINGS = """
(sel) => {
  const first = (s) => document.querySelector(s);
  const visible = (el) => !!el && !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  const num = (s) => {
    const el = first(s);
    if (!el) return null;
    const v = parseFloat(el.value);
    return Number.isFinite(v) ? v : null;
  };
  const sw = (s) => { const el = first(s); return el ? el.getAttribute("aria-checked") === "true" : null; };
  const header = first(sel.toolsHeader);
  const group = header && header.parentElement ? header.parentElement.parentElement : null;
  const budget = first(sel.budget);
  const levelSelect = first(sel.levelSelect);
  const levelValue = levelSelect ? levelSelect.querySelector(sel.levelValue) : null;
  const model = first(sel.model);
  return {
    model: visible(model) ? model.innerText.trim() : "",
    temperature: num(sel.temperature),
    top_p: num(sel.topP),
    max_tokens: num(sel.maxTokens),
    stops: [...document.querySelectorAll(sel.stopChip)].map((e) => {
      const label = e.getAttribute("aria-label") || "";
      return (label.startsWith(sel.stopChipPrefix) ? label.slice(sel.stopChipPrefix.length) : label).trim();
    }),
    tools_open: header ? (!!group && group.classList.contains(sel.expanded)) : null,
    structured: sw(sel.structured),
    url_context: sw(sel.urlContext),
    search: sw(sel.search),
    fc: sw(sel.fc),
    thinking_main: sw(sel.thinkingMain),
    thinking_manual: sw(sel.thinkingManual),
    budget: budget && visible(budget) ? budget.value : null,
    level: levelValue ? levelValue.innerText.trim() : null,
  };
}
"""

#: For ``evaluate_all`` over the stop chips' remove buttons: their labels.
ARIA_LABELS = "(els) => els.map((e) => e.getAttribute('aria-label') || '')"

#: Raise the thinking budget input's ``max`` (and its slider's) to the value, then set it.
RAISE_BUDGET_MAX = """
(el, [value, sliderScope, sliderRange]) => {
  const scope = el.closest(sliderScope) || el.parentElement;
  const inputs = [el, ...(scope ? scope.querySelectorAll(sliderRange) : [])];
  for (const i of inputs) if (Number(i.max) < value) i.max = String(value);
  el.value = String(value);
  for (const t of ["input", "change", "blur"]) el.dispatchEvent(new Event(t, { bubbles: true }));
}
"""

# --------------------------------------------------------------------------- dialogs (dialogs.py)

#: Set a text field's value by script, with the bubbling input and change events Angular listens to.
SET_VALUE = """
(el, value) => {
  el.value = value;
  el.dispatchEvent(new Event("input", { bubbles: true }));
  el.dispatchEvent(new Event("change", { bubbles: true }));
}
"""

# --------------------------------------------------------------------------- prompt composer (composer.py)

#: Sets the prompt like ``SET_VALUE`` and reports whether Run is now enabled (and is not Stop).
FILL_PROMPT = """
(el, [value, run, stop]) => {
  el.value = value;
  el.dispatchEvent(new Event("input", { bubbles: true }));
  el.dispatchEvent(new Event("change", { bubbles: true }));
  const b = document.querySelector(run);
  return !!b && !b.disabled && b.getAttribute("aria-disabled") !== "true" && !b.matches(stop);
}
"""

#: Clicks Run by script when nothing can be in the way; false (no click) otherwise.
CLICK_RUN = """
([run, stop, blockers]) => {
  const b = document.querySelector(run);
  if (!b || b.disabled || b.getAttribute("aria-disabled") === "true") return false;
  if (b.matches(stop)) return false;
  if (blockers.some((s) => document.querySelector(s))) return false;
  b.click();
  return true;
}
"""

#: For ``wait_for_function``: the prompt box emptied, or the page shows a generation or a model turn.
SUBMITTED = """
([textarea, turn, stop, modelTurn]) => {
  const t = [...document.querySelectorAll(textarea)].find((e) => !e.closest(turn));
  return (t && t.value === "") || !!document.querySelector(stop) || !!document.querySelector(modelTurn);
}
"""

#: Empties the prompt box without waiting for it (the page may be half broken when this runs).
CLEAR_PROMPT = """
([textarea, turn]) => {
  for (const el of document.querySelectorAll(textarea)) {
    if (el.value === "" || el.closest(turn)) continue;
    el.value = "";
    el.dispatchEvent(new Event("input", { bubbles: true }));
  }
}
"""

# --------------------------------------------------------------------------- chat controls (chat.py)

#: Clicks Stop only while the button is still there (atomic in the page).
CLICK_STOP = """
(stop) => {
  const b = document.querySelector(stop);
  if (!b) return false;
  b.click();
  return true;
}
"""

#: docs/aistudio.md §2.1: any one of the temporary-chat signals.
TEMP_CHAT_ACTIVE = """
(sel) => {
  const ind = document.querySelector(sel.indicator);
  if (ind && ind.offsetParent !== null && ind.textContent.trim().toLowerCase() === sel.text) return true;
  if (document.querySelector(sel.checkmark)) return true;
  const t = document.querySelector(sel.toggle);
  if (t && (t.getAttribute("aria-pressed") === "true" || t.getAttribute("aria-checked") === "true")) return true;
  return !!t && t.classList.contains(sel.activeClass);
}
"""

# --------------------------------------------------------------------------- overlays (overlays.py)

#: Whether any of the selectors matches.
ANY_PRESENT = "(sels) => sels.some((s) => document.querySelector(s))"

#: The visible prompt box is what a click at its centre reaches (no unknown dialog lies over the page). True
#: when it cannot tell: no visible box (``prompt_textarea``'s failure), off screen, or a selector only
#: Playwright reads.
UNCOVERED = """
(selector) => {
  let boxes;
  try { boxes = [...document.querySelectorAll(selector)]; } catch (e) { return true; }
  const box = boxes.find((el) => el.getClientRects().length);
  if (!box) return true;
  const r = box.getBoundingClientRect();
  const x = r.left + r.width / 2, y = r.top + r.height / 2;
  if (x < 0 || y < 0 || x >= innerWidth || y >= innerHeight) return true;
  const hit = document.elementFromPoint(x, y);
  return !!hit && (hit === box || box.contains(hit) || hit.contains(box));
}
"""

#: Removes the matches and, for overlay content, the pane that holds it (it would still catch clicks);
#: a pane that holds a dialog, menu or listbox stays.
REMOVE = """
([selectors, pane, keep]) => {
  for (const s of selectors) for (const el of document.querySelectorAll(s)) {
    const holder = el.closest(pane);
    (holder && !holder.querySelector(keep) ? holder : el).remove();
  }
}
"""

# --------------------------------------------------------------------------- navigation (navigation.py)

#: One localStorage item (the preferences, docs/aistudio.md §1.3).
READ_STORAGE = "(key) => localStorage.getItem(key)"

#: docs/aistudio.md §1.3: complete the preferences (and force a model); true when they changed.
FIX_PREFS = """
([key, defaults, model, force]) => {
  let prefs = null;
  try { prefs = JSON.parse(localStorage.getItem(key)); } catch (e) { prefs = null; }
  const ok = prefs && typeof prefs === "object" && prefs.promptModel && prefs.isAdvancedOpen === true
    && prefs.areToolsOpen === true && (!force || prefs.promptModel === force);
  if (ok) return false;
  prefs = (prefs && typeof prefs === "object") ? prefs : {};
  for (const [k, v] of Object.entries(defaults)) if (!(k in prefs)) prefs[k] = v;
  if (force) prefs.promptModel = force;
  else if (!prefs.promptModel && model) prefs.promptModel = "models/" + model;
  prefs.isAdvancedOpen = true;
  prefs.areToolsOpen = true;
  localStorage.setItem(key, JSON.stringify(prefs));
  return true;
}
"""

#: The cheapest round trip: does the page's script still answer?
PING = "1"
