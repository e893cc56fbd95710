// The chatd web UI: plain JavaScript, no build step, nothing loaded from elsewhere.
// Live data comes from two EventSources: the chat list (/api/chats/watch) and the open
// chat (/api/chats/{id}/stream). When a stream drops, the browser reconnects on its own and
// sends Last-Event-ID (the cursor of the last event it received); the server resumes from
// there, so nothing is shown twice or missed. window.chatdDebug counts reconnections and
// checks the cursors (used by the browser test).
"use strict";

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
};

window.chatdDebug = { opens: 0, duplicates: 0, gaps: 0, events: 0, lastCursor: null, turnsEnded: 0 };

const state = {
  me: null,
  chats: new Map(),
  current: null, // chat id
  stream: null,
  watch: null,
  messages: new Map(), // id -> message
  preview: null, // { episode, blocks: [] }
  queue: [],
  status: null,
  lastError: null,
  models: [],
  actions: [], // open tool calls (action_required): { tool_call_id, tool_name, args, kind, deadline }
  endings: new Map(), // message id -> how the turn that ended after it ended (interrupted)
  found: null, // the ids a search or label filter found (null: no filter), in list order
  labelFilter: null, // "key:value" picked from a chat's label
  versions: new Map(), // edited message id -> its earlier versions: [{ revision, messages }]
  pending: [], // files uploaded for the next message: { id, name, media_type, url, preview }
};

async function api(method, path, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["content-type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const message = data && data.error ? data.error.message : response.statusText;
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return data;
}

function showError(where, error) {
  $(where).textContent = error ? String(error.message || error) : "";
}

// ----- sign-in ---------------------------------------------------------------------------

async function signIn(token) {
  const response = await fetch("/api/session", {
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
  });
  if (!response.ok) throw new Error("that token is not valid");
  localStorage.setItem("chatd-signed-in", "1");
}

// Who a token belongs to, without signing in with it.
async function whoIs(token) {
  const response = await fetch("/api/me", { headers: { authorization: `Bearer ${token}` } });
  if (!response.ok) throw new Error("that token is not valid");
  return response.json();
}

// A sign-in link for another account than the one signed in asks first: a link someone
// sent must not silently switch whose chats this browser shows (and writes to).
async function followTokenLink(token) {
  // Asked only where this browser signed in before: a fresh one has nobody to switch from.
  const current = localStorage.getItem("chatd-signed-in")
    ? await api("GET", "/api/me").catch(() => null)
    : null;
  if (current) {
    const linked = await whoIs(token);
    if (linked.user_id === current.user_id) return;
    const switchTo = window.confirm(
      `This link signs you in as "${linked.name || "another user"}". ` +
        `You are signed in as "${current.name || "user"}". Switch accounts?`,
    );
    if (!switchTo) return;
  }
  await signIn(token);
}

async function start() {
  const reopen = location.hash.match(/chat=([0-9a-f-]+)/);
  const match = location.hash.match(/token=([^&]+)/);
  if (match) {
    history.replaceState(null, "", location.pathname);
    try {
      await followTokenLink(decodeURIComponent(match[1]));
    } catch (error) {
      showError("login-error", error);
    }
  }
  try {
    state.me = await api("GET", "/api/me");
  } catch (error) {
    $("login").hidden = false;
    return;
  }
  $("login").hidden = true;
  $("app").hidden = false;
  $("me").textContent = `${state.me.name || "user"}${state.me.admin ? " (admin)" : ""}`;
  $("open-admin").hidden = !state.me.admin;
  $("cut").hidden = !state.me.admin;
  await loadModels();
  openWatch();
  if (reopen) openChat(reopen[1]);
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await signIn($("login-token").value.trim());
    location.reload();
  } catch (error) {
    showError("login-error", error);
  }
});

// ----- chat list (watch) -----------------------------------------------------------------

function openWatch() {
  const source = new EventSource("/api/chats/watch");
  state.watch = source;
  source.onopen = () => ($("watch-state").textContent = "live");
  source.onerror = () => ($("watch-state").textContent = "reconnecting…");
  const on = (type, handler) =>
    source.addEventListener(type, (event) => handler(JSON.parse(event.data)));
  on("created", (e) => state.chats.set(e.chat_id, e.chat));
  on("status_change", (e) => patchChat(e.chat_id, { status: e.status }));
  on("title_change", (e) => patchChat(e.chat_id, { title: e.title }));
  on("archived", (e) => patchChat(e.chat_id, { archived: e.archived }));
  on("deleted", (e) => {
    state.chats.delete(e.chat_id);
    if (state.current === e.chat_id) closeChat();
  });
  on("diff_status_change", (e) => {
    if (state.current === e.chat_id) renderDiff(e.diff_status);
  });
  // The cursor was older than the deletions the server remembers: the whole list follows.
  on("reset", () => state.chats.clear());
  for (const type of ["created", "status_change", "title_change", "archived", "deleted", "reset"]) {
    source.addEventListener(type, renderChatList);
  }
}

function patchChat(id, fields) {
  const chat = state.chats.get(id);
  if (chat) Object.assign(chat, fields);
  if (id === state.current) renderHeader();
}

function renderChatList() {
  const list = $("chat-list");
  list.replaceChildren();
  const archived = $("show-archived").checked;
  const chats = [...state.chats.values()]
    .filter((c) => Boolean(c.archived) === archived && !c.parent_chat_id)
    .filter((c) => state.found === null || state.found.includes(c.id))
    .sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
  for (const chat of chats) {
    const tags = Object.entries(chat.labels || {}).map(([key, value]) =>
      el("button", { type: "button", class: "label", text: `${key}:${value}`, onclick: (event) => {
        event.stopPropagation();
        state.labelFilter = `${key}:${value}`;
        runSearch();
      } }));
    const item = el(
      "li",
      { class: chat.id === state.current ? "selected" : "", "data-chat": chat.id },
      el("span", { class: "title", text: chat.title }),
      el("span", { class: `badge ${chat.status}`, text: chat.status }),
      ...tags,
    );
    item.addEventListener("click", () => openChat(chat.id));
    list.append(item);
  }
}
$("show-archived").addEventListener("change", () => runSearch());

// Search and label filter (BEHAVIOUR §18): the server finds the chats; the list shows them.
let searchTimer = null;
async function runSearch() {
  const text = $("search").value.trim();
  const filter = $("label-filter");
  filter.hidden = !state.labelFilter;
  filter.replaceChildren();
  if (state.labelFilter) {
    filter.append(`label ${state.labelFilter} `, el("button", { type: "button", text: "×", onclick: () => {
      state.labelFilter = null;
      runSearch();
    } }));
  }
  if (!text && !state.labelFilter) {
    state.found = null;
    renderChatList();
    return;
  }
  const params = new URLSearchParams({ limit: "1000", archived: String($("show-archived").checked) });
  if (text) params.set("q", text);
  if (state.labelFilter) params.set("labels", state.labelFilter);
  try {
    const { chats } = await api("GET", `/api/chats?${params}`);
    for (const chat of chats) state.chats.set(chat.id, chat);
    state.found = chats.map((c) => c.id);
    renderChatList();
  } catch (error) {
    showError("chat-error", error);
  }
}
$("search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(runSearch, 200);
});

$("labels-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const labels = {};
  for (const pair of $("chat-labels").value.split(",").map((p) => p.trim()).filter(Boolean)) {
    const at = pair.indexOf(":");
    if (at < 1) return showError("chat-error", `a label is key:value, not "${pair}"`);
    labels[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
  }
  try {
    const chat = await api("PATCH", `/api/chats/${state.current}`, { labels });
    state.chats.set(chat.id, chat);
    renderChatList();
    showError("chat-error", null);
  } catch (error) {
    showError("chat-error", error);
  }
});

// A new chat is created with its first message (so that its title comes from it).
$("new-chat").addEventListener("click", () => {
  closeChat();
  $("admin").hidden = true;
  $("usage").hidden = true;
  $("welcome").hidden = true;
  $("chat").hidden = false;
  $("chat-title").textContent = "New chat";
  $("chat-status").textContent = "";
  $("chat-cost").textContent = "";
  for (const id of ["timeline", "preview", "queue-list"]) $(id).replaceChildren();
  $("queue").hidden = true;
  $("diff").hidden = true;
  for (const button of document.querySelectorAll("#chat-header button")) button.disabled = true;
  $("message").focus();
  renderChatList();
});

// ----- one chat (subscribe) --------------------------------------------------------------

function parseCursor(text) {
  const [message, episode, seq, history = 0] = text.split(".").map(Number);
  return [history, message, episode, seq];
}

function compareCursors(a, b) {
  for (let i = 0; i < 4; i += 1) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  return 0;
}

// Events that move the cursor are never delivered twice; parts of one episode are numbered
// without gaps. Count any breach (the browser test asserts there is none).
function checkCursor(type, cursorText) {
  const debug = window.chatdDebug;
  debug.events += 1;
  const advancing = ["message", "message_part", "turn_started", "turn_ended", "history_rewritten"];
  if (!advancing.includes(type)) return;
  const cursor = parseCursor(cursorText);
  const last = debug.lastCursor;
  if (last && type !== "history_rewritten" && compareCursors(cursor, last) <= 0) debug.duplicates += 1;
  if (last && type === "message_part" && cursor[0] === last[0] && cursor[1] === last[1] &&
      cursor[2] === last[2] && cursor[3] !== last[3] + 1) debug.gaps += 1;
  debug.lastCursor = cursor;
}

function closeChat() {
  if (state.stream) state.stream.close();
  state.stream = null;
  state.current = null;
  state.status = null;
  $("chat").hidden = true;
  $("welcome").hidden = false;
  history.replaceState(null, "", location.pathname);
}

function openChat(id) {
  if (state.stream) state.stream.close();
  $("admin").hidden = true;
  $("usage").hidden = true;
  $("welcome").hidden = true;
  $("chat").hidden = false;
  state.current = id;
  // A reload reopens this chat.
  history.replaceState(null, "", `${location.pathname}#chat=${id}`);
  state.endings = new Map();
  state.messages = new Map();
  state.versions = new Map();
  loadVersions(id);
  state.preview = null;
  state.queue = [];
  state.actions = [];
  window.chatdDebug.lastCursor = null;
  loadAsk(id);
  showError("chat-error", null);
  renderChatList();
  renderHeader();
  renderTimeline();
  renderQueue();
  loadDiff();
  loadCost(id);
  const source = new EventSource(`/api/chats/${id}/stream`);
  state.stream = source;
  source.onopen = () => (window.chatdDebug.opens += 1);
  const on = (type, handler) =>
    source.addEventListener(type, (event) => {
      // "error" is also the name of EventSource's own connection errors (no data).
      if (state.stream !== source || typeof event.data !== "string") return;
      checkCursor(type, event.lastEventId);
      handler(JSON.parse(event.data));
    });
  on("status", (e) => {
    state.status = e.status;
    state.lastError = e.last_error;
    if (e.status !== "requires_action") state.actions = [];
    patchChat(id, { status: e.status });
    renderHeader();
    renderTimeline();
  });
  on("action_required", (e) => {
    state.actions = e.calls;
    renderTimeline();
  });
  on("message", (e) => {
    state.messages.set(e.message.id, e.message);
    if (e.message.role === "assistant") state.preview = null;
    renderTimeline();
  });
  on("message_part", (e) => applyPart(parseCursor(e.cursor)[2], e.part));
  on("preview_reset", () => {
    state.preview = null;
    renderPreview();
  });
  on("queue_update", (e) => {
    state.queue = e.queue;
    renderQueue();
  });
  on("error", (e) => showError("chat-error", e.message));
  on("retry", (e) => showError("chat-error", `retrying in ${Math.round(e.delay_ms / 1000)}s: ${e.error}`));
  on("turn_started", () => showError("chat-error", null));
  on("turn_ended", (e) => {
    window.chatdDebug.turnsEnded += 1;
    loadCost(id);
    if (e.outcome === "interrupted") {
      const last = Math.max(0, ...state.messages.keys());
      state.endings.set(last, "interrupted");
      renderTimeline();
    }
  });
  on("history_rewritten", (e) => {
    for (const key of [...state.messages.keys()]) if (key > e.after_message_id) state.messages.delete(key);
    state.preview = null;
    renderTimeline();
    loadVersions(id);
  });
}

// Earlier versions (BEHAVIOUR §18): an edit keeps what it replaced. The deleted messages of one
// revision are the edited message's old content (the lowest id) and the answers that followed.
async function loadVersions(id) {
  let messages;
  try {
    ({ messages } = await api("GET", `/api/chats/${id}/messages?include_deleted=true`));
  } catch {
    return;
  }
  if (state.current !== id) return;
  const byRevision = new Map();
  for (const message of messages.filter((m) => m.deleted)) {
    const rows = byRevision.get(message.deleted.revision) || [];
    rows.push(message);
    byRevision.set(message.deleted.revision, rows);
  }
  const versions = new Map();
  for (const [revision, rows] of [...byRevision].sort((a, b) => a[0] - b[0])) {
    const edited = Math.min(...rows.map((m) => m.id));
    versions.set(edited, [...(versions.get(edited) || []), { revision, messages: rows }]);
  }
  state.versions = versions;
  renderTimeline();
}

function renderVersions(box, versions) {
  const panel = el("div", { class: "versions" });
  versions.forEach((version, index) => {
    const entry = el("div", { class: "version", "data-revision": String(version.revision) });
    entry.append(el("div", { class: "hint", text: `Version ${index + 1} of ${versions.length + 1}` }));
    for (const message of version.messages) {
      if (message.role === "tool" || message.role === "system") continue;
      const text = message.content.filter((p) => p.type === "text").map((p) => p.text).join("\n");
      entry.append(el("div", { class: `msg ${message.role} old`, text: text || "(tool calls)" }));
    }
    panel.append(entry);
  });
  box.append(panel);
}

function applyPart(episode, part) {
  if (!state.preview || state.preview.episode !== episode) state.preview = { episode, blocks: [] };
  const blocks = state.preview.blocks;
  const find = (kind, id) => blocks.find((b) => b.kind === kind && b.id === id);
  switch (part.type) {
    case "text-start":
    case "reasoning-start":
      blocks.push({ kind: part.type.split("-")[0], id: part.id, text: "" });
      break;
    case "text-delta":
    case "reasoning-delta": {
      const block = find(part.type.split("-")[0], part.id);
      if (block) block.text += part.delta;
      break;
    }
    case "tool-input-start":
      blocks.push({ kind: "tool", id: part.id, name: part.tool_name, input: "" });
      break;
    case "tool-input-delta": {
      const block = find("tool", part.id);
      if (block) block.input += part.delta;
      break;
    }
    case "tool-call": {
      const block = find("tool", part.id);
      if (block) block.input = JSON.stringify(part.args);
      else blocks.push({ kind: "tool", id: part.id, name: part.tool_name, input: JSON.stringify(part.args) });
      break;
    }
    default:
      break;
  }
  renderPreview();
}

// ----- rendering -------------------------------------------------------------------------

function renderHeader() {
  const chat = state.chats.get(state.current);
  if (!chat) return;
  for (const button of document.querySelectorAll("#chat-header button")) button.disabled = false;
  $("diff").hidden = false;
  $("chat-title").textContent = chat.title;
  const status = state.status || chat.status;
  $("chat-status").textContent = status;
  $("chat-status").className = `badge ${status}`;
  const busy = status === "running" || status === "pending" || status === "requires_action";
  $("interrupt").disabled = !busy;
  $("pause").disabled = status === "paused" || status === "completed";
  $("resume").disabled = status !== "paused";
  $("archive").textContent = chat.archived ? "Unarchive" : "Archive";
  if (document.activeElement !== $("chat-labels")) {
    $("chat-labels").value = Object.entries(chat.labels || {}).map(([k, v]) => `${k}:${v}`).join(", ");
  }
  if (status === "error" && state.lastError) showError("chat-error", state.lastError);
}

function toolResults() {
  const results = new Map();
  for (const message of state.messages.values())
    for (const part of message.content)
      if (part.type === "tool-result") results.set(part.tool_call_id, part);
  return results;
}

// A file part (BEHAVIOUR §19): a stored image is shown (downloaded with the session, so
// only its owner sees it), any other file is a link.
function renderFile(part) {
  const name = part.name || part.filename || part.media_type;
  const url = part.attachment_id ? `/api/files/${part.attachment_id}` : part.data ? `data:${part.media_type};base64,${part.data}` : null;
  if (!url) return el("div", { class: "file", text: `📎 ${name}` });
  const link = el("a", { class: "file", href: url, target: "_blank", rel: "noopener", title: name });
  if ((part.media_type || "").startsWith("image/")) link.append(el("img", { class: "attachment", src: url, alt: name }));
  else link.append(`📎 ${name}`);
  return link;
}

function renderToolCall(call, result) {
  const card = el("div", { class: "tool" });
  card.append(el("div", { class: "tool-name", text: `⚙ ${call.name}` }));
  card.append(el("pre", { class: "tool-args", text: call.input }));
  const open = call.id && state.actions.find((a) => a.tool_call_id === call.id);
  if (result) {
    card.append(el("pre", { class: result.is_error ? "tool-result error" : "tool-result", text: resultText(result.result) }));
    const attached = (result.result && Array.isArray(result.result.attachments)) ? result.result.attachments : [];
    for (const file of attached) card.append(renderFile({ ...file, type: "file" }));
  } else if (open) {
    card.append(renderDecision(open));
  } else {
    card.append(el("div", { class: "tool-running", text: "running…" }));
  }
  return card;
}

// A tool's result as text: strings as they are (a command's output keeps its lines), the
// fields of an object one per line, the output field last.
function resultText(value) {
  if (typeof value === "string") return value;
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const show = (v) => (typeof v === "string" ? v : JSON.stringify(v));
    const entries = Object.entries(value).filter(([key]) => key !== "output");
    const lines = entries.map(([key, v]) => `${key}: ${show(v)}`);
    if (typeof value.output === "string") lines.push(value.output);
    return lines.join("\n");
  }
  return JSON.stringify(value, null, 2);
}

// A call that waits (BEHAVIOUR §16): approve, deny with a reason, or approve edited arguments;
// a client tool's call takes its result here.
function renderDecision(open) {
  const box = el("div", { class: "decision", "data-call": open.tool_call_id });
  const decide = async (decision) => {
    try {
      await api("POST", `/api/chats/${state.current}/tool-calls`, { decisions: [{ tool_call_id: open.tool_call_id, ...decision }] });
      showError("chat-error", null);
    } catch (error) {
      showError("chat-error", error);
    }
  };
  const reason = el("input", { class: "reason", placeholder: "reason (optional)" });
  const deny = el("button", { type: "button", class: "deny", text: "Deny", onclick: () => decide({ decision: "deny", reason: reason.value || undefined }) });
  if (open.kind === "client") {
    const output = el("textarea", { class: "client-output", rows: "2", placeholder: "the result, as JSON or text" });
    const send = el("button", { type: "button", class: "send-result", text: "Send result", onclick: () => {
      let value = output.value;
      try { value = JSON.parse(value); } catch { /* plain text */ }
      decide({ decision: "result", output: value, is_error: false });
    } });
    box.append(el("div", { class: "hint", text: "The model waits for your device's answer." }), output, el("div", { class: "row" }, send, deny, reason));
    return box;
  }
  const approve = el("button", { type: "button", class: "approve", text: "Approve", onclick: () => decide({ decision: "approve" }) });
  const editArgs = el("button", { type: "button", class: "edit-args", text: "Edit", onclick: () => {
    const area = el("textarea", { class: "args", rows: "3" });
    area.value = JSON.stringify(open.args, null, 2);
    const save = el("button", { type: "button", class: "approve-edited", text: "Approve edited", onclick: () => {
      let args;
      try { args = JSON.parse(area.value); } catch (error) { showError("chat-error", `not JSON: ${error.message}`); return; }
      decide({ decision: "approve", args });
    } });
    box.replaceChildren(area, el("div", { class: "row" }, save, deny, reason));
  } });
  const due = new Date(open.deadline).toLocaleString();
  box.append(el("div", { class: "hint", text: `Waiting for your approval (until ${due}).` }), el("div", { class: "row" }, approve, editArgs, deny, reason));
  return box;
}

function renderMessage(message, results) {
  if (message.role === "tool" || message.role === "system") return null;
  const box = el("div", { class: `msg ${message.role}`, "data-message": String(message.id) });
  for (const part of message.content) {
    if (part.type === "text") box.append(el("div", { class: "text", text: part.text }));
    else if (part.type === "reasoning" && part.text) box.append(el("div", { class: "reasoning", text: part.text }));
    else if (part.type === "tool-call")
      box.append(renderToolCall({ id: part.tool_call_id, name: part.tool_name, input: JSON.stringify(part.args) }, results.get(part.tool_call_id)));
    else if (part.type === "file") box.append(renderFile(part));
  }
  // Fork from here (BEHAVIOUR §18): a new chat with the history up to this message.
  box.append(el("button", { class: "fork", type: "button", text: "Fork from here", onclick: () => forkAt(message) }));
  if (message.role === "user") {
    box.append(el("button", { class: "edit", type: "button", text: "Edit", onclick: () => startEdit(box, message) }));
    const versions = state.versions.get(message.id);
    if (versions) {
      const label = `Earlier versions (${versions.length})`;
      box.append(el("button", { class: "versions-toggle", type: "button", text: label, onclick: () => {
        const open = box.querySelector(".versions");
        if (open) open.remove();
        else renderVersions(box, versions);
      } }));
    }
  }
  return box;
}

function renderTimeline() {
  const timeline = $("timeline");
  const results = toolResults();
  timeline.replaceChildren();
  for (const id of [...state.messages.keys()].sort((a, b) => a - b)) {
    const node = renderMessage(state.messages.get(id), results);
    if (node) timeline.append(node);
    if (state.endings.get(id) === "interrupted") {
      timeline.append(el("div", { class: "turn-end interrupted", text: "interrupted: the answer stops here" }));
    }
  }
  // A failed turn says why right where it stopped.
  if (state.status === "error" && state.lastError) {
    timeline.append(el("div", { class: "turn-end failed", text: `The turn failed: ${state.lastError}` }));
  }
  renderPreview();
}

function renderPreview() {
  const preview = $("preview");
  preview.replaceChildren();
  if (!state.preview) return;
  const box = el("div", { class: "msg assistant streaming" });
  for (const block of state.preview.blocks) {
    if (block.kind === "text") box.append(el("div", { class: "text", text: block.text }));
    else if (block.kind === "reasoning") box.append(el("div", { class: "reasoning", text: block.text }));
    else box.append(renderToolCall(block, null));
  }
  preview.append(box);
  preview.scrollIntoView({ block: "end" });
}

async function forkAt(message) {
  try {
    const chat = await api("POST", `/api/chats/${state.current}/fork`, { message_id: message.id });
    state.chats.set(chat.id, chat);
    openChat(chat.id);
  } catch (error) {
    showError("chat-error", error);
  }
}

function startEdit(box, message) {
  const text = message.content.filter((p) => p.type === "text").map((p) => p.text).join("\n");
  const area = el("textarea", { rows: "3" });
  area.value = text;
  const save = el("button", { type: "button", text: "Save and re-run" });
  save.addEventListener("click", async () => {
    try {
      await api("PATCH", `/api/chats/${state.current}/messages/${message.id}`, { content: area.value });
    } catch (error) {
      showError("chat-error", error);
    }
  });
  const cancel = el("button", { type: "button", text: "Cancel", onclick: renderTimeline });
  box.replaceChildren(area, el("div", { class: "row" }, save, cancel));
}

// The demo's per-chat "ask before running tools" switch (absent on a server without one).
async function loadAsk(id) {
  const box = $("ask");
  try {
    const ask = await api("GET", `/api/chats/${id}/ask`);
    if (state.current !== id) return;
    box.checked = ask.on;
    box.title = `ask before: ${ask.tools.join(", ")}`;
    $("ask-label").hidden = false;
  } catch {
    $("ask-label").hidden = true;
  }
}
$("ask").addEventListener("change", async () => {
  try {
    await api("PUT", `/api/chats/${state.current}/ask`, { on: $("ask").checked });
  } catch (error) {
    showError("chat-error", error);
  }
});

function renderQueue() {
  const list = $("queue-list");
  list.replaceChildren();
  $("queue").hidden = state.queue.length === 0;
  for (const queued of state.queue) {
    const text = queued.content.filter((p) => p.type === "text").map((p) => p.text).join(" ");
    list.append(
      el(
        "li",
        {},
        el("span", { text }),
        el("button", { type: "button", text: "Send now", onclick: () => queueAction("POST", `${queued.id}/promote`) }),
        el("button", { type: "button", text: "Remove", onclick: () => queueAction("DELETE", `${queued.id}`) }),
      ),
    );
  }
}

async function queueAction(method, path) {
  try {
    await api(method, `/api/chats/${state.current}/queue/${path}`);
  } catch (error) {
    showError("chat-error", error);
  }
}

// ----- actions ---------------------------------------------------------------------------

// ----- attachments (BEHAVIOUR §19) ------------------------------------------------------
// Files are uploaded as soon as they are picked, pasted or dropped (the server sniffs their
// type and refuses what it does not take); the message then refers to them by id.

async function uploadFiles(files) {
  for (const file of files) {
    const query = new URLSearchParams({ name: file.name || "pasted" });
    if (state.current) query.set("chat_id", state.current);
    try {
      const response = await fetch(`/api/files?${query}`, { method: "POST", body: file });
      const data = await response.json().catch(() => null);
      if (!response.ok) throw new Error(data && data.error ? data.error.message : response.statusText);
      const preview = data.media_type.startsWith("image/") ? URL.createObjectURL(file) : null;
      // No clearing of the error line here: a refused upload next to this one keeps its
      // reason on screen (the next send clears it).
      state.pending.push({ ...data, preview });
    } catch (error) {
      showError("chat-error", error);
    }
  }
  renderAttachments();
}

function renderAttachments() {
  const box = $("attachments");
  box.replaceChildren();
  for (const file of state.pending) {
    const chip = el("div", { class: "pending-file", "data-file": file.id, title: `${file.name} (${file.media_type}, ${file.size} bytes)` });
    if (file.preview) chip.append(el("img", { class: "attachment-preview", src: file.preview, alt: file.name }));
    else chip.append(el("span", { text: `📎 ${file.name}` }));
    chip.append(el("button", { type: "button", class: "remove", text: "×", title: "Remove", onclick: () => {
      state.pending = state.pending.filter((f) => f.id !== file.id);
      if (file.preview) URL.revokeObjectURL(file.preview);
      renderAttachments();
    } }));
    box.append(chip);
  }
}

$("attach").addEventListener("click", () => $("file-input").click());
$("file-input").addEventListener("change", () => {
  uploadFiles([...$("file-input").files]);
  $("file-input").value = "";
});
$("message").addEventListener("paste", (event) => {
  const files = [...(event.clipboardData ? event.clipboardData.files : [])];
  if (files.length) {
    event.preventDefault();
    uploadFiles(files);
  }
});
$("composer").addEventListener("dragover", (event) => {
  event.preventDefault();
  $("composer").classList.add("dropping");
});
$("composer").addEventListener("dragleave", () => $("composer").classList.remove("dropping"));
$("composer").addEventListener("drop", (event) => {
  event.preventDefault();
  $("composer").classList.remove("dropping");
  uploadFiles([...event.dataTransfer.files]);
});

$("composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("message").value;
  if (!text.trim() && !state.pending.length) return;
  const parts = text.trim() ? [{ type: "text", text }] : [];
  for (const file of state.pending)
    parts.push({ type: "file", attachment_id: file.id, media_type: file.media_type, name: file.name });
  const model = $("model").value || undefined;
  try {
    if (!state.current) {
      const chat = await api("POST", "/api/chats", { message: parts, model_config_id: model });
      state.chats.set(chat.id, chat);
      openChat(chat.id);
    } else {
      const body = { content: parts, busy: $("busy").value, model_config_id: model };
      await api("POST", `/api/chats/${state.current}/messages`, body);
    }
    $("message").value = "";
    state.pending = [];
    renderAttachments();
    showError("chat-error", null);
  } catch (error) {
    showError("chat-error", error);
  }
});
$("message").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
});

function action(button, run) {
  $(button).addEventListener("click", async () => {
    try {
      showError("chat-error", null);
      await run();
    } catch (error) {
      showError("chat-error", error);
    }
  });
}
action("interrupt", () => api("POST", `/api/chats/${state.current}/interrupt`));
action("pause", () => api("POST", `/api/chats/${state.current}/pause`));
action("resume", () => api("POST", `/api/chats/${state.current}/resume`));
action("complete", () => api("POST", `/api/chats/${state.current}/complete`));
action("compact", () => api("POST", `/api/chats/${state.current}/compact`));
action("cut", () => api("POST", "/api/admin/cut-streams"));
action("archive", () => {
  const chat = state.chats.get(state.current);
  return api("PATCH", `/api/chats/${state.current}`, { archived: !chat.archived });
});
action("delete", async () => {
  if (!confirm("Delete this chat?")) return;
  await api("DELETE", `/api/chats/${state.current}`);
  closeChat();
});
$("chat-title").addEventListener("click", async () => {
  const chat = state.chats.get(state.current);
  const title = prompt("Title", chat.title);
  if (title == null) return;
  try {
    await api("PATCH", `/api/chats/${state.current}`, { title });
  } catch (error) {
    showError("chat-error", error);
  }
});

// ----- diff status -----------------------------------------------------------------------

async function loadDiff() {
  try {
    renderDiff(await api("GET", `/api/chats/${state.current}/diff`));
  } catch (error) {
    renderDiff(null);
  }
}

function renderDiff(diff) {
  const body = $("diff-body");
  body.replaceChildren();
  if (!diff) {
    $("diff-summary").textContent = "(no reference reported)";
    return;
  }
  const pr = diff.url ? el("a", { href: diff.url, target: "_blank", rel: "noopener", text: diff.url }) : el("span", { text: "no pull request found yet" });
  $("diff-summary").textContent = diff.pull_request_state ? `(${diff.pull_request_state})` : "";
  body.append(
    el("div", {}, pr),
    el("div", { text: `${diff.git_remote_origin || ""} ${diff.git_branch || ""}` }),
    el("div", { text: `+${diff.additions || 0} −${diff.deletions || 0} in ${diff.changed_files || 0} files` }),
  );
}

$("diff-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const diff = await api("POST", `/api/chats/${state.current}/diff`, {
      remote: $("diff-remote").value,
      branch: $("diff-branch").value,
    });
    renderDiff(diff);
  } catch (error) {
    showError("chat-error", error);
  }
});

// ----- models and admin ------------------------------------------------------------------

async function loadModels() {
  state.models = await api("GET", "/api/model-configs");
  const select = $("model");
  select.replaceChildren(el("option", { value: "", text: "default" }));
  for (const config of state.models.filter((c) => c.enabled && !c.deleted)) {
    select.append(el("option", { value: config.id, text: config.display_name || config.model }));
  }
}

$("open-admin").addEventListener("click", openAdmin);
$("close-admin").addEventListener("click", () => {
  $("admin").hidden = true;
  if (state.current) $("chat").hidden = false;
  else $("welcome").hidden = false;
});

async function openAdmin() {
  $("chat").hidden = true;
  $("welcome").hidden = true;
  $("usage").hidden = true;
  $("admin").hidden = false;
  showError("admin-error", null);
  try {
    const [providers, models] = await Promise.all([api("GET", "/api/providers"), api("GET", "/api/model-configs")]);
    const ptable = $("providers");
    ptable.replaceChildren(el("tr", {}, ...["kind", "base URL", "key", "enabled", ""].map((h) => el("th", { text: h }))));
    for (const p of providers) {
      ptable.append(
        el(
          "tr",
          {},
          el("td", { text: p.provider }),
          el("td", { text: p.base_url || "(default)" }),
          el("td", { text: p.has_api_key ? "stored" : "from env" }),
          el("td", {}, toggle(p.enabled, (enabled) => api("PATCH", `/api/providers/${p.provider}`, { enabled }))),
          el("td", {}, el("button", { type: "button", text: "Delete", onclick: () => adminDo(() => api("DELETE", `/api/providers/${p.provider}`)) })),
        ),
      );
    }
    const mtable = $("models");
    mtable.replaceChildren(el("tr", {}, ...["provider", "model", "context", "prices per M (in, out)", "default", "enabled", ""].map((h) => el("th", { text: h }))));
    for (const m of models.filter((m) => !m.deleted)) {
      mtable.append(
        el(
          "tr",
          {},
          el("td", { text: m.provider }),
          el("td", { text: m.model }),
          el("td", { text: String(m.context_limit) }),
          el("td", { class: "prices" }, ...priceEditor(m)),
          el("td", { text: m.is_default ? "yes" : "" }),
          el("td", {}, toggle(m.enabled, (enabled) => api("PATCH", `/api/model-configs/${m.id}`, { enabled }))),
          el("td", {}, el("button", { type: "button", text: "Delete", onclick: () => adminDo(() => api("DELETE", `/api/model-configs/${m.id}`)) })),
        ),
      );
    }
  } catch (error) {
    showError("admin-error", error);
  }
}

function toggle(checked, change) {
  const box = el("input", { type: "checkbox" });
  box.checked = checked;
  box.addEventListener("change", () => adminDo(() => change(box.checked)));
  return box;
}

async function adminDo(run) {
  try {
    await run();
    await loadModels();
    await openAdmin();
  } catch (error) {
    showError("admin-error", error);
  }
}

$("provider-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const body = { provider: $("provider-kind").value };
  if ($("provider-url").value) body.base_url = $("provider-url").value;
  if ($("provider-key").value) body.api_key = $("provider-key").value;
  $("provider-key").value = "";
  adminDo(() => api("POST", "/api/providers", body));
});

$("model-form").addEventListener("submit", (event) => {
  event.preventDefault();
  adminDo(() =>
    api("POST", "/api/model-configs", {
      provider: $("model-provider").value,
      model: $("model-name").value,
      context_limit: Number($("model-context").value),
      is_default: $("model-default").checked,
      ...pricesFrom($("model-price-in").value, $("model-price-out").value),
    }),
  );
});

// ----- usage and cost (BEHAVIOUR §17) ------------------------------------------------------

// Micro-units as an amount: 1234 → "0.001234".
const money = (micros) => (micros / 1e6).toFixed(micros >= 1e6 ? 2 : 6);
// A price per million tokens as typed ("2.50") in micro-units.
const micros = (typed) => Math.round(Number(typed) * 1e6);

function pricesFrom(input, output) {
  if (input === "" && output === "") return {};
  const [i, o] = [micros(input || 0), micros(output || 0)];
  return { prices: { input: i, output: o, cache_read: i, cache_write: i } };
}

function priceEditor(config) {
  const current = config.prices;
  const input = el("input", { type: "number", min: "0", step: "0.01", class: "price-in", value: current ? String(current.input / 1e6) : "" });
  const output = el("input", { type: "number", min: "0", step: "0.01", class: "price-out", value: current ? String(current.output / 1e6) : "" });
  const save = el("button", {
    type: "button",
    text: "Save",
    class: "save-prices",
    onclick: () => {
      const body = input.value === "" && output.value === "" ? { prices: null } : pricesFrom(input.value, output.value);
      adminDo(() => api("PATCH", `/api/model-configs/${config.id}`, body));
    },
  });
  return [input, output, save];
}

async function loadCost(id) {
  try {
    const chat = await api("GET", `/api/chats/${id}`);
    if (state.current !== id) return;
    const spent = chat.spent || { calls: 0, tokens: 0, cost_micros: 0 };
    $("chat-cost").textContent = spent.calls ? `${spent.calls} calls · ${spent.tokens} tokens · ${money(spent.cost_micros)}` : "";
    $("chat-cost").dataset.costMicros = String(spent.cost_micros);
  } catch (error) {
    showError("chat-error", error);
  }
}

$("open-usage").addEventListener("click", openUsage);
$("close-usage").addEventListener("click", () => {
  $("usage").hidden = true;
  if (state.current) $("chat").hidden = false;
  else $("welcome").hidden = false;
});

async function openUsage() {
  for (const id of ["chat", "welcome", "admin"]) $(id).hidden = true;
  $("usage").hidden = false;
  showError("usage-error", null);
  const from = new Date(Date.now() - 13 * 86400000);
  from.setUTCHours(0, 0, 0, 0);
  try {
    const since = encodeURIComponent(from.toISOString());
    const { buckets } = await api("GET", `/api/usage?group=day_and_model&from=${since}`);
    drawChart(buckets, from);
    const { buckets: byModel } = await api("GET", `/api/usage?group=model&from=${since}`);
    const table = $("usage-models");
    table.replaceChildren(el("tr", {}, ...["model", "calls", "input tokens", "output tokens", "cost"].map((h) => el("th", { text: h }))));
    for (const b of byModel) {
      const swatch = el("span", { class: "swatch" });
      swatch.style.background = colour(b.model_config_id);
      table.append(el("tr", {}, el("td", {}, swatch, b.model || "?"),
        el("td", { text: String(b.calls) }), el("td", { text: String(b.input_tokens) }), el("td", { text: String(b.output_tokens) }),
        el("td", { text: money(b.cost_micros) + (b.unpriced_calls ? ` (+${b.unpriced_calls} unpriced)` : "")
          + (b.estimated_calls ? ` (${b.estimated_calls} estimated: cut before the provider said)` : "") })));
    }
    $("usage-admin").hidden = !state.me.admin;
    if (state.me.admin) {
      const { buckets: byOwner } = await api("GET", `/api/usage?group=owner&from=${since}`);
      const owners = $("usage-owners");
      owners.replaceChildren(el("tr", {}, ...["user", "calls", "tokens", "cost"].map((h) => el("th", { text: h }))));
      for (const b of byOwner) {
        const tokens = b.input_tokens + b.output_tokens + b.cache_read_tokens + b.cache_write_tokens;
        owners.append(el("tr", {}, el("td", { text: b.owner_id }), el("td", { text: String(b.calls) }), el("td", { text: String(tokens) }), el("td", { text: money(b.cost_micros) })));
      }
    }
  } catch (error) {
    showError("usage-error", error);
  }
}

// A stable colour per model config.
function colour(id) {
  let hash = 0;
  for (const c of String(id)) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
  return `hsl(${hash % 360}, 60%, 55%)`;
}

// Stacked bars: one per day, a segment per model, height by cost (by tokens when nothing is
// priced). Drawn as SVG in the page: no library, no CDN.
function drawChart(buckets, from) {
  const days = [...Array(14).keys()].map((n) => new Date(from.getTime() + n * 86400000).toISOString().slice(0, 10));
  const priced = buckets.some((b) => b.cost_micros > 0);
  const value = (b) => (priced ? b.cost_micros : b.input_tokens + b.output_tokens + b.cache_read_tokens + b.cache_write_tokens);
  const totals = days.map((day) => buckets.filter((b) => b.day === day).reduce((sum, b) => sum + value(b), 0));
  const max = Math.max(1, ...totals);
  const [width, height, left, bottom] = [700, 220, 60, 30];
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", priced ? "cost per day by model" : "tokens per day by model");
  const node = (tag, attrs, text) => {
    const n = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
    if (text !== undefined) n.textContent = text;
    svg.append(n);
    return n;
  };
  const plot = height - bottom - 10;
  const step = (width - left - 10) / days.length;
  node("text", { x: 4, y: 14 }, priced ? money(max) : `${max} tokens`);
  node("text", { x: 4, y: plot + 10 }, "0");
  let total = 0;
  days.forEach((day, i) => {
    let y = plot + 10;
    for (const b of buckets.filter((x) => x.day === day)) {
      const h = (value(b) / max) * plot;
      y -= h;
      total += b.cost_micros;
      const bar = node("rect", { class: "bar", x: left + i * step + 2, y, width: step - 4, height: Math.max(h, 0.5), fill: colour(b.model_config_id), "data-day": day, "data-model": b.model || "" });
      const title = document.createElementNS(ns, "title");
      title.textContent = `${day} ${b.model}: ${b.calls} calls, ${money(b.cost_micros)}`;
      bar.append(title);
    }
    if (i % 2 === 0) node("text", { x: left + i * step, y: height - 10 }, day.slice(5));
  });
  $("usage-chart").replaceChildren(svg);
  $("usage-chart").dataset.costMicros = String(total);
}

start();
