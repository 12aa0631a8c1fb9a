// Parley's chat page: plain JavaScript over the public API (REST + the chat WebSocket).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { token: localStorage.getItem("parley.token"), user: null, chat: null,
                socket: null, lastEventId: null, streaming: null, retry: 0 };

function notice(text) {
  const box = $("notice");
  box.textContent = text;
  box.hidden = !text;
  if (text) setTimeout(() => { if (box.textContent === text) box.hidden = true; }, 6000);
}

async function api(path, options = {}) {
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
    if (response.status === 401 && state.token) signOut();
    const detail = body && body.detail;
    const text = Array.isArray(detail) ? detail.map((d) => `${d.loc.slice(1).join(".")}: ${d.msg}`).join("; ") : detail;
    if (response.status === 429) throw failure(429, tooMany(text, response.headers.get("Retry-After")));
    throw failure(response.status, text || `Request failed (${response.status})`);
  }
  return body;
}

function failure(status, text) {
  return Object.assign(new Error(text), { status });
}

function tooMany(detail, retryAfter) {
  // The request rate limit's detail is the bare limit ("100 per 1 minute"); the stream limit's is a sentence.
  const why = /^\d+ per /.test(detail || "") ? `Too many requests (at most ${detail})` : (detail || "Too many requests");
  return retryAfter ? `${why}. Try again in ${retryAfter} s.` : `${why}.`;
}

async function signIn(register) {
  const username = $("username").value.trim(), password = $("password").value;
  try {
    if (register) await api("/api/v1/auth/register", { method: "POST",
      body: JSON.stringify({ email: $("email").value.trim(), username, password }) });
    const login = username.includes("@") ? { email: username } : { username };
    const tokens = await api("/api/v1/auth/login", { method: "POST", body: JSON.stringify({ ...login, password }) });
    state.token = tokens.access_token;
    localStorage.setItem("parley.token", state.token);
    await start();
  } catch (error) { notice(error.message); }
}

function signOut() {
  localStorage.removeItem("parley.token");
  state.token = null;
  if (state.socket) state.socket.close();
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
  if (state.socket) { state.socket.onclose = null; state.socket.close(); }
  state.chat = chat; state.lastEventId = null; state.streaming = null;
  $("chat-title").textContent = chat.title;
  $("content").disabled = $("send").disabled = false;
  const history = await api(`/api/v1/chat/chats/${chat.id}?limit=200`);
  $("messages").replaceChildren();
  history.messages.forEach(bubble);
  await loadChats();
  connect();
}

function connect() {
  const chat = state.chat;
  const query = new URLSearchParams({ token: state.token });
  if (state.lastEventId) query.set("last_event_id", state.lastEventId);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/api/v1/chat/chats/${chat.id}/ws?${query}`);
  state.socket = socket;
  $("connection").textContent = "connecting…";
  socket.onopen = () => { state.retry = 0; };
  socket.onmessage = (frame) => onEvent(JSON.parse(frame.data));
  socket.onclose = (closed) => {
    $("connection").textContent = "offline";
    if (state.chat !== chat) return;
    if (closed.code >= 4400 && closed.code < 4500) { notice(closed.reason || "Disconnected"); return; }
    // Reconnect from the last event seen: the server replays what was missed, once.
    const delay = Math.min(1000 * 2 ** state.retry++, 10000);
    setTimeout(() => { if (state.chat === chat) connect(); }, delay);
  };
}

function onEvent(event) {
  if (event.event_id) state.lastEventId = event.event_id;
  switch (event.type) {
    case "welcome": $("connection").textContent = "live"; break;
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
$("sign-out").onclick = signOut;
$("new-chat").onsubmit = createChat;
$("composer").onsubmit = send;
$("content").onkeydown = (key) => { if (key.key === "Enter" && !key.shiftKey) send(key); };
$("stop").onclick = stop;
$("notice").onclick = () => notice("");
if (state.token) start().catch(() => signOut());
