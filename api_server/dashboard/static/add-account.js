// "Add account": a remote view of a sign-in page on the server (frames in, clicks and keys out, over a
// WebSocket opened with a one-time ticket), and a cookie / storage-state import.
import { adminKey, api, saveKey } from "/dashboard/api.js";

const $ = (selector) => document.querySelector(selector);
// Keys sent by name; printable characters go as text.
const NAMED_KEYS = new Set(["Enter", "Tab", "Backspace", "Delete", "Escape", "ArrowLeft", "ArrowRight",
  "ArrowUp", "ArrowDown", "Home", "End"]);
let socket = null;
let page = { width: 0, height: 0 };

function state(text) {
  $("#state").textContent = text;
}

function send(event) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(event));
}

async function start(event) {
  event.preventDefault();
  const name = $("#account-name").value.trim();
  state("Opening the sign-in page…");
  let started;
  try {
    started = await api("/api/accounts/login", { method: "POST", body: name ? { name } : {} });
  } catch (err) {
    state(`The sign-in could not start: ${err.message}`);
    return;
  }
  page = { width: started.width, height: started.height };
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/login-view/${started.session}?ticket=${started.ticket}`);
  socket.addEventListener("message", (message) => {
    const data = JSON.parse(message.data);
    if (data.type === "frame") {
      page = { width: data.width, height: data.height };
      const screen = $("#screen");
      screen.src = `data:image/jpeg;base64,${data.data}`;
      screen.dataset.frames = String(Number(screen.dataset.frames || 0) + 1);
      $("#page-url").textContent = data.url;
      if (screen.hidden) {  // the first frame: the keyboard goes to the page from now on
        screen.hidden = false;
        screen.focus();
      }
    } else if (data.type === "ended") {
      state(data.ok ? `Done: ${data.message}. It joins the pool now.` : `The sign-in ended: ${data.message}`);
      finish();
    }
  });
  socket.addEventListener("close", () => finish());
  $("#start").hidden = true;
  $("#cancel").hidden = false;
  state("Sign in below: click into the page and type.");
}

function finish() {
  socket = null;
  $("#start").hidden = false;
  $("#cancel").hidden = true;
  $("#screen").hidden = true;
}

function pagePoint(event) {
  const box = $("#screen").getBoundingClientRect();
  return {
    x: ((event.clientX - box.left) * page.width) / box.width,
    y: ((event.clientY - box.top) * page.height) / box.height,
  };
}

function wire() {
  const screen = $("#screen");
  screen.addEventListener("click", (event) => {
    screen.focus();
    send({ kind: "click", ...pagePoint(event) });
  });
  screen.addEventListener("wheel", (event) => {
    event.preventDefault();
    send({ kind: "wheel", dx: event.deltaX, dy: event.deltaY });
  }, { passive: false });
  screen.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (NAMED_KEYS.has(event.key)) {
      event.preventDefault();
      send({ kind: "key", key: event.shiftKey && event.key === "Tab" ? "Shift+Tab" : event.key });
    } else if (event.key.length === 1) {
      event.preventDefault();
      send({ kind: "text", text: event.key });
    }
  });
  screen.addEventListener("paste", (event) => {
    event.preventDefault();
    send({ kind: "text", text: event.clipboardData.getData("text") });
  });
  $("#login-form").addEventListener("submit", start);
  $("#cancel").addEventListener("click", () => {
    if (socket) socket.close();
    state("Cancelled.");
  });
  $("#import-form").addEventListener("submit", importCookies);
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    saveKey($("#admin-key").value.trim());
    $("#key-section").hidden = true;
  });
  if (!adminKey()) $("#key-section").hidden = false;
}

async function importCookies(event) {
  event.preventDefault();
  const out = $("#import-result");
  const file = $("#import-file").files[0];
  const text = file ? await file.text() : $("#import-text").value;
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    out.textContent = `That is not JSON: ${err.message}`;
    return;
  }
  const body = { name: $("#import-name").value.trim() };
  if (Array.isArray(parsed)) body.cookies = parsed;
  else body.storage_state = parsed;
  out.textContent = "Checking the cookies with AI Studio…";
  try {
    const made = await api("/api/accounts/import", { method: "POST", body });
    out.textContent = `Imported: account ${made.account} joins the pool.`;
  } catch (err) {
    out.textContent = `The import was refused: ${err.message}`;
  }
}

window.addEventListener("DOMContentLoaded", wire);
