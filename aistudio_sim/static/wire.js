// Wire helpers for the AI Studio simulator page (no DOM here, except the markdown renderer at the end).
//   * StreamScanner: incremental scanner for the GenerateContent body grammar (docs/aistudio.md §4.4/§4.6).
//   * decodeArgs: the "type-length" function-call argument decoding (docs/aistudio.md §4.5), all wrapper variants.
//   * classifyParts: split an event into thought text, answer text and function calls.
//   * renderMarkdown: a tiny markdown renderer producing ms-cmark-node trees (docs/aistudio.md §2.4).
"use strict";

(function (global) {
  const QUOTE = 0x22, BACKSLASH = 0x5c, OPEN = 0x5b, CLOSE = 0x5d, COMMA = 0x2c;

  function concatBytes(parts) {
    if (parts.length === 1) return parts[0];
    let size = 0;
    for (const p of parts) size += p.length;
    const out = new Uint8Array(size);
    let offset = 0;
    for (const p of parts) { out.set(p, offset); offset += p.length; }
    return out;
  }

  // Feed raw body bytes; get back every element that completed in this piece, in order:
  //   {kind: "event", value}  for an element of the top-level array's first element (the event list);
  //   {kind: "error", value}  for a later top-level element (the JSPB Status `[code, message, ...]`).
  // `done` turns true once the top-level array has closed. Bytes stay bytes until an element is complete,
  // so UTF-8 sequences split between reads are never decoded in halves.
  class StreamScanner {
    constructor() {
      this.depth = 0;
      this.inString = false;
      this.escape = false;
      this.topIndex = 0;
      this.capturing = false;
      this.captureDepth = 0;
      this.kind = null;
      this.pieces = [];
      this.done = false;
      this.decoder = new TextDecoder("utf-8");
    }

    feed(bytes) {
      const out = [];
      let start = this.capturing ? 0 : -1;
      for (let i = 0; i < bytes.length; i++) {
        if (this.done) break;
        const b = bytes[i];
        if (this.inString) {
          if (this.escape) this.escape = false;
          else if (b === BACKSLASH) this.escape = true;
          else if (b === QUOTE) this.inString = false;
          continue;
        }
        if (b === QUOTE) {
          this.inString = true;
        } else if (b === OPEN) {
          this.depth += 1;
          const opensEvent = this.depth === 3 && this.topIndex === 0;
          const opensError = this.depth === 2 && this.topIndex > 0;
          if (!this.capturing && (opensEvent || opensError)) {
            this.capturing = true;
            this.captureDepth = this.depth;
            this.kind = opensEvent ? "event" : "error";
            this.pieces = [];
            start = i;
          }
        } else if (b === CLOSE) {
          this.depth -= 1;
          if (this.capturing && this.depth === this.captureDepth - 1) {
            this.pieces.push(bytes.subarray(start, i + 1));
            const text = this.decoder.decode(concatBytes(this.pieces));
            out.push({ kind: this.kind, value: JSON.parse(text) });
            this.capturing = false;
            this.pieces = [];
            start = -1;
          }
          if (this.depth === 0) this.done = true;
        } else if (b === COMMA && this.depth === 1) {
          this.topIndex += 1;
        }
      }
      if (this.capturing) this.pieces.push(bytes.slice(start));
      return out;
    }
  }

  // ---- function-call arguments (docs/aistudio.md §4.5) ----

  function isPairList(v) {
    return Array.isArray(v) && v.length > 0 && Array.isArray(v[0]) && v[0].length >= 2 &&
      typeof v[0][0] === "string";
  }

  function decodeValue(v) {
    for (;;) {
      if (isPairList(v)) return decodeStruct(v);
      if (Array.isArray(v) && v.length === 1 && Array.isArray(v[0])) { v = v[0]; continue; }
      break;
    }
    if (!Array.isArray(v)) return v === undefined ? null : v;
    switch (v.length) {
      case 0: case 1: return null;
      case 2: return v[1];
      case 3: return v[2];
      case 4: return v[3] === true || v[3] === 1;
      case 5: return decodeStruct(v[4]);
      case 6: return (v[5] || []).map(decodeValue);
      default: return null;
    }
  }

  function decodeStruct(s) {
    while (Array.isArray(s) && s.length === 1 && Array.isArray(s[0]) && !isPairList(s)) s = s[0];
    if (!isPairList(s)) return {};
    const out = {};
    for (const [key, value] of s) out[key] = decodeValue(value);
    return out;
  }

  function decodeArgs(args) {
    return args ? decodeStruct(args) : {};
  }

  // One event -> {thoughts: [text], answers: [text], calls: [{name, args}], finishReason, usage}.
  function classifyEvent(event) {
    const result = { thoughts: [], answers: [], calls: [], finishReason: null, usage: null };
    if (!Array.isArray(event)) return result;
    if (Array.isArray(event[2])) result.usage = event[2];
    const candidates = Array.isArray(event[0]) ? event[0] : [];
    const candidate = candidates[0];
    if (!Array.isArray(candidate)) return result;
    if (candidate[1] !== undefined && candidate[1] !== null) result.finishReason = candidate[1];
    const content = candidate[0];
    const parts = Array.isArray(content) && Array.isArray(content[0]) ? content[0] : [];
    for (const part of parts) {
      if (!Array.isArray(part)) continue;
      if (Array.isArray(part[10])) {
        result.calls.push({ name: String(part[10][0] || ""), args: decodeArgs(part[10][1]) });
      } else if (typeof part[1] === "string") {
        (part[12] ? result.thoughts : result.answers).push(part[1]);
      }
    }
    return result;
  }

  // `[code, "message", ...]` (also tolerates `[null, [code, "message"]]`) -> {code, message} or null.
  function parseStatus(value) {
    if (!Array.isArray(value)) return null;
    if (typeof value[0] === "number" || typeof value[1] === "string") {
      return { code: typeof value[0] === "number" ? value[0] : null, message: String(value[1] ?? "") };
    }
    for (const item of value) {
      const inner = parseStatus(item);
      if (inner) return inner;
    }
    return null;
  }

  // ---- tiny markdown renderer ----

  const INLINE = /(`+)([\s\S]*?)\1|\*\*([\s\S]+?)\*\*|__([\s\S]+?)__|\*([^*\s][^*]*?)\*|\[([^\]]+)\]\(([^)\s]+)\)/g;

  function node(tag, cls) {
    const el = document.createElement(tag);
    if (cls) el.className = cls;
    return el;
  }

  function appendInline(parent, text) {
    let last = 0;
    const inline = new RegExp(INLINE.source, "g");   // own lastIndex: this function recurses
    for (let m = inline.exec(text); m; m = inline.exec(text)) {
      if (m.index > last) parent.append(document.createTextNode(text.slice(last, m.index)));
      const wrap = node("ms-cmark-node");
      if (m[1] !== undefined) {
        const code = node("span", "inline-code");
        code.textContent = m[2];
        wrap.append(code);
      } else if (m[3] !== undefined || m[4] !== undefined) {
        const strong = node("strong");
        appendInline(strong, m[3] !== undefined ? m[3] : m[4]);
        wrap.append(strong);
      } else if (m[5] !== undefined) {
        const em = node("em");
        appendInline(em, m[5]);
        wrap.append(em);
      } else {
        const a = node("a");
        a.textContent = m[6];
        a.setAttribute("href", m[7]);
        a.setAttribute("target", "_blank");
        a.setAttribute("rel", "noopener");
        wrap.append(a);
      }
      parent.append(wrap);
      last = inline.lastIndex;
    }
    if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
  }

  const FENCE = /^\s{0,3}(```+|~~~+)\s*([\w+#.-]*)/;
  const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
  const BULLET = /^\s{0,3}[-*+]\s+(.*)$/;
  const ORDERED = /^\s{0,3}(\d{1,9})[.)]\s+(.*)$/;
  const RULE = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;
  const QUOTE_LINE = /^\s{0,3}>\s?(.*)$/;

  function renderBlocks(parent, text) {
    const lines = text.split("\n");
    let i = 0;
    const block = (el) => { const wrap = node("ms-cmark-node"); wrap.append(el); parent.append(wrap); };
    while (i < lines.length) {
      const line = lines[i];
      if (!line.trim()) { i += 1; continue; }
      let m = FENCE.exec(line);
      if (m) {
        const fence = m[1];
        const body = [];
        i += 1;
        while (i < lines.length && !lines[i].trim().startsWith(fence)) { body.push(lines[i]); i += 1; }
        i += 1;
        const pre = node("pre");
        const code = node("code", m[2] ? `language-${m[2]}` : "");
        code.textContent = body.join("\n");
        pre.append(code);
        block(pre);
        continue;
      }
      if ((m = HEADING.exec(line))) {
        const h = node(`h${m[1].length}`);
        appendInline(h, m[2]);
        block(h);
        i += 1;
        continue;
      }
      if (RULE.test(line)) { block(node("hr")); i += 1; continue; }
      if (QUOTE_LINE.test(line)) {
        const body = [];
        while (i < lines.length && (m = QUOTE_LINE.exec(lines[i]))) { body.push(m[1]); i += 1; }
        const quote = node("blockquote");
        renderBlocks(quote, body.join("\n"));
        block(quote);
        continue;
      }
      if (BULLET.test(line) || ORDERED.test(line)) {
        const ordered = !BULLET.test(line);
        const list = node(ordered ? "ol" : "ul");
        if (ordered) list.setAttribute("start", ORDERED.exec(line)[1]);
        const pattern = ordered ? ORDERED : BULLET;
        while (i < lines.length && (m = pattern.exec(lines[i]))) {
          const li = node("li");
          const itemLines = [ordered ? m[2] : m[1]];
          i += 1;
          while (i < lines.length && /^\s{2,}\S/.test(lines[i]) && !pattern.test(lines[i])) {
            itemLines.push(lines[i].trim());
            i += 1;
          }
          appendInline(li, itemLines.join("\n"));
          const wrap = node("ms-cmark-node");
          wrap.append(li);
          list.append(wrap);
        }
        block(list);
        continue;
      }
      const para = [];
      while (i < lines.length && lines[i].trim() && !FENCE.test(lines[i]) && !HEADING.test(lines[i]) &&
             !(para.length && (BULLET.test(lines[i]) || ORDERED.test(lines[i]) || QUOTE_LINE.test(lines[i])))) {
        para.push(lines[i]);
        i += 1;
      }
      const p = node("p");
      appendInline(p, para.join("\n"));
      block(p);
    }
  }

  // Fill `root` (the top-level ms-cmark-node.cmark-node) with the rendering of `text`.
  function renderMarkdown(root, text) {
    root.replaceChildren();
    renderBlocks(root, text);
  }

  global.SimWire = { StreamScanner, decodeArgs, decodeValue, classifyEvent, parseStatus, renderMarkdown };
})(window);
