// AI Studio simulator page: boot, prompt box, run state machine, streaming render, chat turns, header
// menu, New chat, uploads, errors and injected overlays. docs/aistudio.md §1.3, §2, §9, §10.
"use strict";

(function () {
  const { h, icon, setIcon, setDisabled, uuid, openOverlay, openMenu, openDialog, container } = window.SimDom;
  const { StreamScanner, classifyEvent, parseStatus, renderMarkdown } = window.SimWire;
  const { Prefs, RunSettings } = window.SimSettings;

  const STUDIO = "https://aistudio.google.com";
  const RPC = "https://alkalimakersuite-pa.clients6.google.com/$rpc/google.internal.alkali.applications.makersuite.v1.MakerSuiteService";
  const SIGN_IN = "https://accounts.google.com/v3/signin/identifier";
  const QUOTA_TEXT = "You have exceeded your quota: user has exceeded quota. Please try again later.";
  const INTERNAL_ERROR = "An internal error has occurred.";
  const FALLBACK_MODEL = "gemini-2.5-pro";
  const RPC_HEADERS = {
    "Content-Type": "application/json+protobuf",
    "X-User-Agent": "grpc-web-javascript/0.1",
    "X-Goog-Api-Key": "AIzaSyD-simulator-fake-web-key-0000000000",
    "X-Goog-AuthUser": "0",
  };

  const app = {
    config: {},
    // The Run button's name (dom_variant "renamed_run_button" renames it).
    runName: "Run",
    models: [],
    model: null,
    settings: null,
    turns: [],          // {el, role, raw, container, content, answerChunk, thought, editButton, editing}
    attachments: [],    // {name, mime, base64, size}
    generation: null,   // {controller, turn, stopped, ended, timer, started}
    temporary: false,
    promptId: null,
    moreMenu: null,
  };

  // ---- elements from index.html ----
  const $ = (sel) => document.querySelector(sel);
  const el = {};

  function bindElements() {
    Object.assign(el, {
      app: $("ms-app"),
      incognitoSlot: $(".incognito-slot"),
      moreButton: $('button[aria-label="View more actions"]'),
      newChat: $('button[data-test-clear="outside"]'),
      toast: $("ms-toast"),
      scroller: $("ms-autoscroll-container"),
      turnList: $("ms-autoscroll-container > div.chat-session-content"),
      calloutSlot: $(".callout-slot"),
      autosize: $("ms-prompt-box ms-autosize-textarea"),
      textarea: $("ms-prompt-box textarea.textarea"),
      attachments: $("section.attachment-wrapper"),
      addMedia: $('button[data-test-id="add-media-button"]'),
      run: $("ms-run-button > button[type=submit]"),
      runLabel: $("ms-run-button .run-button-label"),
      runSettings: $("ms-run-settings"),
      emptyState: $(".empty-chat-state"),
    });
  }

  // ---- small utilities ----

  function rpc(method, body, signal) {
    return fetch(`${RPC}/${method}`, {
      method: "POST",
      credentials: "include",
      headers: RPC_HEADERS,
      body: JSON.stringify(body),
      signal,
    });
  }

  function goToSignIn() {
    window.location.assign(`${SIGN_IN}?continue=${encodeURIComponent(window.location.href)}`);
  }

  function sendJsError(message) {
    const url = `${STUDIO}/_/MakerSuite/jserror?error=${encodeURIComponent(message)}`;
    fetch(url, { credentials: "include" }).catch(() => {});
  }

  function randomToken(length, alphabet) {
    const bytes = crypto.getRandomValues(new Uint8Array(length));
    return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
  }

  const ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

  function botguardToken() {
    return `!${randomToken(100, ID_ALPHABET)}`;
  }

  function scrollToBottom() {
    el.scroller.scrollTop = el.scroller.scrollHeight;
  }

  // A dialog with a title, one paragraph and buttons [{text, primary, onClick}]; every button closes it
  // (before running its onClick). Escape and a backdrop click close it too.
  function messageDialog({ title, text, buttons, dialogClass, onClose = null }) {
    const nodes = buttons.map((b) => h("button", {
      class: b.primary ? "ms-button-primary" : "ms-button-borderless", type: "button", text: b.text,
    }));
    const entry = openDialog([
      h("h2", { class: "mat-mdc-dialog-title", text: title }),
      h("mat-dialog-content", { class: "mat-mdc-dialog-content" }, h("p", { text })),
      h("mat-dialog-actions", { class: "mat-mdc-dialog-actions" }, nodes),
    ], { dialogClass, onClose });
    nodes.forEach((node, i) => node.addEventListener("click", () => {
      entry.close();
      if (buttons[i].onClick) buttons[i].onClick();
    }));
  }

  // ---- toast and callout (docs/aistudio.md §2.9) ----

  let toastTimer = null;

  function showToast(message, kind = "error") {
    clearTimeout(toastTimer);
    // The glyph only, no ligature text: readers take the toast's whole textContent as the message.
    const close = h("button", { class: "toast-close mat-mdc-icon-button", type: "button", "aria-label": "Dismiss" },
      icon("close", { text: "" }));
    close.addEventListener("click", hideToast);
    el.toast.replaceChildren(h("div", { class: `toast ${kind}`, role: "alert" },
      h("span", { class: "content-text", text: message }), close));
    toastTimer = setTimeout(hideToast, 20000);
  }

  function hideToast() {
    clearTimeout(toastTimer);
    el.toast.replaceChildren();
  }

  function showQuotaCallout() {
    el.calloutSlot.replaceChildren(h("ms-callout", { class: "error-callout", role: "alert" },
      icon("error"),
      h("div", { class: "message", text: QUOTA_TEXT })));
  }

  function clearCallout() {
    el.calloutSlot.replaceChildren();
  }

  // ---- prompt box (docs/aistudio.md §2.2, §2.3) ----

  function promptText() {
    return el.textarea.value;
  }

  // Not while a file is still being read: the request must carry every attached file.
  function canRun() {
    if (app.attachments.some((file) => file.pending)) return false;
    return promptText().trim() !== "" || app.attachments.length > 0;
  }

  function syncPromptBox() {
    const text = promptText();
    el.autosize.setAttribute("data-value", text === "" ? el.textarea.placeholder : text);
    el.autosize.classList.toggle("empty", text === "");
    syncRunButton();
    if (app.settings) app.settings.setTokenCount(Math.ceil(text.length / 4));
  }

  function syncRunButton() {
    const busy = !!app.generation;
    const run = el.run;
    if (busy) {
      run.setAttribute("aria-label", "Stop generating");
      el.runLabel.textContent = "Stop";
      run.classList.add("stoppable");
      setDisabled(run, false);
    } else {
      run.setAttribute("aria-label", app.runName);
      el.runLabel.textContent = app.runName;
      run.classList.remove("stoppable");
      setDisabled(run, !canRun());
    }
  }

  function setPromptText(text) {
    el.textarea.value = text;
    syncPromptBox();
  }

  // ---- attachments ----

  function readBase64(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => {
        const url = String(reader.result);
        resolve(url.slice(url.indexOf(",") + 1));
      };
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    });
  }

  // Chips appear at once; the run button stays disabled until every file has been read.
  function addFiles(fileList) {
    const files = Array.from(fileList || []);
    if (!files.length) return;
    const entries = files.map((file) => ({
      name: file.name, mime: file.type || "application/octet-stream", size: file.size, base64: null, pending: true,
    }));
    app.attachments.push(...entries);
    renderAttachments();
    afterUpload();
    files.forEach((file, i) => {
      const entry = entries[i];
      readBase64(file).then((base64) => {
        entry.base64 = base64;
        entry.pending = false;
      }, () => {
        app.attachments = app.attachments.filter((a) => a !== entry);
        showToast(`Failed to read ${entry.name}`);
      }).finally(renderAttachments);
    });
  }

  function renderAttachments() {
    el.attachments.replaceChildren(...app.attachments.map((file, index) => {
      const remove = h("button", {
        class: "remove-attachment mat-mdc-icon-button", type: "button", "aria-label": `Remove ${file.name}`,
      }, icon("close"));
      remove.addEventListener("click", () => {
        app.attachments.splice(index, 1);
        renderAttachments();
      });
      return h("ms-file-chunk", { class: `attachment-chip${file.pending ? " uploading" : ""}`, title: file.name },
        icon("draft"),
        h("span", { class: "file-name", text: file.name }), remove);
    }));
    el.attachments.classList.toggle("empty", app.attachments.length === 0);
    syncRunButton();
  }

  function openUploadMenu() {
    const input = h("input", { type: "file", multiple: true, class: "hidden-file-input", tabindex: "-1", "aria-hidden": "true" });
    let menu = null;
    input.addEventListener("click", (event) => event.stopPropagation());
    input.addEventListener("change", () => {
      const files = input.files;
      if (menu) menu.close();
      addFiles(files);
    });
    menu = openMenu(el.addMedia, [
      {
        text: "Upload File",
        ariaLabel: "Upload File",
        extra: input,
        keepOpen: true,
        onClick: (event) => {
          if (event.target === input) return;
          input.click();
        },
      },
      { text: "Record Audio", ariaLabel: "Record Audio", disabled: true },
      { text: "Camera", ariaLabel: "Camera", disabled: true },
    ], { menuClass: "upload-menu", onClose: () => el.addMedia.setAttribute("aria-expanded", "false") });
    el.addMedia.setAttribute("aria-expanded", "true");
  }

  function afterUpload() {
    const prefs = Prefs.read() || {};
    const injected = (app.config.inject_overlays || []).includes("post_upload_dialog");
    if (prefs.fileCopyrightAcknowledged === true && !injected) return;
    messageDialog({
      title: "Copyright acknowledgement",
      text: "You confirm that you have the necessary rights to upload this content.",
      dialogClass: "copyright-dialog",
      buttons: [{ text: "I agree", primary: true, onClick: () => Prefs.update({ fileCopyrightAcknowledged: true }) }],
    });
  }

  // ---- chat turns (docs/aistudio.md §2.4, §2.5, §3.7) ----

  function textChunk(raw, extraRootClass) {
    const root = h("ms-cmark-node", { class: `cmark-node${extraRootClass ? ` ${extraRootClass}` : ""}` });
    renderMarkdown(root, raw);
    const chunk = h("ms-prompt-chunk", { class: "text-chunk", id: uuid() }, h("ms-text-chunk", {}, root));
    chunk.cmarkRoot = root;
    return chunk;
  }

  function createTurn(role) {
    const actions = h("div", { class: "actions hover-or-edit" });
    const content = h("div", { class: "turn-content" });
    const containerEl = h("div", { class: `chat-turn-container ${role} render`, tabindex: "-1" },
      h("div", { class: "actions-container" }, actions),
      h("div", { class: `${role}-prompt-container` }, h("div", { class: "turn-role", text: role === "user" ? "User" : "Model" }), content));
    const turnEl = h("ms-chat-turn", { id: `turn-${uuid()}` }, containerEl);
    const turn = { el: turnEl, role, raw: "", container: containerEl, content, actions, answerChunk: null,
      thought: null, editButton: null, editing: false, footer: null };
    const rerun = h("button", {
      class: "mat-mdc-icon-button rerun-button", type: "button", name: "rerun-button", "aria-label": "Rerun this turn",
    }, icon("refresh"));
    rerun.addEventListener("click", () => rerunTurn(turn));
    const options = h("button", {
      class: "mat-mdc-icon-button turn-options-button", type: "button", "aria-label": "Open options",
      "aria-haspopup": "menu", "aria-expanded": "false",
    }, icon("more_vert"));
    options.addEventListener("click", () => openTurnMenu(turn, options));
    actions.append(rerun, h("ms-chat-turn-options", {}, h("div", {}, options)));
    if (role === "model") {
      turn.footer = h("div", { class: "turn-footer" },
        h("span", { class: "model-run-time-pill", text: "0.0s" }),
        h("button", { class: "mat-mdc-icon-button", type: "button", "aria-label": "Good response" },
          icon("thumb_up")),
        h("button", { class: "mat-mdc-icon-button", type: "button", "aria-label": "Bad response" },
          icon("thumb_down")));
      containerEl.append(turn.footer);
    }
    app.turns.push(turn);
    el.turnList.append(turnEl);
    syncChatState();
    return turn;
  }

  function addEditButton(turn) {
    if (turn.editButton) return;
    const button = h("button", {
      class: "mat-mdc-icon-button toggle-edit-button", type: "button", "aria-label": "Edit",
    }, icon("edit"));
    button.addEventListener("click", () => toggleEdit(turn));
    turn.actions.prepend(button);
    turn.editButton = button;
  }

  function renderAnswer(turn) {
    if (turn.editing) return;
    if (!turn.answerChunk) {
      if (turn.raw === "") return;
      turn.answerChunk = textChunk(turn.raw, turn.role === "user" ? "user-chunk" : "");
      const firstCall = turn.content.querySelector("ms-prompt-chunk.function-call-prompt-chunk");
      turn.content.insertBefore(turn.answerChunk, firstCall);
      return;
    }
    renderMarkdown(turn.answerChunk.cmarkRoot, turn.raw);
  }

  function toggleEdit(turn) {
    if (!turn.editing) {
      const textarea = h("textarea", { class: "edit-textarea", "aria-label": "Edit turn text", rows: "3" });
      textarea.value = turn.raw;
      const editor = h("ms-autosize-textarea", { class: "edit-mode", "data-value": turn.raw }, textarea);
      textarea.addEventListener("input", () => editor.setAttribute("data-value", textarea.value));
      if (turn.answerChunk) {
        turn.answerChunk.replaceWith(editor);
        turn.answerChunk = null;
      } else {
        const firstCall = turn.content.querySelector("ms-prompt-chunk.function-call-prompt-chunk");
        turn.content.insertBefore(editor, firstCall);
      }
      turn.editor = editor;
      turn.editing = true;
      turn.container.classList.add("editing");
      turn.editButton.setAttribute("aria-label", "Stop editing");
      setIcon(turn.editButton.firstChild, "check");
      textarea.focus();
    } else {
      turn.raw = turn.editor.querySelector("textarea").value;
      const editor = turn.editor;
      turn.editor = null;
      turn.editing = false;
      turn.container.classList.remove("editing");
      if (turn.raw !== "") {
        turn.answerChunk = textChunk(turn.raw, turn.role === "user" ? "user-chunk" : "");
        editor.replaceWith(turn.answerChunk);
      } else {
        editor.remove();
      }
      turn.editButton.setAttribute("aria-label", "Edit");
      setIcon(turn.editButton.firstChild, "edit");
    }
  }

  function openTurnMenu(turn, anchor) {
    anchor.setAttribute("aria-expanded", "true");
    openMenu(anchor, [
      { text: "Delete", ariaLabel: null, onClick: () => deleteTurn(turn) },
      { text: "Branch from here", disabled: true },
      { text: "Copy text", onClick: () => copy(turn.answerChunk ? turn.answerChunk.innerText : turn.raw) },
      { text: "Copy markdown", onClick: () => copy(turn.editing ? turn.editor.querySelector("textarea").value : turn.raw) },
    ], { menuClass: "turn-options-menu", onClose: () => anchor.setAttribute("aria-expanded", "false") });
  }

  function copy(text) {
    navigator.clipboard.writeText(text).catch(() => showToast("Could not copy to clipboard"));
  }

  function deleteTurn(turn) {
    if (app.generation && app.generation.turn === turn) return;
    turn.el.remove();
    app.turns = app.turns.filter((t) => t !== turn);
    syncChatState();
  }

  function thoughtChunk() {
    const icon = h("img", {
      class: "thinking-progress-icon in-progress", alt: "", "aria-hidden": "true",
      src: "data:image/svg+xml;utf8," + encodeURIComponent(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><circle cx="12" cy="12" r="9" fill="none" stroke="#8ab4f8" stroke-width="3" stroke-dasharray="40 20"/></svg>'),
    });
    const title = h("span", { class: "thought-title", text: "Thinking" });
    const root = h("ms-cmark-node", { class: "cmark-node" });
    const header = h("mat-expansion-panel-header", {
      class: "mat-expansion-panel-header mat-expansion-toggle-indicator-after", role: "button",
      "aria-expanded": "false", tabindex: "0",
    }, h("span", { class: "mat-content" }, h("mat-panel-title", { class: "mat-expansion-panel-header-title header" }, icon, title)),
    h("span", { class: "mat-expansion-indicator", "aria-hidden": "true" }));
    const body = h("div", { class: "mat-expansion-panel-content", role: "region" },
      h("div", { class: "mat-expansion-panel-body" }, h("ms-text-chunk", {}, root)));
    const panel = h("mat-expansion-panel", { class: "mat-expansion-panel thought-panel" }, header, body);
    header.addEventListener("click", () => {
      const open = !panel.classList.contains("mat-expanded");
      panel.classList.toggle("mat-expanded", open);
      header.setAttribute("aria-expanded", open ? "true" : "false");
    });
    const chunk = h("ms-prompt-chunk", { class: "text-chunk thought-prompt-chunk", id: uuid() }, h("ms-thought-chunk", {}, panel));
    return { chunk, raw: "", root, icon, title };
  }

  function finishThoughts(turn) {
    const thought = turn.thought;
    if (!thought || !thought.icon.classList.contains("in-progress")) return;
    thought.icon.classList.remove("in-progress");
    thought.title.textContent = "Thoughts";
  }

  function functionCallChunk(call) {
    const panel = h("mat-expansion-panel", { class: "mat-expansion-panel mat-expanded function-call-panel" },
      h("mat-expansion-panel-header", {
        class: "mat-expansion-panel-header", role: "button", "aria-expanded": "true", tabindex: "0",
      }, h("span", { class: "mat-content" }, h("mat-panel-title", { class: "mat-expansion-panel-header-title" },
        icon("function"),
        h("span", { text: call.name })))),
      h("div", { class: "mat-expansion-panel-content", role: "region" },
        h("div", { class: "mat-expansion-panel-body" },
          h("pre", {}, h("code", { class: "language-json", text: JSON.stringify(call.args, null, 2) })))));
    return h("ms-prompt-chunk", { class: "function-call-prompt-chunk", id: uuid() },
      h("ms-function-call-chunk", {}, h("ms-code-block", { icon: "function" }, panel)));
  }

  function applyEvent(turn, event) {
    const parts = classifyEvent(event);
    if (parts.thoughts.length) {
      if (!turn.thought) {
        turn.thought = thoughtChunk();
        turn.content.prepend(turn.thought.chunk);
      }
      turn.thought.raw += parts.thoughts.join("");
      renderMarkdown(turn.thought.root, turn.thought.raw);
    }
    const answer = parts.answers.join("");
    if (answer !== "") {
      finishThoughts(turn);
      turn.raw += answer;
      renderAnswer(turn);
    }
    for (const call of parts.calls) {
      finishThoughts(turn);
      turn.content.append(functionCallChunk(call));
    }
    if (parts.finishReason !== null) turn.el.setAttribute("data-finish-reason", String(parts.finishReason));
    if (parts.usage && app.settings) {
      const total = parts.usage[2];
      if (typeof total === "number") app.settings.setTokenCount(total);
    }
    scrollToBottom();
  }

  function syncChatState() {
    const hasTurns = app.turns.length > 0;
    setDisabled(el.newChat, !hasTurns);
    el.emptyState.hidden = hasTurns;
  }

  // ---- generation ----

  function buildRequest(text, files) {
    const parts = [[null, text]];
    for (const file of files) parts.push([null, null, [file.mime, file.base64, file.name]]);
    return [
      `models/${app.model.id}`,
      [[parts, "user"]],
      null,
      app.settings.generationConfig(),
      botguardToken(),
      app.settings.tools(),
    ];
  }

  function startTimer(gen) {
    const pill = gen.turn.footer.querySelector(".model-run-time-pill");
    const tick = () => { pill.textContent = `${((performance.now() - gen.started) / 1000).toFixed(1)}s`; };
    tick();
    gen.timer = setInterval(tick, 100);
    gen.tick = tick;
  }

  function endGeneration(gen) {
    if (gen.ended) return;
    gen.ended = true;
    clearInterval(gen.timer);
    gen.tick();
    finishThoughts(gen.turn);
    addEditButton(gen.turn);
    if (app.generation === gen) app.generation = null;
    syncRunButton();
    scrollToBottom();
    injectOverlays("after-run");
  }

  function failGeneration(gen, { status = null, code = null, message }) {
    if (gen.ended) return;
    endGeneration(gen);
    if (status === 401 || code === 16) {
      goToSignIn();
      return;
    }
    showToast(`Failed to generate content: ${message}`);
    sendJsError(`Failed to generate content: ${message} (MakerSuiteService/GenerateContent)`);
    if ((status === 429 || code === 8) && !/too many requests/i.test(message)) showQuotaCallout();
  }

  function internalError(gen) {
    if (gen.ended) return;
    endGeneration(gen);
    showToast(INTERNAL_ERROR);
    sendJsError(`Failed to generate content: ${INTERNAL_ERROR} (MakerSuiteService/GenerateContent)`);
  }

  async function readErrorBody(response) {
    let text = "";
    try { text = await response.text(); } catch (_) { text = ""; }
    let status = null;
    try { status = parseStatus(JSON.parse(text)); } catch (_) { status = null; }
    return {
      code: status ? status.code : null,
      message: status && status.message ? status.message : `${response.status} ${response.statusText}`.trim(),
    };
  }

  async function generate(gen, body) {
    let response;
    try {
      response = await rpc("GenerateContent", body, gen.controller.signal);
    } catch (_) {
      if (!gen.stopped) internalError(gen);
      return;
    }
    if (gen.stopped) return;
    if (!response.ok) {
      const { code, message } = await readErrorBody(response);
      failGeneration(gen, { status: response.status, code, message });
      return;
    }
    const reader = response.body.getReader();
    const scanner = new StreamScanner();
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (_) {
        if (!gen.stopped) internalError(gen);
        return;
      }
      if (gen.stopped || gen.ended) return;
      if (chunk.done) break;
      let items;
      try {
        items = scanner.feed(chunk.value);
      } catch (_) {
        internalError(gen);
        return;
      }
      for (const item of items) {
        if (item.kind === "event") {
          applyEvent(gen.turn, item.value);
        } else {
          const status = parseStatus(item.value) || { code: null, message: INTERNAL_ERROR };
          failGeneration(gen, { code: status.code, message: status.message });
          reader.cancel().catch(() => {});
          return;
        }
      }
      if (scanner.done) break;
    }
    if (!scanner.done) {
      internalError(gen);
      return;
    }
    endGeneration(gen);
  }

  function startGeneration(text, files, userTurn) {
    clearCallout();
    hideToast();
    if (!userTurn) {
      userTurn = createTurn("user");
      userTurn.raw = text;
      renderAnswer(userTurn);
      if (files.length) {
        userTurn.content.append(h("div", { class: "turn-attachments" },
          files.map((f) => h("ms-file-chunk", { class: "attachment-chip", text: f.name }))));
      }
      addEditButton(userTurn);
    }
    const turn = createTurn("model");
    const gen = { controller: new AbortController(), turn, stopped: false, ended: false, started: performance.now() };
    app.generation = gen;
    syncRunButton();
    startTimer(gen);
    scrollToBottom();
    if (!app.temporary && !app.promptId) savePrompt(text);
    generate(gen, buildRequest(text, files));
  }

  function run() {
    if (app.generation) {
      stop();
      return;
    }
    if (!canRun()) return;
    // dom_variant "first_use_dialog": nothing runs until the onboarding dialog is accepted.
    if (document.querySelector(".onboarding-scrim")) return;
    const text = promptText();
    const files = app.attachments.slice();
    app.attachments = [];
    renderAttachments();
    setPromptText("");
    startGeneration(text, files, null);
  }

  function stop() {
    const gen = app.generation;
    if (!gen) return;
    gen.stopped = true;
    gen.controller.abort();
    endGeneration(gen);
  }

  function rerunTurn(turn) {
    if (app.generation) return;
    const index = app.turns.indexOf(turn);
    const userIndex = turn.role === "user" ? index : index - 1;
    const userTurn = app.turns[userIndex];
    if (!userTurn || userTurn.role !== "user") return;
    for (const later of app.turns.slice(userIndex + 1)) later.el.remove();
    app.turns = app.turns.slice(0, userIndex + 1);
    startGeneration(userTurn.raw, [], userTurn);
  }

  // ---- autosave (docs/aistudio.md §9.1) ----

  function savePrompt(text) {
    const id = `1${randomToken(32, ID_ALPHABET)}`;
    app.promptId = id;
    history.pushState({ promptId: id }, "", `/prompts/${id}`);
    const title = text.trim().split("\n")[0].slice(0, 80) || "Untitled prompt";
    rpc("CreatePrompt", [[`prompts/${id}`, null, null, [title]]]).catch(() => {});
    firstUseDialog("hasShownAutosaveOnDialog", "Autosave is on",
      "Your prompts are saved to Google Drive automatically.");
  }

  // ---- header: more actions menu, temporary chat, New chat (docs/aistudio.md §2.1, §2.8) ----

  function renderIncognito() {
    el.incognitoSlot.replaceChildren();
    if (!app.temporary) return;
    el.incognitoSlot.append(h("ms-incognito-mode-indicator", {},
      icon("check", { "data-test-incognito-checkmark": "" }),
      h("span", { class: "main-text", "data-test-id": "main-text", text: "Temporary chat" })));
  }

  function setTemporary(on) {
    app.temporary = on;
    renderIncognito();
    const toggle = document.querySelector("button[data-test-incognito-toggle]");
    if (toggle) syncIncognitoItem(toggle);
  }

  function syncIncognitoItem(button) {
    button.setAttribute("aria-pressed", app.temporary ? "true" : "false");
    button.classList.toggle("ms-button-active", app.temporary);
    const slot = button.querySelector(".checkmark-slot");
    slot.replaceChildren();
    if (app.temporary) {
      slot.append(icon("check", { "data-test-incognito-checkmark": "" }));
    }
  }

  function openMoreMenu() {
    if (app.moreMenu) return;
    el.moreButton.setAttribute("aria-expanded", "true");
    const menu = openMenu(el.moreButton, [
      {
        text: "Temporary chat",
        ariaLabel: "Temporary chat toggle",
        keepOpen: true,
        attrs: { "data-test-incognito-toggle": "" },
        extra: h("span", { class: "checkmark-slot" }),
        onClick: () => setTemporary(!app.temporary),
      },
      { text: "Get code", ariaLabel: "Get code", disabled: true },
      { text: "Share prompt", ariaLabel: "Share prompt", disabled: true },
    ], {
      menuClass: "more-actions-menu",
      onClose: () => { app.moreMenu = null; el.moreButton.setAttribute("aria-expanded", "false"); },
    });
    syncIncognitoItem(menu.panel.querySelector("button[data-test-incognito-toggle]"));
    app.moreMenu = menu;
  }

  function requestNewChat() {
    if (!app.turns.length) return;
    messageDialog({
      title: "Discard unsaved changes?",
      text: "This chat will be cleared. Run settings are kept.",
      dialogClass: "discard-dialog",
      buttons: [{ text: "Cancel" }, { text: "Discard and continue", primary: true, onClick: newChat }],
    });
  }

  function newChat() {
    if (app.generation) stop();
    for (const turn of app.turns) turn.el.remove();
    app.turns = [];
    app.attachments = [];
    renderAttachments();
    clearCallout();
    app.promptId = null;
    setTemporary(false);
    if (app.config.new_chat_resets_function_calling) app.settings.resetFunctionCalling();
    if (window.location.pathname !== "/prompts/new_chat") history.pushState({}, "", "/prompts/new_chat");
    syncChatState();
    syncRunButton();
  }

  // ---- first-use dialogs and injected overlays (docs/aistudio.md §2.10, §9.4, §9.5) ----

  function firstUseDialog(prefKey, title, text, force = false) {
    if (!force && (!app.config.first_use_dialogs || (Prefs.read() || {})[prefKey] === true)) return;
    messageDialog({
      title, text, dialogClass: "first-use-dialog",
      buttons: [{ text: "Got it", primary: true }],
      onClose: () => Prefs.update({ [prefKey]: true }),
    });
  }

  // Covers the run button so that clicks on it hit something else (the client must remove it first).
  function coverRunButton(node) {
    const rect = el.run.getBoundingClientRect();
    Object.assign(node.style, {
      position: "fixed", left: `${rect.left - 8}px`, top: `${rect.top - 8}px`,
      width: `${rect.width + 16}px`, height: `${rect.height + 16}px`,
    });
  }

  // A tooltip pane is not an Escape-closable overlay: it is simply left in the overlay container.
  function injectTooltip() {
    const pane = h("div", { class: "cdk-overlay-pane mat-mdc-tooltip-panel injected-tooltip" },
      h("div", { class: "mat-mdc-tooltip mdc-tooltip mdc-tooltip--shown", role: "tooltip" },
        h("div", { class: "mdc-tooltip__surface mat-mdc-tooltip-surface", text: "Run (Ctrl + Enter)" })));
    coverRunButton(pane);
    container().append(pane);
  }

  function injectSurvey() {
    if (document.getElementById("google-hats-survey-1")) return;
    const frame = h("iframe", {
      id: "google-hats-survey-1", class: "google-hats-survey", title: "Help us improve AI Studio",
      srcdoc: "<body style='font:14px sans-serif;margin:16px'>How satisfied are you with AI Studio?</body>",
    });
    coverRunButton(frame);
    document.body.append(frame);
  }

  function injectCookieBanner() {
    if (document.querySelector(".glue-cookie-notification-bar")) return;
    const reject = h("button", { class: "glue-cookie-notification-bar__reject", type: "button", text: "No thanks" });
    const accept = h("button", { class: "glue-cookie-notification-bar__accept", type: "button", text: "Ok, got it" });
    const bar = h("div", { class: "glue-cookie-notification-bar", role: "alertdialog" },
      h("p", { class: "glue-cookie-notification-bar__text", text: "This site uses cookies from Google to deliver its services." }),
      reject, accept);
    reject.addEventListener("click", () => bar.remove());
    accept.addEventListener("click", () => bar.remove());
    document.body.append(bar);
  }

  function injectOverlays(moment) {
    const wanted = new Set(app.config.inject_overlays || []);
    if (wanted.has("transparent_backdrop")) openOverlay({ backdrop: "transparent" });
    if (wanted.has("tooltip")) injectTooltip();
    if (wanted.has("survey_iframe")) injectSurvey();
    if (moment === "boot" && wanted.has("cookie_banner")) injectCookieBanner();
  }

  // ---- changed layouts (dom_variant; aistudio_sim/README.md "DOM variants") ----

  function applyDomVariant(name) {
    if (name === "renamed_run_button") {
      // A new wrapper element, a new name and no run-button class: none of the worker's RUN_BUTTON
      // selectors match; ms-send-button button[data-test-id="send-button"] does.
      const wrapper = h("ms-send-button");
      el.run.parentElement.replaceWith(wrapper);
      wrapper.append(el.run);
      el.run.classList.remove("run-button");
      el.run.setAttribute("data-test-id", "send-button");
      app.runName = "Send";
      syncRunButton();
    } else if (name === "moved_advanced_settings") {
      // The advanced group (stop sequences, output length, top-P) moves out of the run settings panel,
      // always open, into a panel under the prompt box; its output-length field has a new label.
      const panel = h("ms-advanced-panel", { class: "advanced-panel" });
      document.querySelector("ms-prompt-box").after(panel);
      panel.append(app.settings.advancedBody);
      app.settings.setAdvancedOpen(true);
    } else if (name === "first_use_dialog") {
      // A new onboarding dialog over the whole page until it is accepted once (remembered in the
      // preferences): Escape and clicks beside it do nothing; only its own button ("Start building", a label
      // the worker does not know) closes it.
      if ((Prefs.read() || {}).hasSeenStudioOnboarding === true) return;
      const button = h("button", { class: "ms-button-primary", type: "button", text: "Start building" });
      const scrim = h("div", { class: "onboarding-scrim", role: "dialog", "aria-modal": "true",
        "aria-label": "Welcome to the new AI Studio" },
      h("div", { class: "onboarding-card" },
        h("h2", { text: "Welcome to the new AI Studio" }),
        h("p", { text: "Everything you need to build with Gemini, in one place." }),
        button));
      button.addEventListener("click", () => {
        scrim.remove();
        Prefs.update({ hasSeenStudioOnboarding: true });
      });
      container().append(scrim);
    }
  }

  // ---- boot (docs/aistudio.md §1.3, §4.8, §8) ----

  async function loadConfig() {
    try {
      const response = await fetch("/__sim__/config", { credentials: "include" });
      return response.ok ? await response.json() : {};
    } catch (_) {
      return {};
    }
  }

  function parseModels(data) {
    const list = Array.isArray(data) && Array.isArray(data[0]) ? data[0] : [];
    return list.filter((m) => Array.isArray(m) && typeof m[0] === "string").map((m) => {
      const id = m[0].slice(m[0].lastIndexOf("/") + 1);
      return {
        id,
        displayName: m[3] || id,
        description: m[4] || "",
        inputLimit: Number(m[5]) || 1048576,
        outputLimit: Number(m[6]) || 65536,
        temperature: typeof m[8] === "number" ? m[8] : 1,
        topP: typeof m[9] === "number" ? m[9] : 0.95,
      };
    });
  }

  async function loadModels() {
    let response;
    try {
      response = await rpc("ListModels", []);
    } catch (_) {
      return null;
    }
    if (response.status === 401) {
      goToSignIn();
      return undefined;
    }
    if (!response.ok) return null;
    let text = await response.text();
    if (text.startsWith(")]}'")) text = text.slice(text.indexOf("\n") + 1);
    try {
      return parseModels(JSON.parse(text));
    } catch (_) {
      return null;
    }
  }

  function choosePrefs(models) {
    let prefs = Prefs.read();
    let dirty = false;
    if (!prefs) {
      prefs = {
        bidiModel: "models/gemini-1.0-pro-001",
        isAdvancedOpen: false,
        isSafetySettingsOpen: false,
        areToolsOpen: false,
        autosaveEnabled: true,
        theme: "system",
        isSystemInstructionsOpen: false,
        enterKeyBehavior: 0,
        thinkingBudgetsByModel: {},
      };
      dirty = true;
    }
    const wanted = typeof prefs.promptModel === "string" ? prefs.promptModel.replace(/^models\//, "") : "";
    // Config page_unknown_models: listed by ListModels, yet refused here like an unknown id (docs/aistudio.md §8).
    const refused = new Set(app.config.page_unknown_models || []);
    const usable = models.filter((m) => !refused.has(m.id));
    let model = usable.find((m) => m.id === wanted);
    if (!model) {
      const fallbackId = app.config.default_model || FALLBACK_MODEL;
      model = usable.find((m) => m.id === fallbackId) || usable[0] || models[0];
      prefs.promptModel = `models/${model.id}`;
      dirty = true;
    }
    if (dirty) Prefs.write(prefs);
    return { prefs, model };
  }

  function pickModel(modelId) {
    Prefs.update({ promptModel: `models/${modelId}` });
    window.location.assign(`${STUDIO}/prompts/new_chat`);
  }

  function wireEvents() {
    const onText = () => syncPromptBox();
    el.textarea.addEventListener("input", onText);
    el.textarea.addEventListener("change", onText);
    el.textarea.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        if (!app.generation && canRun()) run();
      }
    });
    el.run.addEventListener("click", (event) => {
      event.preventDefault();
      run();
    });
    el.newChat.addEventListener("click", requestNewChat);
    el.moreButton.addEventListener("click", openMoreMenu);
    el.addMedia.addEventListener("click", openUploadMenu);
    window.addEventListener("popstate", () => {
      if (window.location.pathname === "/prompts/new_chat" && app.turns.length) newChat();
    });
  }

  async function boot() {
    bindElements();
    wireEvents();
    syncPromptBox();
    syncChatState();
    app.config = await loadConfig();
    let models = await loadModels();
    if (models === undefined) return;   // redirected to sign-in
    if (!models || !models.length) {
      showToast("Failed to load the model list.");
      models = parseModels([[[`models/${app.config.default_model || FALLBACK_MODEL}`, null, "", "", "", 1048576, 65536, null, 1, 0.95]]]);
    }
    app.models = models;
    const saved = /\/prompts\/(1[\w-]{20,})$/.exec(window.location.pathname);
    app.promptId = saved ? saved[1] : null;
    const { prefs, model } = choosePrefs(models);
    app.model = model;
    app.settings = new RunSettings(el.runSettings, model, {
      advancedOpen: prefs.isAdvancedOpen === true,
      toolsOpen: prefs.areToolsOpen === true,
      models,
      onModelPicked: pickModel,
      variant: app.config.dom_variant,
      onSearchEnabled: () => firstUseDialog("hasShownSearchGroundingTos", "Grounding with Google Search",
        "Responses grounded with Google Search are subject to the Google Search terms."),
    });
    applyDomVariant(app.config.dom_variant);
    syncPromptBox();
    document.body.classList.remove("booting");
    el.app.setAttribute("data-boot", "done");
    if (app.config.virtualize_turns) startVirtualization();
    const injected = new Set(app.config.inject_overlays || []);
    firstUseDialog("warmWelcomeDisplayed", "Welcome to Google AI Studio", "Build with the latest Gemini models.",
      injected.has("welcome_dialog"));
    firstUseDialog("hasShownDrivePermissionDialog", "Allow Drive access",
      "AI Studio saves your prompts in Google Drive.");
    injectOverlays("boot");
  }

  // ---- optional turn virtualisation (docs/aistudio.md §9.8) ----

  function startVirtualization() {
    const observer = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        const turn = app.turns.find((t) => t.el === entry.target);
        if (!turn || turn.editing) continue;
        if (entry.isIntersecting) {
          if (turn.el.classList.contains("virtualized")) {
            turn.el.classList.remove("virtualized");
            turn.el.style.minHeight = "";
            if (turn.answerChunk) renderMarkdown(turn.answerChunk.cmarkRoot, turn.raw);
          }
        } else if (turn.answerChunk && !(app.generation && app.generation.turn === turn)) {
          // Keep the turn's height so that emptying it does not move the turns around it.
          turn.el.style.minHeight = `${entry.boundingClientRect.height}px`;
          turn.el.classList.add("virtualized");
          turn.answerChunk.cmarkRoot.replaceChildren();
        }
      }
    }, { root: el.scroller, rootMargin: "200px 0px" });
    new MutationObserver((records) => {
      for (const record of records) {
        for (const added of record.addedNodes) if (added.tagName === "MS-CHAT-TURN") observer.observe(added);
        for (const removed of record.removedNodes) if (removed.tagName === "MS-CHAT-TURN") observer.unobserve(removed);
      }
    }).observe(el.turnList, { childList: true });
  }

  // Exposed for debugging in the browser console only; the client never uses it.
  window.SimApp = app;
  window.addEventListener("DOMContentLoaded", boot);
})();
