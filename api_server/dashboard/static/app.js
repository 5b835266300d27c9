// The operator dashboard: one live feed (GET /api/events, Server-Sent Events read with fetch so that the
// admin key travels in a header) plus the JSON endpoints for usage, keys and snapshots. No framework.
import { adminKey, api, forgetKey, saveKey, UnauthorizedError } from "/dashboard/api.js";

const $ = (selector) => document.querySelector(selector);
let feed = null;          // the AbortController of the running feed
let lastRecentIds = "";   // refresh usage and snapshots when the recent requests change

// ---- small helpers ----

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined || text === "" ? "—" : String(text);
  return td;
}

function button(label, onClick, accessibleName) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  if (accessibleName) b.setAttribute("aria-label", accessibleName);
  b.addEventListener("click", onClick);
  return b;
}

function fill(table, rows, empty) {
  const body = $(`${table} tbody`);
  body.replaceChildren(...rows);
  if (!rows.length) {
    const tr = document.createElement("tr");
    const td = cell(empty);
    td.colSpan = $(`${table} thead tr`).children.length;
    tr.append(td);
    body.append(tr);
  }
}

function row(...cells) {
  const tr = document.createElement("tr");
  tr.append(...cells.map((c) => (c instanceof Node ? wrap(c) : cell(c))));
  return tr;
}

function wrap(node) {
  if (node.tagName === "TD") return node;
  const td = document.createElement("td");
  td.append(node);
  return td;
}

function when(epoch) {
  return epoch ? new Date(epoch * 1000).toLocaleTimeString() : "";
}

function say(text, isError = false) {
  const out = $("#action-result");
  out.textContent = text;
  out.classList.toggle("error", isError);
}

// Runs one API call; an action says how it went, a background load (quiet) only says when it failed.
async function act(what, call, quiet = false) {
  try {
    const result = await call();
    if (!quiet) say(`${what}: done`);
    return result;
  } catch (err) {
    say(`${what}: ${err.message}`, true);
    if (err instanceof UnauthorizedError) showLogin(err.message);
    return null;
  }
}

// ---- sign-in ----

function showLogin(message = "") {
  if (feed) feed.abort();
  $("#main").hidden = true;
  $("#forget-key").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message;
  $("#connection").textContent = "not connected";
  $("#admin-key").focus();
}

function showMain() {
  $("#login").hidden = true;
  $("#main").hidden = false;
  $("#forget-key").hidden = false;
  startFeed();
  refreshKeys();
  refreshUsage();
  refreshSnapshots();
}

// ---- the live feed ----

async function startFeed() {
  if (feed) feed.abort();
  feed = new AbortController();
  const signal = feed.signal;
  let delay = 1000;
  while (!signal.aborted) {
    try {
      const response = await fetch("/api/events", {
        headers: { Authorization: `Bearer ${adminKey()}` }, signal,
      });
      if (response.status === 401 || response.status === 403) {
        const body = await response.json().catch(() => ({}));
        forgetKey();
        showLogin((body.error && body.error.message) || "The admin key was refused.");
        return;
      }
      $("#connection").textContent = "live";
      delay = 1000;
      await readEvents(response.body.getReader(), signal);
    } catch (err) {
      if (signal.aborted) return;
    }
    $("#connection").textContent = "reconnecting…";
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 10000);
  }
}

async function readEvents(reader, signal) {
  const decoder = new TextDecoder();
  let buffer = "";
  while (!signal.aborted) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      if (block.includes("event: state") && data) render(JSON.parse(data));
    }
  }
}

// ---- panels from the feed ----

function render(state) {
  document.body.dataset.updated = String(Date.now());
  fill("#processes", Object.entries(state.processes).map(([name, p]) =>
    row(name, p.state, p.message || (p.pid ? `pid ${p.pid}` : "") || p.capture || p.version || "")), "no process");
  fill("#accounts", state.accounts.map((a) => row(
    a.name, a.state, a.pages, when(a.cooling_until),
    a.state === "disabled" || a.state === "draining"
      ? button("Enable", () => accountAction(a.name, "enable"), `Enable account ${a.name}`)
      : button("Drain", () => accountAction(a.name, "disable"), `Drain account ${a.name}`),
  )), "no account");
  fill("#slots", state.slots.map((s) => row(s.id, s.account, s.state, s.model, s.job, s.message)), "no page");
  fill("#queue", state.queue.map((t) => row(
    t.id, t.state, t.model, t.age_s, t.slot,
    button("Cancel", () => cancel(t.id), `Cancel request ${t.id}`),
  )), "the queue is empty");
  fill("#recent", state.recent.map((r) => row(
    button(r.id, () => showTimeline(r.id), `Timeline of request ${r.id}`),
    r.dialect, r.model, r.status, r.outcome, r.slot, r.tier, r.stages.finished,
  )), "no request yet");
  const ids = state.recent.map((r) => r.id).join(",");
  if (ids !== lastRecentIds) {
    lastRecentIds = ids;
    refreshUsage();
    refreshSnapshots();
  }
}

async function accountAction(name, action) {
  await act(`${action === "enable" ? "Enable" : "Drain"} ${name}`,
    () => api(`/api/accounts/${encodeURIComponent(name)}/${action}`, { method: "POST" }));
}

async function cancel(id) {
  await act(`Cancel ${id}`, () => api(`/v1/cancel/${encodeURIComponent(id)}`, { method: "POST" }));
}

async function showTimeline(id) {
  const timeline = await act(`Timeline of ${id}`, () => api(`/api/requests/${encodeURIComponent(id)}`));
  if (!timeline) return;
  const out = $("#timeline");
  out.textContent = JSON.stringify(timeline, null, 2);
  out.focus();
}

// ---- usage ----

async function refreshUsage() {
  const group = $("#usage-group").value;
  const usage = await act("Usage", () => api(`/api/usage?group_by=${group}`), true);
  if (!usage) return;
  const rows = usage.data;
  fill("#usage", rows.map((u) => row(u[group] ?? "(none)", u.requests, u.prompt_tokens, u.completion_tokens,
    u.reasoning_tokens)), "no usage yet");
  drawChart(rows, group);
}

function drawChart(rows, group) {
  const svgNS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(svgNS, "svg");
  const width = 600, barHeight = 22, gap = 6;
  svg.setAttribute("viewBox", `0 0 ${width} ${Math.max(1, rows.length) * (barHeight + gap)}`);
  svg.setAttribute("width", String(width));
  svg.setAttribute("class", "chart");
  const max = Math.max(1, ...rows.map((u) => u.prompt_tokens + u.completion_tokens + u.reasoning_tokens));
  rows.forEach((u, i) => {
    const total = u.prompt_tokens + u.completion_tokens + u.reasoning_tokens;
    const bar = document.createElementNS(svgNS, "rect");
    bar.setAttribute("x", "180");
    bar.setAttribute("y", String(i * (barHeight + gap)));
    bar.setAttribute("height", String(barHeight));
    bar.setAttribute("width", String(Math.max(2, ((width - 190) * total) / max)));
    bar.setAttribute("class", "bar");
    const label = document.createElementNS(svgNS, "text");
    label.setAttribute("x", "0");
    label.setAttribute("y", String(i * (barHeight + gap) + 16));
    label.textContent = `${u[group] ?? "(none)"}: ${total}`;
    svg.append(bar, label);
  });
  $("#usage-chart").replaceChildren(svg);
  $("#usage-chart").setAttribute("aria-label", `Tokens by ${group}: ` +
    rows.map((u) => `${u[group] ?? "(none)"} ${u.prompt_tokens + u.completion_tokens + u.reasoning_tokens}`).join(", "));
}

// ---- keys ----

const LIMITS = [["rpm", "#key-rpm"], ["tpm", "#key-tpm"], ["daily_tokens", "#key-daily"],
  ["max_concurrent", "#key-concurrent"]];

function describeLimits(k) {
  const parts = LIMITS.filter(([name]) => k[name]).map(([name]) => `${name} ${k[name]}`);
  if (k.models) parts.push(`models ${k.models.join(", ")}`);
  if (k.expires_at) parts.push(`expires ${new Date(k.expires_at * 1000).toISOString()}`);
  return parts.join("; ") || "none";
}

async function refreshKeys() {
  const keys = await act("Keys", () => api("/api/keys"), true);
  if (!keys) return;
  fill("#keys", keys.data.map((k) => row(k.prefix + "…", k.label, describeLimits(k), actionsFor(k))), "no client key");
}

function actionsFor(k) {
  const span = document.createElement("span");
  span.append(
    button("Edit limits", () => editKey(k), `Edit the limits of key ${k.label || k.prefix}`),
    button("Revoke", () => revokeKey(k), `Revoke key ${k.label || k.prefix}`),
  );
  return span;
}

function editKey(k) {
  $("#key-id").value = k.id;
  $("#key-label").value = k.label || "";
  for (const [name, input] of LIMITS) $(input).value = k[name] || "";
  $("#key-models").value = (k.models || []).join(", ");
  $("#key-form-title").textContent = `Edit key ${k.label || k.prefix}`;
  $("#key-submit").textContent = "Save the limits";
  $("#key-cancel").hidden = false;
  $("#key-label").focus();
}

function resetKeyForm() {
  $("#key-form").reset();
  $("#key-id").value = "";
  $("#key-form-title").textContent = "Create a key";
  $("#key-submit").textContent = "Create the key";
  $("#key-cancel").hidden = true;
}

async function revokeKey(k) {
  await act(`Revoke ${k.label || k.prefix}`, () => api(`/api/keys/${k.id}`, { method: "DELETE" }));
  refreshKeys();
}

async function submitKey(event) {
  event.preventDefault();
  const body = { label: $("#key-label").value };
  for (const [name, input] of LIMITS) {
    const value = $(input).value.trim();
    body[name] = value ? Number(value) : null;
  }
  const models = $("#key-models").value.split(",").map((m) => m.trim()).filter(Boolean);
  body.models = models.length ? models : null;
  const id = $("#key-id").value;
  if (id) {
    if (await act("Save the limits", () => api(`/api/keys/${id}`, { method: "PATCH", body }))) resetKeyForm();
  } else {
    for (const name of Object.keys(body)) if (body[name] === null) delete body[name];
    const made = await act("Create a key", () => api("/api/keys", { method: "POST", body }));
    if (made) {
      $("#new-key").textContent = `New key (shown once, copy it now): ${made.key}`;
      resetKeyForm();
    }
  }
  refreshKeys();
}

// ---- snapshots ----

async function refreshSnapshots() {
  const snapshots = await act("Snapshots", () => api("/api/snapshots"), true);
  if (!snapshots) return;
  fill("#snapshots", snapshots.data.map((s) => row(
    `${s.day} ${s.name.slice(0, 6).replace(/(\d\d)(\d\d)(\d\d)/, "$1:$2:$3")}`, s.request_id, s.kind,
    s.error.trim(),
    s.files.includes("screenshot.png")
      ? button("Screenshot", () => showScreenshot(s), `Screenshot of request ${s.request_id}`)
      : "",
  )), "no error snapshot");
}

async function showScreenshot(s) {
  const blob = await act("Screenshot", () => api(`/api/snapshots/${s.day}/${s.name}/screenshot.png`, { raw: true }));
  if (!blob) return;
  const img = $("#snapshot-image");
  if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(blob);
  $("#snapshot-caption").textContent = `${s.request_id} (${s.kind}): ${s.error.trim()}`;
  $("#snapshot-view").hidden = false;
}

// ---- process actions ----

async function restart(program, label) {
  await act(label, () => api(`/api/control/restart/${program}`, { method: "POST" }));
}

async function downloadDoctor() {
  say("Doctor: running (up to a few minutes)…");
  const blob = await act("Doctor report", () => api("/api/control/doctor", { method: "POST", raw: true }));
  if (!blob) return;
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = `doctor-${new Date().toISOString().replace(/[:.]/g, "-")}.json`;
  document.body.append(link);
  link.click();
  link.remove();
}

// ---- wiring ----

window.addEventListener("DOMContentLoaded", () => {
  $("#login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    saveKey($("#admin-key").value.trim());
    $("#admin-key").value = "";
    showMain();
  });
  $("#forget-key").addEventListener("click", () => {
    forgetKey();
    showLogin();
  });
  $("#restart-proxy").addEventListener("click", () => restart("stream_proxy", "Restart the stream proxy"));
  $("#restart-worker").addEventListener("click", () => restart("browser_worker", "Restart the browser"));
  $("#doctor").addEventListener("click", downloadDoctor);
  $("#usage-group").addEventListener("change", refreshUsage);
  $("#key-form").addEventListener("submit", submitKey);
  $("#key-cancel").addEventListener("click", resetKeyForm);
  if (adminKey()) showMain();
  else showLogin();
});
