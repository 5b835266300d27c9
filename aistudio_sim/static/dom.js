// DOM helpers for the AI Studio simulator page: element builder, the CDK-like overlay container
// (menus, listboxes, dialogs, backdrops; docs/aistudio.md §2.0/§2.10), Material-like slide toggles and dialogs.
"use strict";

(function (global) {
  // h("div", {class: "a b", text: "x", onclick: fn, disabled: true, "aria-label": "y"}, child, ...)
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "text") el.textContent = value;
      else if (key === "value") el.value = value;
      else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  // Material Symbols ligature names stay as the text (as on the real page); no icon font is available
  // offline, so CSS shows the glyph from data-glyph instead.
  const GLYPHS = {
    add_circle: "\u2295", add_comment: "+", check: "\u2713", close: "\u2715", draft: "\u25A4", edit: "\u270E",
    error: "!", expand_more: "\u25BE", function: "\u0192", more_vert: "\u22EE", refresh: "\u21BB",
    reset_settings: "\u21BA", thumb_down: "\u25BD", thumb_up: "\u25B3",
  };

  function icon(name, attrs) {
    return h("span", Object.assign({
      class: "material-symbols-outlined", "aria-hidden": "true", "data-glyph": GLYPHS[name] || "", text: name,
    }, attrs || {}));
  }

  function setIcon(span, name) {
    span.textContent = name;
    span.setAttribute("data-glyph", GLYPHS[name] || "");
  }

  function setDisabled(el, disabled) {
    el.disabled = disabled;
    if (disabled) el.setAttribute("aria-disabled", "true");
    else el.removeAttribute("aria-disabled");
  }

  function uuid() {
    return crypto.randomUUID ? crypto.randomUUID() :
      "xxxxxxxx-xxxx-4xxx-8xxx-xxxxxxxxxxxx".replace(/x/g, () => (Math.random() * 16 | 0).toString(16));
  }

  // ---- overlay container ----

  const stack = [];

  function container() {
    return document.querySelector("body > div.cdk-overlay-container");
  }

  // Opens one overlay entry. options:
  //   backdrop: "transparent" | "dark" | null
  //   content:  element put in a div.cdk-overlay-pane (omit for a bare backdrop)
  //   anchor:   element to position the pane under (menus, listboxes); without it the pane is centred
  //   paneClass: extra classes for the pane
  //   onClose:  called once when the entry closes (Escape, backdrop click, or close())
  // Returns {close, pane}.
  function openOverlay({ backdrop = null, content = null, anchor = null, paneClass = "", onClose = null }) {
    const root = container();
    const entry = { nodes: [], closed: false, pane: null };
    entry.close = () => {
      if (entry.closed) return;
      entry.closed = true;
      for (const n of entry.nodes) n.remove();
      const at = stack.indexOf(entry);
      if (at >= 0) stack.splice(at, 1);
      if (onClose) onClose();
    };
    if (backdrop) {
      const kind = backdrop === "dark" ? "cdk-overlay-dark-backdrop" : "cdk-overlay-transparent-backdrop";
      const bd = h("div", { class: `cdk-overlay-backdrop ${kind} cdk-overlay-backdrop-showing` });
      bd.addEventListener("click", () => entry.close());
      root.append(bd);
      entry.nodes.push(bd);
    }
    if (content) {
      const pane = h("div", { class: `cdk-overlay-pane ${paneClass}`.trim() }, content);
      const wrapper = h("div", {
        class: anchor ? "cdk-overlay-connected-position-bounding-box" : "cdk-global-overlay-wrapper",
      }, pane);
      root.append(wrapper);
      entry.nodes.push(wrapper);
      entry.pane = pane;
      if (anchor) positionPane(pane, anchor);
    }
    stack.push(entry);
    return entry;
  }

  function positionPane(pane, anchor) {
    const rect = anchor.getBoundingClientRect();
    pane.style.position = "absolute";
    pane.style.minWidth = `${Math.max(rect.width, 112)}px`;
    const paneRect = pane.getBoundingClientRect();
    let top = rect.bottom + 4;
    if (top + paneRect.height > window.innerHeight - 8) top = Math.max(8, rect.top - paneRect.height - 4);
    let left = rect.left;
    if (left + paneRect.width > window.innerWidth - 8) left = Math.max(8, window.innerWidth - paneRect.width - 8);
    pane.style.top = `${top}px`;
    pane.style.left = `${left}px`;
  }

  // Closes the newest entry that is still in the DOM (the client may delete overlay nodes itself).
  function closeTopOverlay() {
    while (stack.length) {
      const top = stack[stack.length - 1];
      const attached = top.nodes.some((n) => n.isConnected);
      top.close();
      if (attached) return true;
    }
    return false;
  }

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && closeTopOverlay()) {
      event.preventDefault();
      event.stopPropagation();
    }
  }, true);

  // A menu: div.mat-mdc-menu-panel[role=menu] > div.mat-mdc-menu-content > button.mat-mdc-menu-item...
  // items: [{label, text, ariaLabel, disabled, onClick, attrs, extra(element)}]; keepOpen items do not close.
  function openMenu(anchor, items, { onClose = null, menuClass = "" } = {}) {
    const buttons = items.map((item) => {
      const button = h("button", Object.assign({
        class: "mat-mdc-menu-item mat-focus-indicator",
        role: "menuitem",
        type: "button",
        "aria-label": item.ariaLabel || null,
        disabled: item.disabled || null,
        "aria-disabled": item.disabled ? "true" : null,
      }, item.attrs || {}), h("span", { class: "mat-mdc-menu-item-text", text: item.text }), item.extra || null);
      button.addEventListener("click", (event) => {
        if (button.disabled) return;
        if (item.onClick) item.onClick(event, button);
        if (!item.keepOpen && !event.defaultPrevented) entry.close();
      });
      return button;
    });
    const panel = h("div", { class: `mat-mdc-menu-panel mat-mdc-elevation-specific ${menuClass}`.trim(), role: "menu", tabindex: "-1" },
      h("div", { class: "mat-mdc-menu-content" }, buttons));
    const entry = openOverlay({ backdrop: "transparent", content: panel, anchor, onClose });
    entry.panel = panel;
    return entry;
  }

  // A Material dialog: mat-dialog-container.mat-mdc-dialog-container > div.mdc-dialog__container >
  // div.mat-mdc-dialog-inner-container.mdc-dialog__surface > (content...).
  function openDialog(contentNodes, { onClose = null, dialogClass = "", label = null } = {}) {
    const surface = h("div", { class: "mat-mdc-dialog-inner-container mdc-dialog__surface" }, contentNodes);
    const dialog = h("mat-dialog-container", {
      class: `mat-mdc-dialog-container mdc-dialog mdc-dialog--open ${dialogClass}`.trim(),
      role: "dialog",
      "aria-modal": "true",
      "aria-label": label,
      tabindex: "-1",
    }, h("div", { class: "mdc-dialog__container" }, surface));
    const entry = openOverlay({ backdrop: "dark", content: dialog, paneClass: "mat-mdc-dialog-panel", onClose });
    entry.dialog = dialog;
    return entry;
  }

  // A Material slide toggle:
  //   mat-slide-toggle.mat-mdc-slide-toggle > div.mdc-form-field >
  //     button[role=switch].mdc-switch.mdc-switch--(un)selected[aria-checked] + label.mdc-label
  // aria-checked and the classes change synchronously in the click handler (docs/aistudio.md §2.0).
  function slideToggle({ ariaLabel, labelText = "", checked = false, disabled = false, toggleClass = "",
                         dataTestToggle = null, onChange = null }) {
    const id = `mat-mdc-slide-toggle-${uuid().slice(0, 8)}`;
    const button = h("button", {
      id: `${id}-button`,
      class: "mdc-switch",
      type: "button",
      role: "switch",
      "aria-label": ariaLabel,
    },
    h("span", { class: "mdc-switch__track" }),
    h("span", { class: "mdc-switch__handle-track" }, h("span", { class: "mdc-switch__handle" })));
    const label = h("label", { class: "mdc-label", for: `${id}-button`, text: labelText });
    const el = h("mat-slide-toggle", {
      class: `mat-mdc-slide-toggle ${toggleClass}`.trim(),
      id,
      "data-test-toggle": dataTestToggle,
    }, h("div", { class: "mdc-form-field" }, button, labelText ? label : null));
    const api = {
      el,
      button,
      get checked() { return button.getAttribute("aria-checked") === "true"; },
      set(value) {
        button.setAttribute("aria-checked", value ? "true" : "false");
        button.classList.toggle("mdc-switch--selected", !!value);
        button.classList.toggle("mdc-switch--unselected", !value);
        button.classList.toggle("mdc-switch--checked", !!value);
        el.classList.toggle("mat-mdc-slide-toggle-checked", !!value);
      },
      setDisabled(value) {
        setDisabled(button, !!value);
        button.classList.toggle("mdc-switch--disabled", !!value);
        button.classList.toggle("mdc-switch--enabled", !value);
        el.classList.toggle("mat-mdc-slide-toggle-disabled", !!value);
      },
    };
    api.set(checked);
    api.setDisabled(disabled);
    button.addEventListener("click", () => {
      if (button.disabled) return;
      const next = !api.checked;
      api.set(next);
      if (onChange) onChange(next);
    });
    return api;
  }

  // A Material select with an overlay listbox (docs/aistudio.md §2.6 thinking level):
  //   mat-select[role=combobox][aria-label] > div.mat-mdc-select-trigger > div.mat-mdc-select-value >
  //     span.mat-mdc-select-value-text > span.mat-mdc-select-min-line
  //   overlay: div[role=listbox][aria-label] > mat-option[role=option]...
  function matSelect({ ariaLabel, options, value, onChange = null, selectClass = "" }) {
    const minLine = h("span", { class: "mat-mdc-select-min-line" });
    const select = h("mat-select", {
      class: `mat-mdc-select ${selectClass}`.trim(),
      role: "combobox",
      "aria-label": ariaLabel,
      "aria-haspopup": "listbox",
      "aria-expanded": "false",
      tabindex: "0",
    }, h("div", { class: "mat-mdc-select-trigger" },
      h("div", { class: "mat-mdc-select-value" }, h("span", { class: "mat-mdc-select-value-text" }, minLine)),
      h("div", { class: "mat-mdc-select-arrow-wrapper" }, h("div", { class: "mat-mdc-select-arrow" }))));
    let current = value;
    let open = null;
    const api = {
      el: select,
      get value() { return current; },
      set(v) {
        current = v;
        const opt = options.find((o) => o.value === v);
        minLine.textContent = opt ? opt.label : String(v);
      },
    };
    api.set(value);
    const show = () => {
      if (open) return;
      const list = h("div", {
        class: "mat-mdc-select-panel mdc-menu-surface mdc-menu-surface--open",
        role: "listbox",
        "aria-label": ariaLabel,
        tabindex: "-1",
      }, options.map((opt) => {
        const selected = opt.value === current;
        const option = h("mat-option", {
          class: `mat-mdc-option mdc-list-item${selected ? " mdc-list-item--selected mat-mdc-option-active" : ""}`,
          role: "option",
          "aria-selected": selected ? "true" : "false",
          tabindex: "0",
        }, h("span", { class: "mdc-list-item__primary-text", text: opt.label }));
        option.addEventListener("click", () => {
          api.set(opt.value);
          if (open) open.close();
          if (onChange) onChange(opt.value);
        });
        return option;
      }));
      select.setAttribute("aria-expanded", "true");
      open = openOverlay({
        backdrop: "transparent",
        content: list,
        anchor: select,
        onClose: () => { open = null; select.setAttribute("aria-expanded", "false"); },
      });
    };
    select.addEventListener("click", show);
    select.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " " || event.key === "ArrowDown") { event.preventDefault(); show(); }
    });
    return api;
  }

  global.SimDom = {
    h, icon, setIcon, setDisabled, uuid, openOverlay, openMenu, openDialog,
    slideToggle, matSelect, container,
  };
})(window);
