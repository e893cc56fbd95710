// A real browser against the chatd web UI: headless Chromium driven over the DevTools
// protocol (puppeteer-core, using the system's Chromium). It signs in, creates a chat, watches
// a long answer stream in, has the server drop every stream mid-turn, lets the page reconnect
// on its own with Last-Event-ID, and checks that the transcript shows every part exactly once
// (the page counts reconnections, duplicate and missing cursors). Then it holds a tool-using
// conversation that waits for approvals (approves one call, edits and approves another),
// queues a message behind a running turn, interrupts it, and edits a message; pastes an
// image into a new chat and checks that only its owner can download it.
// Saves a screenshot. Prints what it saw; exits non-zero on a failure.
//
// Usage: CHATD_URL=... CHATD_TOKEN=... CHROMIUM=/usr/bin/chromium SCREENSHOT=out.png node browser.mjs
import puppeteer from "puppeteer-core";
import assert from "node:assert/strict";

const url = process.env.CHATD_URL;
const token = process.env.CHATD_TOKEN;
const otherToken = process.env.CHATD_OTHER_TOKEN;
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const screenshot = process.env.SCREENSHOT || "browser-test.png";
assert.ok(url && token && otherToken, "CHATD_URL, CHATD_TOKEN and CHATD_OTHER_TOKEN are required");
const auth = { authorization: `Bearer ${token}` };

async function rest(method, path) {
  const response = await fetch(`${url}${path}`, { method, headers: auth });
  assert.ok(response.ok, `${method} ${path}: ${response.status}`);
  return response.status === 204 ? null : response.json();
}

const browser = await puppeteer.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
});
console.log(`browser: ${await browser.version()}`);
const page = await browser.newPage();
await page.setViewport({ width: 1280, height: 900 });
const problems = [];
page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
page.on("response", (response) => {
  if (response.status() >= 400) problems.push(`HTTP ${response.status()} ${response.request().method()} ${response.url()}`);
});

const text = (selector) => page.$$eval(selector, (nodes) => nodes.map((n) => n.textContent));
const waitFor = (fn, timeout = 30000, ...args) => page.waitForFunction(fn, { timeout, polling: 50 }, ...args);
const status = () => page.$eval("#chat-status", (n) => n.textContent);

async function send(message, busy = "queue") {
  await page.select("#busy", busy);
  await page.type("#message", message);
  await page.keyboard.press("Enter");
}

// Whether the element is wholly inside the viewport.
const inView = (selector) =>
  page.$eval(selector, (node) => {
    const box = node.getBoundingClientRect();
    return box.width > 0 && box.top >= 0 && box.left >= 0 && box.bottom <= window.innerHeight && box.right <= window.innerWidth;
  });

// At 1280×800 and at 420×800: while an answer streams, Interrupt and the composer stay in
// view; a failed turn says why next to it; a reload reopens the chat. Screenshots in target/.
async function layoutAt(width, height) {
  await page.setViewport({ width, height });
  await page.goto(`${url}/`);
  await page.waitForSelector("#welcome:not([hidden])");
  assert.match(await page.$eval("#welcome", (n) => n.textContent), /New chat/, "the first screen says what to do");
  await page.click("#new-chat");
  await send("tell me a slow story");
  await waitFor(() => (document.querySelector("#preview .text")?.textContent.length ?? 0) > 400, 30000);
  assert.ok(await inView("#interrupt"), `Interrupt in view at ${width}×${height}`);
  assert.ok(await inView("#message"), `the composer in view at ${width}×${height}`);
  // The answer may by now be taller than the pane (more words keep arriving), so what must be
  // visible is its newest line, above the composer. A layout shift between two parts (the
  // header or composer changing height) can hide it until the next part scrolls it back: the
  // page must show it again within a second (one failure in ten runs checked it at one
  // instant).
  const endShown = await page.waitForFunction(() => {
    const node = document.querySelector("#preview .text");
    if (!node) return false;
    const box = node.getBoundingClientRect();
    if (box.width <= 0 || box.bottom <= 0 || box.bottom > window.innerHeight) return false;
    const hit = document.elementFromPoint(box.left + Math.min(8, box.width / 2), box.bottom - 4);
    return hit !== null && (node === hit || node.contains(hit));
  }, { timeout: 1000, polling: 20 }).then(() => true, () => false);
  assert.ok(endShown, `the streaming answer's newest line in view at ${width}×${height}`);
  await page.screenshot({ path: screenshot.replace(/\.png$/, `-streaming-${width}.png`) });
  await page.click("#interrupt");
  await waitFor(() => document.querySelector("#timeline .turn-end.interrupted"), 30000);
  await send("please fail now");
  await waitFor(() => document.querySelector("#timeline .turn-end.failed"), 30000);
  const failed = await page.$eval("#timeline .turn-end.failed", (n) => n.textContent);
  assert.match(failed, /fails when asked to/, failed);
  assert.ok(await inView("#timeline .turn-end.failed"), `the failure is in view at ${width}×${height}`);
  await page.screenshot({ path: screenshot.replace(/\.png$/, `-failed-${width}.png`) });
  const open = await page.$eval("#chat-list li.selected", (n) => n.dataset.chat);
  await page.reload();
  await waitFor((id) => document.querySelector("#chat-list li.selected")?.dataset.chat === id && !document.querySelector("#chat").hidden, 15000, open);
  console.log(`at ${width}×${height}: controls and composer in view while streaming, failure shown beside the turn, the chat reopened after a reload`);
}

try {
  await page.goto(`${url}/#token=${token}`);
  await page.waitForSelector("#app:not([hidden])");
  await layoutAt(1280, 800);
  await layoutAt(420, 800);
  await page.setViewport({ width: 1280, height: 900 });
  await page.click("#new-chat");
  await page.waitForSelector("#chat:not([hidden])");
  // 1. Stream, drop, resume.
  await send("tell me a slow story");
  await page.waitForSelector("#chat-list li.selected");
  const chatId = await page.$eval("#chat-list li.selected", (n) => n.dataset.chat);
  console.log(`chat ${chatId} created in the UI with its first message`);
  await waitFor(() => (document.querySelector("#preview .text")?.textContent.length ?? 0) > 60);
  const before = await page.evaluate(() => ({ ...window.chatdDebug }));
  await rest("POST", "/api/admin/cut-streams");
  console.log(`the server dropped every stream mid-turn (the page had ${before.events} events)`);
  await waitFor(() => window.chatdDebug.opens >= 2, 15000);
  await waitFor(() => window.chatdDebug.turnsEnded >= 1 && document.querySelector("#chat-status").textContent === "waiting", 60000);
  const debug = await page.evaluate(() => window.chatdDebug);
  const { messages } = await rest("GET", `/api/chats/${chatId}/messages`);
  const story = messages.filter((m) => m.role === "assistant").at(-1).content.find((p) => p.type === "text").text;
  const shown = await text("#timeline .msg.assistant .text");
  const body = await page.evaluate(() => document.body.innerText);
  console.log(`after the drop: ${debug.opens} connections, ${debug.events} events, ${debug.duplicates} duplicates, ${debug.gaps} gaps`);
  assert.ok(debug.opens >= 2, "the page reconnected");
  assert.equal(debug.duplicates, 0, "no event twice");
  assert.equal(debug.gaps, 0, "no part missing");
  assert.deepEqual(shown, [story], "the transcript shows the answer once");
  assert.equal(body.split("Once upon a time").length - 1, 1, "the story appears exactly once on the page");

  // 2. A tool-using conversation that waits for approvals (the demo asks before write_file
  // and execute): approve the write as it is, edit the listing's command, then approve it.
  assert.equal(await page.$eval("#ask", (n) => n.checked), true, "asking is on by default");
  await send("please write a file with this line");
  await waitFor(() => document.querySelector("#chat-status").textContent === "requires_action" && document.querySelector("#timeline .decision .approve"), 60000);
  await page.screenshot({ path: screenshot.replace(/\.png$/, "-approval.png"), fullPage: true });
  await page.click("#timeline .decision .approve");
  console.log("approved write_file in the page");
  await waitFor(() => document.querySelector("#timeline .decision .edit-args") && document.querySelectorAll("#timeline .tool-result").length === 1, 60000);
  await page.click("#timeline .decision .edit-args");
  await page.$eval("#timeline .decision textarea.args", (area) => (area.value = JSON.stringify({ command: "ls notes.md" })));
  await page.click("#timeline .decision .approve-edited");
  console.log("edited execute's arguments and approved them");
  await waitFor(() => document.querySelectorAll("#timeline .tool-result").length >= 2 && document.querySelector("#chat-status").textContent === "waiting", 60000);
  const args = await text("#timeline .tool-args");
  const listed = (await rest("GET", `/api/chats/${chatId}/messages`)).messages.filter((m) => m.role === "tool").at(-1);
  assert.equal(JSON.stringify(listed.content[0].result).includes("notes.md"), true, "the edited command ran");
  assert.ok(args.some((a) => a.includes("ls -l")), "the model's own arguments are still shown on its call");
  const results = await text("#timeline .tool-result");
  console.log(`tools ran: ${(await text("#timeline .tool-name")).join(", ")}`);
  assert.match(results[1], /notes\.md/);
  await page.screenshot({ path: screenshot.replace(/\.png$/, "-tools.png"), fullPage: true });

  // 3. Queue behind a running turn, then interrupt it: the queued message runs next.
  await send("tell me a slow story again");
  await waitFor(() => document.querySelector("#chat-status").textContent === "running");
  await send("this one waits in the queue");
  await waitFor(() => document.querySelectorAll("#queue-list li").length === 1);
  console.log(`queued: ${(await text("#queue-list li span")).join(" | ")}`);
  await page.click("#interrupt");
  await waitFor(() => document.querySelectorAll("#queue-list li").length === 0, 30000);
  await waitFor(() => [...document.querySelectorAll("#timeline .msg.user .text")].some((n) => n.textContent === "this one waits in the queue"), 30000);
  await waitFor(() => document.querySelector("#chat-status").textContent === "waiting", 60000);
  console.log(`after the interrupt the queued message ran; status ${await status()}`);

  // 4. Edit the first message: later history goes, the chat re-runs.
  const firstUser = await page.$("#timeline .msg.user .edit");
  await firstUser.click();
  await page.$eval("#timeline textarea", (area) => (area.value = "hello there"));
  await page.$$eval("#timeline button", (buttons) => buttons.find((b) => b.textContent === "Save and re-run").click());
  await waitFor(() => {
    const users = [...document.querySelectorAll("#timeline .msg.user .text")].map((n) => n.textContent);
    return users.length === 1 && users[0] === "hello there" && document.querySelector("#chat-status").textContent === "waiting" &&
      [...document.querySelectorAll("#timeline .msg.assistant .text")].some((n) => n.textContent.includes("hello there"));
  }, 60000);
  console.log("edited the first message: the history was rewritten and answered again");
  // 4a. The edit kept the past: the edited message offers its earlier version, which holds
  // the first text and the turns that followed it.
  await waitFor(() => document.querySelector("#timeline .msg.user .versions-toggle")?.textContent === "Earlier versions (1)", 15000);
  await page.click("#timeline .msg.user .versions-toggle");
  const earlier = await text("#timeline .versions .version .msg.old");
  assert.equal(earlier[0], "tell me a slow story", `the earlier version starts with the first text: ${JSON.stringify(earlier)}`);
  assert.ok(earlier.includes("this one waits in the queue"), `and holds the later turns: ${JSON.stringify(earlier)}`);
  const { messages: kept } = await rest("GET", `/api/chats/${chatId}/messages?include_deleted=true`);
  const keptShown = kept.filter((m) => m.deleted && (m.role === "user" || m.role === "assistant"));
  assert.equal(earlier.length, keptShown.length, "every kept message of the version is shown");
  await page.screenshot({ path: screenshot.replace(/\.png$/, "-versions.png"), fullPage: true });
  console.log(`opened the earlier version: ${earlier.length} messages, the first "${earlier[0]}"`);
  // 4b. Fork from the answer: a new chat with the history up to it opens; it is found by
  // search, and by a label set on it.
  const answers = await page.$$("#timeline .msg.assistant .fork");
  await answers[0].click();
  await waitFor((source) => {
    const open = document.querySelector("#chat-list li.selected")?.dataset.chat;
    return open && open !== source && document.querySelector("#chat-title").textContent.endsWith("(fork)");
  }, 15000, chatId);
  const forkId = await page.$eval("#chat-list li.selected", (n) => n.dataset.chat);
  const fork = await rest("GET", `/api/chats/${forkId}`);
  assert.equal(fork.forked_from.chat_id, chatId, "the fork records its source");
  await waitFor(() => [...document.querySelectorAll("#timeline .msg.user .text")].some((n) => n.textContent === "hello there"), 15000);
  await page.$eval("#chat-labels", (input) => (input.value = "topic:browser-fork"));
  await page.click("#save-labels");
  await waitFor(() => [...document.querySelectorAll("#chat-list .label")].some((n) => n.textContent === "topic:browser-fork"), 15000);
  await page.type("#search", "fork");
  await waitFor((id) => {
    const shown = [...document.querySelectorAll("#chat-list li")].map((n) => n.dataset.chat);
    return shown.length === 1 && shown[0] === id;
  }, 15000, forkId);
  await page.$eval("#search", (input) => { input.value = ""; input.dispatchEvent(new Event("input")); });
  await waitFor(() => document.querySelectorAll("#chat-list li").length > 1, 15000);
  await page.$$eval("#chat-list .label", (tags) => tags.find((t) => t.textContent === "topic:browser-fork").click());
  await waitFor((id) => {
    const shown = [...document.querySelectorAll("#chat-list li")].map((n) => n.dataset.chat);
    return shown.length === 1 && shown[0] === id && !document.querySelector("#label-filter").hidden;
  }, 15000, forkId);
  await page.screenshot({ path: screenshot.replace(/\.png$/, "-fork.png"), fullPage: true });
  await page.click("#label-filter button");
  await waitFor(() => document.querySelectorAll("#chat-list li").length > 1, 15000);
  console.log(`forked at the first answer (${forkId}); found it by search and by its label`);
  await page.click(`#chat-list li[data-chat="${chatId}"]`);
  await waitFor((id) => document.querySelector("#chat-list li.selected")?.dataset.chat === id, 15000, chatId);
  // The conversation, before the account switch below leaves an empty list.
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`screenshot: ${screenshot}`);

  // 4b. Cost: the chat shows its totals, the usage page draws its chart from the ledger's
  // records (and, for an administrator, everyone's), and the admin panel shows prices.
  await waitFor(() => document.querySelector("#chat-cost").textContent.includes("calls"), 15000);
  const shownCost = await page.$eval("#chat-cost", (n) => Number(n.dataset.costMicros));
  const stored = await rest("GET", `/api/chats/${chatId}`);
  assert.ok(stored.spent.cost_micros > 0 && shownCost === stored.spent.cost_micros, `the header shows the chat's cost: ${shownCost} vs ${JSON.stringify(stored.spent)}`);
  await page.click("#open-usage");
  await waitFor(() => document.querySelectorAll("#usage-chart rect.bar").length >= 1 && document.querySelectorAll("#usage-owners tr").length >= 2, 15000);
  const { buckets: mine } = await rest("GET", "/api/usage");
  const drawn = await page.$eval("#usage-chart", (n) => Number(n.dataset.costMicros));
  assert.equal(drawn, mine[0].cost_micros, "the chart sums the same records as the API");
  const bars = await page.$$eval("#usage-chart rect.bar", (nodes) => nodes.map((n) => ({ h: Number(n.getAttribute("height")), model: n.dataset.model })));
  assert.ok(bars.every((b) => b.h > 0 && b.model === "chatd-demo"), JSON.stringify(bars));
  await page.screenshot({ path: screenshot.replace(/\.png$/, "-usage.png"), fullPage: true });
  console.log(`usage page: ${bars.length} bar(s), ${drawn} micro-units, as the API says`);
  await page.click("#open-admin");
  await waitFor(() => document.querySelector("#models .price-in")?.value === "3", 15000);
  await page.click("#close-admin");

  // 4c. Attachments (BEHAVIOUR §19): an image pasted into a new chat's composer is uploaded
  // and previewed, sent with the message, described by the demo model (its size, read from
  // the bytes the model received), and shown in the transcript; another user's request for
  // the file is 404.
  await page.click("#new-chat");
  await page.evaluate(async () => {
    const canvas = document.createElement("canvas");
    canvas.width = 5;
    canvas.height = 3;
    canvas.getContext("2d").fillRect(0, 0, 5, 3);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    const data = new DataTransfer();
    data.items.add(new File([blob], "pasted.png", { type: "image/png" }));
    const paste = new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true });
    document.querySelector("#message").dispatchEvent(paste);
  });
  await waitFor(() => {
    const img = document.querySelector("#attachments .pending-file img");
    return img && img.complete && img.naturalWidth === 5;
  }, 15000);
  console.log("pasted an image: the composer shows its preview");
  // A text file dropped on the composer joins it; a binary the server refuses says why and
  // adds nothing.
  await page.evaluate(() => {
    const drop = (file) => {
      const data = new DataTransfer();
      data.items.add(file);
      const event = new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true });
      document.querySelector("#composer").dispatchEvent(event);
    };
    drop(new File(["line one\nline two\n"], "notes.txt", { type: "text/plain" }));
    drop(new File([new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0])], "tool.bin"));
  });
  await waitFor(() => document.querySelectorAll("#attachments .pending-file").length === 2
    && document.querySelector("#chat-error").textContent.includes("Only PNG, JPEG, GIF and WebP images"), 15000);
  const chips = await page.$$eval("#attachments .pending-file", (nodes) => nodes.map((n) => n.title));
  assert.ok(chips[1].startsWith("notes.txt (text/plain"), JSON.stringify(chips));
  console.log(`dropped a text file (${chips[1]}); the binary was refused with the server's reason`);
  // The refusal's 400 is expected here.
  problems.splice(0, problems.length, ...problems.filter((p) => !p.startsWith("HTTP 400 POST") || !p.includes("/api/files?name=tool.bin")));
  await send("what is in this picture?");
  await waitFor(() => [...document.querySelectorAll("#timeline .msg.assistant .text")].some((n) => n.textContent.startsWith("I see pasted.png: a 5×3 PNG image")), 30000);
  const described = (await text("#timeline .msg.assistant .text")).find((t) => t.startsWith("I see"));
  await waitFor(() => {
    const img = document.querySelector("#timeline .msg.user img.attachment");
    return img && img.complete && img.naturalWidth === 5;
  }, 15000);
  const fileUrl = await page.$eval("#timeline .msg.user img.attachment", (n) => n.getAttribute("src"));
  assert.ok(fileUrl.startsWith("/api/files/"), fileUrl);
  const own = await fetch(`${url}${fileUrl}`, { headers: auth });
  assert.equal(own.status, 200);
  assert.equal(own.headers.get("content-type"), "image/png");
  const theirs = await fetch(`${url}${fileUrl}`, { headers: { authorization: `Bearer ${otherToken}` } });
  assert.equal(theirs.status, 404, "another user's request for the file is not found");
  await page.screenshot({ path: screenshot.replace(/\.png$/, "-attachment.png"), fullPage: true });
  console.log(`the demo model said "${described}"; the transcript shows the image; another user's GET ${fileUrl} is ${theirs.status}`);

  // 5. A sign-in link for another account asks before switching.
  const me = () => page.$eval("#me", (n) => n.textContent);
  const signedInAs = await me();
  const dialogs = [];
  page.once("dialog", (dialog) => { dialogs.push(dialog.message()); dialog.dismiss(); });
  await page.goto(`${url}/?link=1#token=${otherToken}`);
  await page.waitForSelector("#app:not([hidden])");
  await waitFor(() => document.querySelector("#me").textContent.length > 0);
  assert.equal(dialogs.length, 1, "the link asked before switching");
  assert.equal(await me(), signedInAs, "declining kept the account");
  page.once("dialog", (dialog) => { dialogs.push(dialog.message()); dialog.accept(); });
  await page.goto(`${url}/?link=2#token=${otherToken}`);
  await waitFor((was) => document.querySelector("#me").textContent !== was && document.querySelector("#me").textContent.length > 0, 30000, before);
  assert.equal(dialogs.length, 2);
  console.log(`a link for another account asked ("${dialogs[0]}"); declined kept "${signedInAs}", accepted switched to "${await me()}"`);
  assert.deepEqual(problems, [], "no errors in the page");
  console.log("browser: all checks passed");
} catch (error) {
  await page.screenshot({ path: screenshot, fullPage: true }).catch(() => {});
  console.error(`browser test failed (screenshot ${screenshot}): ${error.stack || error}`);
  console.error(`page problems: ${JSON.stringify(problems)}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
