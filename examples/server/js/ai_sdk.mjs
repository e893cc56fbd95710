// The Vercel AI SDK (`ai`) as a client of chatd's /ai/chat endpoints: a turn that waits for
// approvals (approved once, denied once, across a reload that resumes the waiting state), a
// client tool answered with addToolOutput, a turn dropped mid-stream and resumed through the
// transport's reconnectToStream (what useChat's `resume` calls), an edit by messageId (before
// and after a reload, with the client's message ids kept), a file sent with a message,
// stop() then a new message, and a stream the server cuts, then resumed; the final message
// parts are checked against what chatd stored. Prints what it saw; exits non-zero on a
// failure.
//
// Usage: CHATD_URL=http://127.0.0.1:8080 CHATD_TOKEN=... node ai_sdk.mjs
import {
  AbstractChat,
  DefaultChatTransport,
  lastAssistantMessageIsCompleteWithApprovalResponses,
  lastAssistantMessageIsCompleteWithToolCalls,
  readUIMessageStream,
} from "ai";
import assert from "node:assert/strict";

const url = process.env.CHATD_URL;
const token = process.env.CHATD_TOKEN;
assert.ok(url && token, "CHATD_URL and CHATD_TOKEN are required");
const headers = { authorization: `Bearer ${token}` };

async function rest(method, path, body) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { ...headers, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${await response.clone().text()}`);
  return response.status === 204 ? null : response.json();
}

const transport = new DefaultChatTransport({ api: `${url}/ai/chat`, headers });
const user = (id, text) => ({ id, role: "user", parts: [{ type: "text", text }] });
const textOf = (message, type = "text") =>
  message.parts.filter((p) => p.type === type).map((p) => p.text).join("");

async function lastAssistantText(chatId) {
  const { messages } = await rest("GET", `/api/chats/${chatId}/messages`);
  const last = messages.filter((m) => m.role === "assistant").at(-1);
  return last.content.filter((p) => p.type === "text").map((p) => p.text).join("");
}

// 1. Tools that wait (BEHAVIOUR §16), through the SDK's own chat state (AbstractChat, what
// useChat wraps): the demo asks before write_file and execute. The first approval request is
// read, then the page "reloads": a second chat object resumes the waiting turn from the
// server, approves write_file, and denies execute with a reason.
class NodeChat extends AbstractChat {
  constructor(init) {
    let messages = init.messages ?? [];
    const state = {
      status: "ready",
      error: undefined,
      get messages() { return messages; },
      set messages(next) { messages = next; },
      pushMessage: (message) => { messages = messages.concat(message); },
      popMessage: () => { messages = messages.slice(0, -1); },
      replaceMessage: (index, message) => { messages = [...messages.slice(0, index), message, ...messages.slice(index + 1)]; },
      snapshot: (thing) => structuredClone(thing),
    };
    super({ ...init, state });
  }
}
const until = async (what, check, timeout = 30000) => {
  const deadline = Date.now() + timeout;
  while (!check()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};
const toolPart = (chat, name) => chat.lastMessage?.parts.find((p) => p.type === "dynamic-tool" && p.toolName === name);
const describe = (message) => message.parts.map((p) => p.type + (p.toolName ? `:${p.toolName}:${p.state}` : "")).join(", ");

const toolChat = (await rest("POST", "/api/chats", {})).id;
const asking = new NodeChat({ id: toolChat, transport, sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithApprovalResponses });
await asking.sendMessage({ text: "please write a file with this sentence" });
assert.equal(toolPart(asking, "write_file")?.state, "approval-requested", describe(asking.lastMessage));
assert.ok(textOf(asking.lastMessage, "reasoning").startsWith("The person wrote"), "reasoning streamed");
const waiting = await rest("GET", `/api/chats/${toolChat}`);
assert.equal(waiting.status, "requires_action");
console.log(`waiting turn: ${describe(asking.lastMessage)}`);

const reloaded = new NodeChat({ id: toolChat, transport, sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithApprovalResponses });
await reloaded.resumeStream();
const asked = toolPart(reloaded, "write_file");
assert.equal(asked?.state, "approval-requested", `the reload resumed the waiting state: ${reloaded.lastMessage && describe(reloaded.lastMessage)}`);
await reloaded.addToolApprovalResponse({ id: asked.approval.id, approved: true });
await until("the execute approval request", () => reloaded.status === "ready" && toolPart(reloaded, "execute")?.state === "approval-requested");
assert.equal(toolPart(reloaded, "write_file").state, "output-available");
const listing = toolPart(reloaded, "execute");
await reloaded.addToolApprovalResponse({ id: listing.approval.id, approved: false, reason: "not now" });
await until("the answer", () => reloaded.status === "ready" && textOf(reloaded.lastMessage).includes("Done."));
const final = reloaded.lastMessage;
console.log(`after the decisions: ${describe(final)}`);
assert.equal(toolPart(reloaded, "execute").state, "output-denied");
const stored = await lastAssistantText(toolChat);
assert.ok(stored.startsWith("Done.") && stored.includes("denied by the user: not now"), stored);
assert.ok(textOf(final).endsWith(stored), `final text ends with the stored answer: ${JSON.stringify(textOf(final))}`);
const calls = (await rest("GET", `/api/chats/${toolChat}/messages`)).messages.filter((m) => m.role === "tool");
assert.deepEqual(calls.map((m) => m.content[0].is_error), [false, true], "write_file ran, execute never did");

// A stale approval (a call no longer open) is refused and changes nothing.
const stale = await fetch(`${url}/api/chats/${toolChat}/tool-calls`, {
  method: "POST",
  headers: { ...headers, "content-type": "application/json" },
  body: JSON.stringify({ decisions: [{ decision: "approve", tool_call_id: asked.toolCallId }] }),
});
assert.equal(stale.status, 409, "a stale approval is a conflict");

// 1b. A client tool: the SDK's onToolCall answers it with addToolOutput.
const whereChat = (await rest("POST", "/api/chats", {})).id;
const where = new NodeChat({
  id: whereChat,
  transport,
  sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithToolCalls,
  onToolCall: async ({ toolCall }) => {
    if (toolCall.toolName === "user_location") {
      where.addToolOutput({ tool: "user_location", toolCallId: toolCall.toolCallId, output: { city: "Oslo" } });
    }
  },
});
await where.sendMessage({ text: "where am i?" });
await until("the client tool's answer", () => where.status === "ready" && textOf(where.lastMessage).includes("Done."));
console.log(`client tool turn: ${describe(where.lastMessage)}`);
assert.equal(toolPart(where, "user_location").state, "output-available");
assert.match(await lastAssistantText(whereChat), /Oslo/);

// 2. A long turn: read a little, drop the connection, resume through reconnectToStream.
const storyChat = (await rest("POST", "/api/chats", {})).id;
const abort = new AbortController();
const first = await transport.sendMessages({
  chatId: storyChat,
  messages: [user("u2", "tell me a slow story")],
  trigger: "submit-message",
  messageId: undefined,
  abortSignal: abort.signal,
});
const reader = first.getReader();
let deltas = 0;
while (deltas < 5) {
  const { value, done } = await reader.read();
  assert.ok(!done, "the turn is still running");
  if (value.type === "text-delta") deltas += 1;
}
abort.abort();
await reader.cancel().catch(() => {});
console.log(`dropped the first connection after ${deltas} text deltas`);
const resumed = await transport.reconnectToStream({ chatId: storyChat });
assert.ok(resumed, "a running turn can be resumed");
let replay;
for await (const message of readUIMessageStream({ stream: resumed, terminateOnError: true })) replay = message;
const story = await lastAssistantText(storyChat);
console.log(`resumed turn: ${replay.parts.map((p) => p.type).join(", ")}; ${textOf(replay).length} characters`);
assert.equal(textOf(replay), story, "the resumed message holds the whole answer exactly once");
assert.ok(story.startsWith("Once upon a time") && story.endsWith("The end."), story);
assert.equal(replay.parts.filter((p) => p.type === "text").length, 1);

// 3. Nothing to resume once the turn is over.
assert.equal(await transport.reconnectToStream({ chatId: storyChat }), null, "204 after the turn");

const storedRows = async (chatId) => (await rest("GET", `/api/chats/${chatId}/messages`)).messages;
const storedText = (message) => message.content.filter((p) => p.type === "text").map((p) => p.text).join("");
const userIds = (chat) => chat.messages.filter((m) => m.role === "user").map((m) => m.id);

// 4. An edit by messageId (how useChat edits): the message is edited, not appended; the ids
// the client chose survive a reload, and a reloaded client edits by the same id. A file
// sent with a message is kept.
const editChat = (await rest("POST", "/api/chats", {})).id;
const editing = new NodeChat({ id: editChat, transport });
const note = { type: "file", mediaType: "text/plain", filename: "note.txt", url: "data:text/plain;base64,aGVsbG8gY2hhdGQ=" };
await editing.sendMessage({ text: "first question", files: [note] });
const withFile = (await storedRows(editChat))[0].content;
// Stored once as an attachment (BEHAVIOUR §19): the row holds a reference, not the bytes.
assert.ok(withFile.some((p) => p.type === "file" && p.name === "note.txt" && p.media_type === "text/plain" && p.attachment_id && !p.data), `the file was kept: ${JSON.stringify(withFile)}`);
const [{ parts: sentParts }] = (await rest("GET", `/ai/chat/${editChat}/messages`)).messages;
const noteLink = sentParts.find((p) => p.type === "file");
assert.ok(noteLink && noteLink.url.startsWith("/api/files/") && noteLink.filename === "note.txt", JSON.stringify(sentParts));
const noteBytes = await fetch(`${url}${noteLink.url}`, { headers });
assert.equal(await noteBytes.text(), "hello chatd", "the link downloads the file");
console.log(`a file part went in as a data: URL and came back as ${noteLink.url}`);
await editing.sendMessage({ text: "second question" });
const firstId = editing.messages[0].id;
await editing.sendMessage({ text: "first question, edited", messageId: firstId });
assert.equal(editing.status, "ready", String(editing.error));
assert.equal(editing.messages.length, 2, "the client shows one question and its answer");
let rows = await storedRows(editChat);
assert.deepEqual(rows.map((m) => m.role), ["user", "assistant"], "the server keeps the same two");
assert.equal(rows[0].client_id, firstId, "the edited message keeps the client's id");
assert.equal(storedText(rows[0]), "first question, edited");
assert.match(textOf(editing.lastMessage), /You said: “first question, edited”/);
const { messages: loaded } = await rest("GET", `/ai/chat/${editChat}/messages`);
assert.deepEqual(loaded.map((m) => m.id), editing.messages.map((m) => m.id), "ids survive a reload");
assert.equal(textOf(loaded[1]), textOf(editing.lastMessage), "and so does the answer");
const reopened = new NodeChat({ id: editChat, transport, messages: loaded });
await reopened.sendMessage({ text: "edited after a reload", messageId: firstId });
rows = await storedRows(editChat);
assert.deepEqual(rows.map((m) => [m.role, m.client_id ?? null]), [["user", firstId], ["assistant", null]]);
assert.equal(storedText(rows[0]), "edited after a reload");
console.log(`edit by messageId: ${reopened.messages.length} messages on both sides, ids ${userIds(reopened).join(", ")}`);

// 5. stop() then send: the running turn is interrupted (its partial answer kept) and the new
// message is answered: no 409, no message the server did not keep.
const stopChat = (await rest("POST", "/api/chats", {})).id;
const stopping = new NodeChat({ id: stopChat, transport });
const slow = stopping.sendMessage({ text: "tell me a slow story" });
await until("part of the story", () => stopping.lastMessage?.role === "assistant" && textOf(stopping.lastMessage).length > 20);
await stopping.stop();
await slow;
await stopping.sendMessage({ text: "hello again" });
assert.equal(stopping.status, "ready", String(stopping.error));
assert.match(textOf(stopping.lastMessage), /^You said: “hello again”/, "the new message's own answer");
rows = await storedRows(stopChat);
assert.deepEqual(rows.map((m) => m.role), ["user", "assistant", "user", "assistant"]);
assert.deepEqual(rows.filter((m) => m.role === "user").map((m) => m.client_id), userIds(stopping), "every message the client shows is kept");
assert.ok(storedText(rows[1]).length < (await lastAssistantText(storyChat)).length, "the story was cut short");
console.log(`stop then send: ${stopping.messages.map((m) => m.role).join(", ")}`);

// 6. A stream the server cuts ("Drop streams") is an error the client sees, not a finished
// answer; resumeStream() then brings the whole answer, once.
const cutChat = (await rest("POST", "/api/chats", {})).id;
const cutting = new NodeChat({ id: cutChat, transport });
const cutTurn = cutting.sendMessage({ text: "tell me a slow story" });
await until("part of the story", () => cutting.lastMessage?.role === "assistant" && textOf(cutting.lastMessage).length > 20);
await rest("POST", "/api/admin/cut-streams");
await cutTurn;
assert.equal(cutting.status, "error", `a cut is an error, not a finished answer (${textOf(cutting.lastMessage).length} characters)`);
await cutting.resumeStream();
assert.equal(cutting.status, "ready", String(cutting.error));
const whole = await lastAssistantText(cutChat);
assert.equal(textOf(cutting.lastMessage), whole, "the resumed answer is whole, once");
assert.ok(whole.endsWith("The end."), whole);
assert.deepEqual(cutting.messages.map((m) => m.role), ["user", "assistant"]);
console.log(`cut then resumed: ${whole.length} characters`);
console.log("AI SDK client: all checks passed");
