// The Vercel AI SDK (`ai`) as a client of chatd's /ai/chat endpoints: sends a message through
// DefaultChatTransport, reads the whole turn through the SDK's own parser
// (readUIMessageStream), drops a second turn mid-stream and resumes it through the
// transport's reconnectToStream (what useChat's `resume` calls), and checks the final
// message parts against what chatd stored. Prints what it saw; exits non-zero on a failure.
//
// Usage: CHATD_URL=http://127.0.0.1:8080 CHATD_TOKEN=... node ai_sdk.mjs
import { DefaultChatTransport, readUIMessageStream } from "ai";
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

// 1. A tool-using turn, read whole.
const toolChat = (await rest("POST", "/api/chats", {})).id;
const stream = await transport.sendMessages({
  chatId: toolChat,
  messages: [user("u1", "please write a file with this sentence")],
  trigger: "submit-message",
  messageId: undefined,
  abortSignal: undefined,
});
let final;
for await (const message of readUIMessageStream({ stream, terminateOnError: true })) final = message;
assert.equal(final.role, "assistant");
const tools = final.parts.filter((p) => p.type === "dynamic-tool");
console.log("tool turn parts:", final.parts.map((p) => p.type + (p.toolName ? `:${p.toolName}:${p.state}` : "")).join(", "));
assert.deepEqual(tools.map((t) => t.toolName), ["write_file", "execute"]);
assert.ok(tools.every((t) => t.state === "output-available"), "every tool has its output");
assert.equal(tools[0].input.path, "notes.md");
assert.match(tools[1].output.output, /notes\.md/);
assert.ok(textOf(final, "reasoning").startsWith("The person wrote"), "reasoning streamed");
const stored = await lastAssistantText(toolChat);
assert.ok(textOf(final).endsWith(stored), `final text ends with the stored answer: ${JSON.stringify(textOf(final))}`);
assert.ok(stored.startsWith("Done."), stored);

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
console.log("AI SDK client: all checks passed");
