// Run settings panel of the AI Studio simulator page (docs/aistudio.md §2.6, §2.7) and the preference store (§1.3).
"use strict";

(function (global) {
  const { h, icon, setDisabled, openOverlay, openDialog, slideToggle, matSelect } = global.SimDom;

  // ---- localStorage aiStudioUserPreference: one JSON string ----

  const PREF_KEY = "aiStudioUserPreference";

  const Prefs = {
    read() {
      const raw = localStorage.getItem(PREF_KEY);
      if (raw === null) return null;
      try {
        const value = JSON.parse(raw);
        return value && typeof value === "object" && !Array.isArray(value) ? value : null;
      } catch (_) {
        return null;
      }
    },
    write(prefs) {
      localStorage.setItem(PREF_KEY, JSON.stringify(prefs));
    },
    // Read-modify-write of a few keys, keeping whatever else is stored (the client writes here too).
    update(changes) {
      const prefs = Prefs.read() || {};
      Object.assign(prefs, changes);
      Prefs.write(prefs);
      return prefs;
    },
  };

  // ---- model families (docs/aistudio.md §2.6 table) ----

  function thinkingFamily(modelId) {
    const id = modelId.toLowerCase();
    if (id.includes("gemini-3") && id.includes("flash")) return "level4";
    if (id.includes("gemini-3") && id.includes("pro")) return "level2";
    if (id.includes("gemini-2.5-pro")) return "budgetAlways";
    if (id.includes("gemini-2.5-flash") || id === "gemini-flash-latest" || id === "gemini-flash-lite-latest") {
      return "budgetOptional";
    }
    return "none";
  }

  const LEVELS = {
    level4: [
      { value: "MINIMAL", label: "Minimal" }, { value: "LOW", label: "Low" },
      { value: "MEDIUM", label: "Medium" }, { value: "HIGH", label: "High" },
    ],
    level2: [{ value: "LOW", label: "Low" }, { value: "HIGH", label: "High" }],
  };

  const BUDGET = {
    budgetAlways: { min: 1024, max: 32768 },
    budgetOptional: { min: 512, max: 24576 },
  };

  function supportsSearch(modelId) {
    return !modelId.toLowerCase().includes("gemini-2.0");
  }

  // ---- schema checks for the declaration dialog (docs/aistudio.md §2.7 whitelist) ----

  const SCHEMA_KEYS = new Set([
    "type", "format", "description", "nullable", "enum", "maxItems", "minItems", "properties", "required",
    "items", "minProperties", "maxProperties", "minimum", "maximum", "minLength", "maxLength", "pattern",
    "propertyOrdering",
  ]);
  const SCHEMA_TYPES = new Set(["string", "number", "integer", "boolean", "array", "object"]);
  const DECLARATION_KEYS = new Set(["name", "description", "parameters", "response"]);

  function checkSchema(schema, path) {
    if (!schema || typeof schema !== "object" || Array.isArray(schema)) {
      throw new Error(`Schema at ${path} must be an object`);
    }
    for (const key of Object.keys(schema)) {
      if (!SCHEMA_KEYS.has(key)) throw new Error(`Unknown key '${key}'`);
    }
    if (schema.type !== undefined &&
        (typeof schema.type !== "string" || !SCHEMA_TYPES.has(schema.type.toLowerCase()))) {
      throw new Error(`Invalid type '${schema.type}' at ${path}`);
    }
    if (schema.properties !== undefined) {
      if (!schema.properties || typeof schema.properties !== "object" || Array.isArray(schema.properties)) {
        throw new Error(`'properties' at ${path} must be an object`);
      }
      for (const [name, sub] of Object.entries(schema.properties)) checkSchema(sub, `${path}.properties.${name}`);
    }
    if (schema.items !== undefined) checkSchema(schema.items, `${path}.items`);
    if (schema.enum !== undefined && !Array.isArray(schema.enum)) throw new Error(`'enum' at ${path} must be an array`);
    if (schema.required !== undefined && !Array.isArray(schema.required)) {
      throw new Error(`'required' at ${path} must be an array`);
    }
  }

  function parseDeclarations(text) {
    if (!text.trim()) return [];
    let value;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new Error(`Invalid JSON: ${err.message}`);
    }
    if (!Array.isArray(value)) throw new Error("Function declarations must be a JSON array");
    value.forEach((decl, i) => {
      if (!decl || typeof decl !== "object" || Array.isArray(decl)) throw new Error(`Declaration ${i} must be an object`);
      for (const key of Object.keys(decl)) {
        if (!DECLARATION_KEYS.has(key)) throw new Error(`Unknown key '${key}'`);
      }
      if (typeof decl.name !== "string" || !/^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$/.test(decl.name)) {
        throw new Error(`Declaration ${i} needs a valid 'name'`);
      }
      if (decl.description !== undefined && typeof decl.description !== "string") {
        throw new Error(`'description' of ${decl.name} must be a string`);
      }
      if (decl.parameters !== undefined) checkSchema(decl.parameters, `${decl.name}.parameters`);
      if (decl.response !== undefined) checkSchema(decl.response, `${decl.name}.response`);
    });
    return value;
  }

  function parseSchema(text) {
    let value;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new Error(`Invalid JSON: ${err.message}`);
    }
    checkSchema(value, "schema");
    return value;
  }

  // ---- JSON editor dialogs (docs/aistudio.md §2.7 and the structured-output schema) ----

  // A dialog around one JSON code editor (ms-text-editor textarea, never class "textarea"). Save parses the
  // text with `parse`: an error is shown inline and keeps the dialog open; success calls `apply` and closes.
  function jsonEditorDialog({ title, dialogClass, editorLabel, placeholder, text, saveLabel, parse, apply,
                              wrapEditor = (editor) => editor, extraActions = [] }) {
    const textarea = h("textarea", {
      class: "code-editor-input", spellcheck: "false", "aria-label": editorLabel, placeholder,
    });
    textarea.value = text;
    const error = h("div", { class: "error-message", role: "alert" });
    textarea.addEventListener("keydown", (event) => {
      if (event.key !== "Tab") return;
      event.preventDefault();
      textarea.setRangeText("  ", textarea.selectionStart, textarea.selectionEnd, "end");
      textarea.dispatchEvent(new Event("input", { bubbles: true }));
    });
    textarea.addEventListener("input", () => { error.textContent = ""; });
    const close = h("button", { class: "mat-mdc-icon-button close-button", type: "button", "aria-label": "Close" },
      icon("close"));
    const save = h("button", { class: "ms-button-primary", type: "button", "aria-label": saveLabel, text: "Save" });
    const entry = openDialog([
      h("div", { class: "dialog-header" }, h("h2", { class: "mat-mdc-dialog-title", text: title }), close),
      h("mat-dialog-content", { class: "mat-mdc-dialog-content" },
        wrapEditor(h("ms-text-editor", {}, textarea), textarea), error),
      h("mat-dialog-actions", { class: "mat-mdc-dialog-actions" }, ...extraActions, save),
    ], { dialogClass });
    close.addEventListener("click", () => entry.close());
    save.addEventListener("click", () => {
      let value;
      try {
        value = parse(textarea.value);
      } catch (err) {
        error.textContent = err.message;
        return;
      }
      apply(value);
      entry.close();
    });
    textarea.focus();
    return { textarea, error };
  }

  // ms-tab-group with a "Code Editor" tab (the editor) and a read-only "Visual Editor" tab.
  function declarationTabs(editor, textarea) {
    const codePanel = h("div", { class: "code-editor", role: "tabpanel" }, editor);
    const visual = h("div", { class: "visual-editor", role: "tabpanel", hidden: true });
    const tabs = ["Code Editor", "Visual Editor"].map((name, i) => h("button", {
      class: `mat-mdc-tab mdc-tab${i === 0 ? " mdc-tab--active" : ""}`, role: "tab", type: "button",
      "aria-selected": i === 0 ? "true" : "false",
    }, h("span", { class: "mdc-tab__text-label", text: name })));
    const selectTab = (index) => {
      tabs.forEach((t, i) => {
        t.setAttribute("aria-selected", i === index ? "true" : "false");
        t.classList.toggle("mdc-tab--active", i === index);
      });
      codePanel.hidden = index !== 0;
      visual.hidden = index !== 1;
      if (index !== 1) return;
      let decls = [];
      try { decls = parseDeclarations(textarea.value); } catch (_) { decls = []; }
      visual.replaceChildren(...(decls.length ? decls.map((d) => h("div", { class: "visual-declaration" },
        h("span", { class: "declaration-name", text: d.name }),
        h("span", { class: "declaration-description", text: d.description || "" })))
        : [h("div", { class: "visual-empty", text: "No functions declared" })]));
    };
    tabs.forEach((t, i) => t.addEventListener("click", () => selectTab(i)));
    return h("ms-tab-group", {}, h("div", { class: "mat-mdc-tab-labels", role: "tablist" }, tabs), codePanel, visual);
  }

  // ---- the panel ----

  function defaultsFor(model) {
    const family = thinkingFamily(model.id);
    return {
      temperature: model.temperature,
      topP: model.topP,
      maxOutputTokens: model.outputLimit,
      stops: [],
      thinkingOn: true,
      manualBudget: false,
      budget: BUDGET[family] ? BUDGET[family].max : null,
      level: "HIGH",
      functionCalling: false,
      declarations: [],
      search: false,
      urlContext: false,
      structured: false,
      schema: null,
    };
  }

  function formatNumber(n) {
    return Number(n).toLocaleString("en-US");
  }

  // A range + number pair; the number input is what the client fills.
  function sliderPair({ label, min, max, step, value, containerTestId, onValue }) {
    const range = h("input", {
      type: "range", class: "mdc-slider__input", min, max, step, value: String(value), "aria-label": label,
    });
    const number = h("input", {
      type: "number", class: "slider-number-input small", min, max, step, value: String(value),
      "aria-valuemin": min, "aria-valuemax": max, "aria-label": label,
    });
    range.addEventListener("input", () => { number.value = range.value; onValue(Number(range.value)); });
    number.addEventListener("input", () => {
      const v = Number(number.value);
      if (number.value !== "" && Number.isFinite(v)) { range.value = String(v); onValue(v); }
    });
    number.addEventListener("change", () => {
      let v = Number(number.value);
      if (number.value === "" || !Number.isFinite(v)) v = Number(range.value);
      v = Math.min(max, Math.max(min, v));
      if (String(v) !== number.value) number.value = String(v);
      range.value = String(v);
      onValue(v);
    });
    return h("div", { class: "settings-item slider-item", "data-test-id": containerTestId || null },
      h("div", { class: "item-about" }, h("span", { class: "item-title", text: label })),
      h("ms-slider", { class: "ms-slider" }, h("div", { class: "slider-container" }, range, number)));
  }

  function groupHeader(title, ariaLabel, open, onToggle) {
    const button = h("button", {
      class: "mat-mdc-icon-button expand-button", type: "button", "aria-label": ariaLabel,
      "aria-expanded": open ? "true" : "false",
    }, icon("expand_more"));
    const header = h("div", { class: `settings-item settings-group-header${open ? " expanded" : ""}` },
      h("div", { class: "item-about" }, h("span", { class: "group-title", text: title }), button));
    button.addEventListener("click", () => onToggle());
    return header;
  }

  class RunSettings {
    // host: ms-run-settings element; model: {id, displayName, inputLimit, outputLimit, temperature, topP};
    // options: {advancedOpen, toolsOpen, models, onModelPicked}
    constructor(host, model, options) {
      this.host = host;
      this.model = model;
      this.family = thinkingFamily(model.id);
      this.options = options;
      this.state = defaultsFor(model);
      this.advancedOpen = !!options.advancedOpen;
      this.toolsOpen = !!options.toolsOpen;
      this.tokenCount = null;
      this.build();
    }

    build() {
      const { model } = this;
      // docs/aistudio.md §10.0: ms-model-selector > span[data-test-id="model-name"]; the selector itself opens the picker.
      const modelSelector = h("ms-model-selector", {
        class: "model-selector-card", role: "button", tabindex: "0", "aria-label": "Select model",
        "aria-haspopup": "listbox",
      }, h("span", { class: "model-display-name", text: model.displayName || model.id }),
      h("span", { class: "model-name", "data-test-id": "model-name", text: model.id }));
      modelSelector.addEventListener("click", () => this.openModelPicker(modelSelector));
      modelSelector.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); this.openModelPicker(modelSelector); }
      });
      this.tokenCount = h("ms-token-count", { class: "token-count" },
        h("span", { class: "token-count-value", text: `0 / ${formatNumber(model.inputLimit)}` }));

      this.thinkingSection = h("div", { class: "thinking-section" });
      this.toolsHeader = groupHeader("Tools", "Expand or collapse tools", this.toolsOpen, () => this.setToolsOpen(!this.toolsOpen));
      this.toolsBody = h("div", { class: "settings-group-body tools-group" });
      this.advancedHeader = groupHeader("Advanced settings", "Expand or collapse advanced settings", this.advancedOpen,
        () => this.setAdvancedOpen(!this.advancedOpen));
      this.advancedBody = h("div", { class: "settings-group-body advanced-group" });

      const reset = h("button", {
        id: "resetSettingsBtn", class: "mat-mdc-icon-button", type: "button", "aria-label": "Reset default settings",
      }, icon("reset_settings"));
      reset.addEventListener("click", () => this.resetDefaults());

      this.host.replaceChildren(
        h("div", { class: "run-settings-header" }, h("h2", { class: "run-settings-title", text: "Run settings" }), reset),
        h("ms-prompt-run-settings-switcher", {}, h("ms-prompt-run-settings", { class: "run-settings-content" },
          h("div", { class: "settings-item model-item" }, modelSelector),
          h("div", { class: "settings-item token-item" }, h("span", { class: "item-title", text: "Token count" }), this.tokenCount),
          this.temperatureItem = this.buildTemperature(),
          this.thinkingSection,
          this.toolsHeader, this.toolsBody,
          this.advancedHeader, this.advancedBody)));
      this.renderThinking();
      this.renderTools();
      this.renderAdvanced();
    }

    buildTemperature() {
      return sliderPair({
        label: "Temperature", min: 0, max: 2, step: 0.05, value: this.state.temperature,
        containerTestId: "temperatureSliderContainer", onValue: (v) => { this.state.temperature = v; },
      });
    }

    resetDefaults() {
      const keep = { functionCalling: this.state.functionCalling, declarations: this.state.declarations };
      this.state = Object.assign(defaultsFor(this.model), keep);
      const fresh = this.buildTemperature();
      this.temperatureItem.replaceWith(fresh);
      this.temperatureItem = fresh;
      this.renderThinking();
      this.renderTools();
      this.renderAdvanced();
    }

    setTokenCount(tokens) {
      this.tokenCount.firstChild.textContent = `${formatNumber(tokens)} / ${formatNumber(this.model.inputLimit)}`;
    }

    setToolsOpen(open) {
      this.toolsOpen = open;
      Prefs.update({ areToolsOpen: open });
      this.renderTools();
    }

    setAdvancedOpen(open) {
      this.advancedOpen = open;
      Prefs.update({ isAdvancedOpen: open });
      this.renderAdvanced();
    }

    openModelPicker(anchor) {
      const models = this.options.models || [];
      const list = h("div", { class: "mat-mdc-select-panel model-picker", role: "listbox", "aria-label": "Model" },
        models.map((m) => {
          const option = h("mat-option", {
            class: `mat-mdc-option${m.id === this.model.id ? " mdc-list-item--selected" : ""}`,
            role: "option", "aria-selected": m.id === this.model.id ? "true" : "false", tabindex: "0",
          }, h("span", { class: "model-option-name", text: m.displayName || m.id }),
          h("span", { class: "model-option-id", text: m.id }));
          option.addEventListener("click", () => { entry.close(); this.options.onModelPicked(m.id); });
          return option;
        }));
      const entry = openOverlay({ backdrop: "transparent", content: list, anchor });
    }

    // -- thinking (docs/aistudio.md §2.6 table) --

    renderThinking() {
      const { family, state } = this;
      const section = this.thinkingSection;
      section.replaceChildren();
      if (family === "level4" || family === "level2") {
        const select = matSelect({
          ariaLabel: "Thinking Level", options: LEVELS[family], value: state.level,
          onChange: (v) => { state.level = v; },
        });
        section.append(h("div", { class: "settings-item thinking-level-item" },
          h("div", { class: "item-about" }, h("span", { class: "item-title", text: "Thinking level" })),
          h("mat-form-field", { class: "mat-mdc-form-field" }, select.el)));
        return;
      }
      if (family === "none") return;
      if (family === "budgetOptional") {
        const main = slideToggle({
          ariaLabel: "Toggle thinking mode", labelText: "Thinking mode", checked: state.thinkingOn,
          dataTestToggle: "enable-thinking",
          onChange: (on) => { state.thinkingOn = on; this.renderBudget(); },
        });
        section.append(h("div", { class: "settings-item thinking-mode-item" }, main.el));
      }
      this.budgetArea = h("div", { class: "budget-area" });
      section.append(this.budgetArea);
      this.renderBudget();
    }

    renderBudget() {
      const { family, state } = this;
      const area = this.budgetArea;
      area.replaceChildren();
      if (family === "budgetOptional" && !state.thinkingOn) return;
      const manual = slideToggle({
        ariaLabel: "Toggle thinking budget between auto and manual", labelText: "Set thinking budget",
        checked: state.manualBudget, dataTestToggle: "manual-budget",
        onChange: (on) => { state.manualBudget = on; this.renderBudget(); },
      });
      area.append(h("div", { class: "settings-item manual-budget-item" }, manual.el));
      if (!state.manualBudget) return;
      const { min, max } = BUDGET[family];
      const range = h("input", { type: "range", min, max, step: 1, value: String(state.budget), "aria-label": "Thinking budget" });
      const number = h("input", {
        type: "number", class: "budget-number-input", min, max, step: 1, value: String(state.budget),
        "aria-label": "Thinking budget tokens",
      });
      const onInput = (source, other) => () => {
        const v = parseInt(source.value, 10);
        if (Number.isFinite(v)) { state.budget = v; other.value = String(v); }
      };
      range.addEventListener("input", onInput(range, number));
      number.addEventListener("input", onInput(number, range));
      number.addEventListener("change", () => {
        let v = parseInt(number.value, 10);
        const lo = Number(number.getAttribute("min")), hi = Number(number.getAttribute("max"));
        if (!Number.isFinite(v)) v = state.budget;
        v = Math.min(hi, Math.max(lo, v));
        if (String(v) !== number.value) number.value = String(v);
        range.value = String(v);
        state.budget = v;
      });
      area.append(h("div", { class: "settings-item budget-item", "data-test-id": "user-setting-budget-animation-wrapper" },
        h("div", { class: "budget-slider", "data-test-slider": "" }, range, number)));
    }

    thinkingConfig() {
      const { family, state } = this;
      if (family === "level4" || family === "level2") return [1, null, state.level];
      if (family === "budgetOptional" && !state.thinkingOn) return [0, 0, null];
      if (family === "budgetAlways" || family === "budgetOptional") {
        return [1, state.manualBudget ? state.budget : null, null];
      }
      return null;
    }

    // -- tools group --

    renderTools() {
      this.toolsHeader.classList.toggle("expanded", this.toolsOpen);
      this.toolsHeader.querySelector("button").setAttribute("aria-expanded", this.toolsOpen ? "true" : "false");
      const body = this.toolsBody;
      body.replaceChildren();
      this.toggles = {};
      if (!this.toolsOpen) return;
      const { state } = this;

      const structured = slideToggle({
        ariaLabel: "Structured output", checked: state.structured,
        onChange: (on) => { state.structured = on; this.syncTools(); },
      });
      this.schemaButton = h("button", {
        class: "edit-schema-button ms-button-borderless", type: "button", "aria-label": "Edit JSON schema", text: "Edit",
      });
      this.schemaButton.addEventListener("click", () => this.openSchemaDialog());
      body.append(h("div", { class: "settings-item tool-item", "data-test-id": "structuredOutputTooltip" },
        h("span", { class: "item-title", text: "Structured output" }), structured.el, this.schemaButton));

      const fc = slideToggle({
        ariaLabel: "Function calling", checked: state.functionCalling, toggleClass: "function-calling-toggle",
        onChange: (on) => {
          state.functionCalling = on;
          if (on) { state.search = false; state.urlContext = false; }
          this.syncTools();
        },
      });
      this.declarationsButton = h("button", {
        class: "edit-function-declarations-button ms-button-borderless", type: "button",
        "aria-label": "Edit function declarations", text: "Edit",
      });
      this.declarationsButton.addEventListener("click", () => this.openDeclarationsDialog());
      body.append(h("div", { class: "settings-item tool-item", "data-test-id": "functionCallingTooltip" },
        h("span", { class: "item-title", text: "Function calling" }), fc.el, this.declarationsButton));

      let search = null;
      if (supportsSearch(this.model.id)) {
        search = slideToggle({
          ariaLabel: "Grounding with Google Search", checked: state.search,
          onChange: (on) => {
            state.search = on;
            if (on && this.options.onSearchEnabled) this.options.onSearchEnabled();
          },
        });
        body.append(h("div", { class: "settings-item tool-item", "data-test-id": "searchAsAToolTooltip" },
          h("span", { class: "item-title", text: "Grounding with Google Search" }), search.el));
      }

      const url = slideToggle({
        ariaLabel: "Browse the url context", checked: state.urlContext,
        onChange: (on) => { state.urlContext = on; },
      });
      body.append(h("div", { class: "settings-item tool-item", "data-test-id": "urlContextTooltip" },
        h("span", { class: "item-title", text: "URL context" }), url.el));

      this.toggles = { structured, fc, search, url };
      this.syncTools();
    }

    // Reflect state into the tool toggles (after FC changes, New chat resets, dialogs).
    syncTools() {
      const { state, toggles } = this;
      if (!toggles.fc) return;
      toggles.structured.set(state.structured);
      setDisabled(this.schemaButton, !state.structured);
      toggles.fc.set(state.functionCalling);
      setDisabled(this.declarationsButton, !state.functionCalling);
      if (toggles.search) {
        toggles.search.set(state.search);
        toggles.search.setDisabled(state.functionCalling);
      }
      toggles.url.set(state.urlContext);
      toggles.url.setDisabled(state.functionCalling);
    }

    resetFunctionCalling() {
      this.state.functionCalling = false;
      this.state.declarations = [];
      this.syncTools();
    }

    openDeclarationsDialog() {
      const { state } = this;
      const reset = h("button", {
        class: "ms-button-borderless", type: "button", "aria-label": "Reset the function declarations", text: "Reset",
      });
      const { textarea, error } = jsonEditorDialog({
        title: "Function declarations",
        dialogClass: "function-declarations-dialog",
        editorLabel: "Function declarations JSON",
        placeholder: "Enter function declarations as a JSON array. Press Tab to indent.",
        text: state.declarations.length ? JSON.stringify(state.declarations, null, 2) : "",
        saveLabel: "Save the current function declarations",
        parse: parseDeclarations,
        apply: (declarations) => { state.declarations = declarations; },
        wrapEditor: declarationTabs,
        extraActions: [reset],
      });
      reset.addEventListener("click", () => {
        textarea.value = "";
        state.declarations = [];
        error.textContent = "";
      });
    }

    openSchemaDialog() {
      const { state } = this;
      jsonEditorDialog({
        title: "Structured output",
        dialogClass: "structured-output-dialog",
        editorLabel: "JSON schema",
        placeholder: "Enter a JSON schema object. Press Tab to indent.",
        text: state.schema ? JSON.stringify(JSON.parse(state.schema), null, 2) : "",
        saveLabel: "Save the JSON schema",
        parse: (text) => JSON.stringify(parseSchema(text)),
        apply: (schema) => { state.schema = schema; },
      });
    }

    // -- advanced group --

    renderAdvanced() {
      this.advancedHeader.classList.toggle("expanded", this.advancedOpen);
      this.advancedHeader.querySelector("button").setAttribute("aria-expanded", this.advancedOpen ? "true" : "false");
      const body = this.advancedBody;
      body.replaceChildren();
      if (!this.advancedOpen) return;
      const { state, model } = this;

      const chips = h("mat-chip-set", { class: "mdc-evolution-chip-set stop-sequences-chips", role: "list" });
      const renderChips = () => {
        chips.replaceChildren(...state.stops.map((seq) => {
          const remove = h("button", {
            class: "remove-button mat-mdc-chip-remove", type: "button", "aria-label": `Remove ${seq}`,
          }, icon("close"));
          remove.addEventListener("click", () => {
            state.stops = state.stops.filter((s) => s !== seq);
            renderChips();
          });
          return h("mat-chip", { class: "mat-mdc-chip mdc-evolution-chip", role: "listitem" },
            h("span", { class: "chip-text", text: seq }), remove);
        }));
      };
      renderChips();
      const stopInput = h("input", {
        type: "text", class: "stop-sequence-input", "aria-label": "Add stop token", placeholder: "Add stop...",
      });
      stopInput.addEventListener("keydown", (event) => {
        if (event.key !== "Enter") return;
        event.preventDefault();
        const seq = stopInput.value.trim();
        stopInput.value = "";
        if (seq && !state.stops.includes(seq)) {
          state.stops.push(seq);
          renderChips();
        }
      });
      body.append(h("div", { class: "settings-item stop-sequences-item" },
        h("div", { class: "item-about" }, h("span", { class: "item-title", text: "Stop sequences" })),
        h("mat-form-field", { class: "mat-mdc-form-field" }, stopInput), chips));

      // dom_variant "moved_advanced_settings": the group lives elsewhere and the field was relabelled.
      const moved = this.options.variant === "moved_advanced_settings";
      const maxTokens = h("input", {
        type: "number", class: "max-tokens-input", min: 1, max: model.outputLimit, step: 1,
        value: String(state.maxOutputTokens), "aria-label": moved ? "Output token limit" : "Maximum output tokens",
      });
      maxTokens.addEventListener("input", () => {
        const v = parseInt(maxTokens.value, 10);
        if (Number.isFinite(v)) state.maxOutputTokens = v;
      });
      maxTokens.addEventListener("change", () => {
        let v = parseInt(maxTokens.value, 10);
        if (!Number.isFinite(v)) v = state.maxOutputTokens;
        v = Math.min(model.outputLimit, Math.max(1, v));
        if (String(v) !== maxTokens.value) maxTokens.value = String(v);
        state.maxOutputTokens = v;
      });
      body.append(h("div", { class: "settings-item max-tokens-item" },
        h("div", { class: "item-about" }, h("span", { class: "item-title", text: "Output length" })), maxTokens));

      if (this.options.variant === "no_top_p") return;   // dom_variant "no_top_p": the control is gone
      body.append(sliderPair({
        label: "Top P", min: 0, max: 1, step: 0.05, value: state.topP,
        onValue: (v) => { state.topP = v; },
      }));
    }

    // -- request pieces (docs/aistudio.md §4.3 + the backend contract) --

    generationConfig() {
      const { state } = this;
      return [
        null,
        state.stops.length ? state.stops.slice() : null,
        null,
        state.maxOutputTokens,
        state.temperature,
        state.topP,
        null, null, null, null, null, null,
        state.structured ? "application/json" : null,
        state.structured && state.schema ? state.schema : null,
        null,
        this.thinkingConfig(),
      ];
    }

    tools() {
      const { state } = this;
      const tools = [];
      if (state.functionCalling && state.declarations.length) {
        tools.push([state.declarations.map((d) => [
          d.name,
          d.description === undefined ? null : d.description,
          d.parameters === undefined ? null : JSON.stringify(d.parameters),
        ])]);
      }
      if (state.search && !state.functionCalling && supportsSearch(this.model.id)) tools.push([null, null, null, []]);
      if (state.urlContext && !state.functionCalling) tools.push([null, null, null, null, null, null, null, []]);
      return tools.length ? tools : null;
    }
  }

  global.SimSettings = { Prefs, RunSettings, thinkingFamily, parseDeclarations };
})(window);
