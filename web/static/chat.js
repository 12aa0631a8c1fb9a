// Parley's chat page: plain JavaScript over the public API (REST + the chat WebSocket).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { token: localStorage.getItem("parley.token"), refresh: localStorage.getItem("parley.refresh"),
                user: null, chat: null,
                socket: null, welcomed: false, lastEventId: null, streaming: null, retry: 0, timer: null,
                pinged: 0, heard: 0 };
const PING_MS = 30000;  // under the server's idle timeout (5 minutes); a socket silent for a whole round is dead

function notice(text) {
  const box = $("notice");
  box.textContent = text;
  box.hidden = !text;
  if (text) setTimeout(() => { if (box.textContent === text) box.hidden = true; }, 6000);
}

async function api(path, options = {}, renewed = false) {
  const headers = { "Content-Type": "application/json" };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (error) {
    throw failure(0, "Cannot reach the server: check your connection and try again.");
  }
  const body = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    const detail = body && body.detail;
    const text = Array.isArray(detail) ? detail.map((d) => `${d.loc.slice(1).join(".")}: ${d.msg}`).join("; ") : detail;
    if (response.status === 401 && state.token) {
      // An access token lasts an hour: get a new one with the refresh token, then ask again.
      if (!renewed && await renewToken()) return api(path, options, true);
      signOut();
      throw failure(401, `Your session has ended (${text || "not authenticated"}): sign in again.`);
    }
    if (response.status === 429) throw failure(429, tooMany(text, response.headers.get("Retry-After")));
    throw failure(response.status, text || `Request failed (${response.status})`);
  }
  return body;
}

async function renewToken() {
  if (!state.refresh) return false;
  try {
    const response = await fetch("/api/v1/auth/refresh", { method: "POST",
      headers: { Authorization: `Bearer ${state.refresh}` } });
    if (!response.ok) return false;  // the refresh token expired or was revoked: the session is over
    keepTokens({ access_token: (await response.json()).access_token });
    return true;
  } catch (error) {
    return false;
  }
}

function keepTokens(tokens) {
  state.token = tokens.access_token;
  localStorage.setItem("parley.token", state.token);
  if (tokens.refresh_token) {
    state.refresh = tokens.refresh_token;
    localStorage.setItem("parley.refresh", state.refresh);
  }
}

function failure(status, text) {
  return Object.assign(new Error(text), { status });
}

function tooMany(detail, retryAfter) {
  const why = detail || "Too many requests";
  return retryAfter ? `${why}. Try again in ${retryAfter} s.` : `${why}.`;
}

async function signIn(register) {
  const username = $("username").value.trim(), password = $("password").value;
  try {
    if (register) await api("/api/v1/auth/register", { method: "POST",
      body: JSON.stringify({ email: $("email").value.trim(), username, password }) });
    const login = username.includes("@") ? { email: username } : { username };
    const tokens = await api("/api/v1/auth/login", { method: "POST", body: JSON.stringify({ ...login, password }) });
    keepTokens(tokens);
    await start();
  } catch (error) { notice(error.message); }
}

function signOut() {
  localStorage.removeItem("parley.token");
  localStorage.removeItem("parley.refresh");
  state.token = state.refresh = null;
  state.chat = null;
  hangUp();
  $("app").hidden = true;
  $("auth").hidden = false;
}

async function start() {
  state.user = await api("/api/v1/auth/me");
  $("who").textContent = state.user.username;
  $("auth").hidden = true;
  $("app").hidden = false;
  await loadChats();
}

async function loadChats() {
  const chats = await api("/api/v1/chat/chats");
  $("chats").replaceChildren(...chats.map((chat) => {
    const item = document.createElement("li");
    item.textContent = chat.title;
    item.dataset.id = chat.id;
    item.classList.toggle("active", state.chat && state.chat.id === chat.id);
    item.onclick = () => openChat(chat);
    return item;
  }));
}

function bubble(message, error) {
  let item = document.querySelector(`#messages li[data-id="${message.id}"]`);
  if (!item) {
    item = document.createElement("li");
    item.dataset.id = message.id;
    item.append(document.createElement("span"), Object.assign(document.createElement("small"), { className: "meta" }));
    $("messages").append(item);
  }
  item.className = message.message_type === "USER" ? "user" : "ai";
  item.firstChild.textContent = message.content;
  const meta = [];
  if (message.status === "PROCESSING") meta.push("…");
  if (message.status === "CANCELLED") meta.push("stopped");
  if (message.status === "FAILED") { meta.push(error ? `failed: ${error}` : "failed"); item.classList.add("failed"); }
  if (message.tokens_used) meta.push(`${message.tokens_used} tokens`);
  item.lastChild.textContent = meta.join(" · ");
  $("messages").scrollTop = $("messages").scrollHeight;
  return item;
}

async function openChat(chat) {
  hangUp();
  state.chat = chat; state.lastEventId = null; state.streaming = null; state.retry = 0;
  $("chat-title").textContent = chat.title;
  $("content").disabled = $("send").disabled = false;
  const history = await api(`/api/v1/chat/chats/${chat.id}?limit=200`);
  $("messages").replaceChildren();
  history.messages.forEach(bubble);
  await loadChats();
  connect();
}

function hangUp() {
  // Forget the socket first: whatever it still delivers or reports must not reach the page.
  clearTimeout(state.timer);
  state.timer = null;
  const socket = state.socket;
  state.socket = null;
  if (socket) { socket.onmessage = socket.onclose = null; socket.close(); }
}

function connect() {
  hangUp();
  const query = new URLSearchParams({ token: state.token });
  // Resume after the last event seen: the server sends what was missed, once, and rebuilds
  // the full text of a reply still streaming.
  if (state.lastEventId) query.set("last_event_id", state.lastEventId);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/api/v1/chat/chats/${state.chat.id}/ws?${query}`);
  state.socket = socket;
  state.welcomed = false;
  state.pinged = state.heard = 0;
  $("connection").textContent = state.retry ? "reconnecting…" : "connecting…";
  socket.onmessage = (frame) => { state.heard = Date.now(); onEvent(JSON.parse(frame.data)); };
  socket.onclose = dropped;
}

async function dropped() {
  const chat = state.chat, welcomed = state.welcomed;
  hangUp();
  $("connection").textContent = "offline";
  if (!welcomed) {
    // Refused before its welcome: the token, the access or the chat may be gone (4401, 4403,
    // 4404), or the network. The REST API says which, in words; and the development server
    // loses close codes (the browser sees 1006), so they are not relied on.
    try {
      await api(`/api/v1/chat/chats/${chat.id}?limit=1`);
    } catch (error) {
      if ([401, 403, 404].includes(error.status)) { notice(error.message); return; }
    }
  }
  if (state.chat !== chat || state.socket || state.timer) return;  // the user moved on meanwhile
  const delay = Math.min(1000 * 2 ** state.retry++, 10000);
  state.timer = setTimeout(connect, delay);
}

function heartbeat() {
  // A ping keeps the socket from the idle timeout; no answer since the last one means the
  // connection died without a close (a half-open TCP connection): drop it and resume.
  const socket = state.socket;
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  if (state.pinged && state.heard < state.pinged) { dropped(); return; }
  state.pinged = Date.now();
  socket.send(JSON.stringify({ type: "ping" }));
}

function onEvent(event) {
  if (event.event_id) state.lastEventId = later(state.lastEventId, event.event_id);
  switch (event.type) {
    case "welcome":
      state.welcomed = true;
      state.retry = 0;
      state.lastEventId = later(state.lastEventId, event.last_event_id);
      $("connection").textContent = "live";
      break;
    case "new_message": bubble(event.message); break;
    case "ai_response_start": state.streaming = event.message.id; bubble(event.message); $("stop").hidden = false; break;
    case "ai_response_chunk": {
      const item = document.querySelector(`#messages li[data-id="${event.message_id}"]`);
      if (item) item.firstChild.textContent = event.full_content;
      $("messages").scrollTop = $("messages").scrollHeight;
      break;
    }
    case "ai_response_complete": bubble(event.message); endStream(event.message.id); break;
    case "ai_error":
      bubble(event.message, event.error);
      notice(event.error);
      endStream(event.message_id);
      break;
    case "error": notice(event.error); break;
  }
}

function later(a, b) {
  // Stream ids are "<ms>-<seq>"; a socket opened without a cursor first replays a live reply's
  // earlier events, and the cursor must not move back for them.
  if (!a || !b) return a || b;
  const [am, as] = a.split("-").map(Number), [bm, bs] = b.split("-").map(Number);
  return bm > am || (bm === am && bs > as) ? b : a;
}

function endStream(id) {
  if (state.streaming === id) { state.streaming = null; $("stop").hidden = true; }
}

async function send(submit) {
  submit.preventDefault();
  const content = $("content").value;
  if (!content.trim() || !state.chat) return;
  try {
    await api(`/api/v1/chat/chats/${state.chat.id}/messages`, { method: "POST", body: JSON.stringify({ content }) });
    $("content").value = "";
  } catch (error) { notice(error.message); }
}

async function stop() {
  if (!state.streaming) return;
  try {
    await api(`/api/v1/chat/chats/${state.chat.id}/messages/${state.streaming}/stop`, { method: "POST" });
  } catch (error) { notice(error.message); }
}

async function createChat(submit) {
  submit.preventDefault();
  try {
    const chat = await api("/api/v1/chat/chats", { method: "POST", body: JSON.stringify({ title: $("new-title").value }) });
    $("new-title").value = "";
    await openChat(chat);
  } catch (error) { notice(error.message); }
}

$("auth-form").onsubmit = (submit) => { submit.preventDefault(); signIn(false); };
$("register").onclick = () => signIn(true);
$("sign-out").onclick = () => {  // both tokens are revoked, so no copy of them signs in again
  api("/api/v1/auth/logout", { method: "POST", body: JSON.stringify({ refresh_token: state.refresh }) })
    .catch(() => {});
  signOut();
};
$("new-chat").onsubmit = createChat;
$("composer").onsubmit = send;
$("content").onkeydown = (key) => { if (key.key === "Enter" && !key.shiftKey) send(key); };
$("stop").onclick = stop;
$("notice").onclick = () => notice("");
setInterval(heartbeat, PING_MS);
if (state.token) start().catch(() => signOut());
