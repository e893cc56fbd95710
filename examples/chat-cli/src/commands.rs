//! The session: the current chat and its stream, the input, and the commands.

use std::time::{Duration, Instant};

use chatd_core::ChatFilter;
use chatd_core::events::{ChatEvent, ChatEventKind};
use chatd_core::service::Actor;
use chatd_core::store::{Delivery, SendMessage};
use chatd_core::{
    ChatId, ChatStatus, Chatd, MessageId, ModelConfigId, NewChat, Part, QueuedMessageId,
};
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::mpsc;

use crate::Input;
use crate::decide::{Answer, Pending};
use crate::printer::{PROMPT, Printer};
use crate::tty::Echo;

const HELP: &str = "\
commands:
  /new [title]        a new chat (or just type: the first message starts one)
  /list               your chats          /switch <n|id>   open one
  /search <words>     chats whose title or messages hold every word
  /history            messages with ids   /edit <id> <text> rewrite a message and re-run
  /fork [id]          a new chat with the history up to that message (default: the last)
  /attach <path>      attach an image, PDF or text file to your next message
  /queue              queued messages     /promote <id>    send one now    /drop <id> remove one
  /interrupt          stop the turn (or Ctrl-C; Ctrl-C twice exits)
  /compact            summarise the history now
  /models             model configs       /model <n>       use one for your next messages
  /quit               exit";

/// One terminal's session.
pub(crate) struct Session {
    chatd: Chatd,
    actor: Actor,
    interactive: bool,
    printer: Printer,
    chat: Option<ChatId>,
    events: Option<BoxStream<'static, ChatEvent>>,
    /// Waiting for a turn that ends after this message (scripted input only).
    waiting: Option<i64>,
    /// The last message id seen.
    last_message: i64,
    model: Option<ModelConfigId>,
    last_interrupt: Option<Instant>,
    listed: Vec<ChatId>,
    /// Tool calls that wait for an answer typed here.
    pending: Pending,
    /// The terminal's echo, off while a turn streams.
    echo: Echo,
    /// The open chat's totals after its last turn, to print each turn's cost.
    spent: chatd_core::Spend,
    /// Files attached to the next message (BEHAVIOUR §19).
    attached: Vec<chatd_core::FileMeta>,
}

impl Session {
    pub(crate) fn new(chatd: Chatd, actor: Actor, interactive: bool) -> Self {
        Session {
            chatd,
            actor,
            interactive,
            printer: Printer::new(interactive),
            chat: None,
            events: None,
            waiting: None,
            last_message: 0,
            model: None,
            last_interrupt: None,
            listed: Vec::new(),
            pending: Pending::default(),
            echo: Echo::new(),
            spent: chatd_core::Spend::default(),
            attached: Vec::new(),
        }
    }

    fn busy(&self) -> bool {
        matches!(self.printer.status, Some(ChatStatus::Running | ChatStatus::Pending))
    }

    /// Runs until `/quit`, the end of input, or a second Ctrl-C.
    pub(crate) async fn run(
        &mut self,
        mut lines: mpsc::Receiver<Input>,
        mut interrupts: mpsc::Receiver<()>,
    ) {
        let mut spinner = tokio::time::interval(Duration::from_millis(120));
        let mut eof = false;
        loop {
            if eof && self.waiting.is_none() {
                return;
            }
            // Scripted lines wait for the turn in flight; Ctrl-C is always heard.
            let accepting = self.waiting.is_none() && !eof;
            // On a terminal: the prompt while the chat waits for you; no echo while a turn
            // streams (a line typed meanwhile is shown when it is sent).
            let idle = !self.busy();
            self.echo.set(idle);
            if idle && self.interactive {
                self.printer.prompt();
            }
            tokio::select! {
                Some(()) = interrupts.recv() => {
                    if self.interrupt().await {
                        return;
                    }
                }
                input = lines.recv(), if accepting => match input.unwrap_or(Input::Eof) {
                    Input::Eof => eof = true,
                    Input::Line(line) => {
                        self.printer.typed();
                        if !idle && self.interactive && !line.trim().is_empty() {
                            self.printer.say(&format!("{PROMPT}{}", line.trim()));
                        }
                        if !self.line(line.trim()).await {
                            return;
                        }
                    }
                },
                event = next(&mut self.events) => match event {
                    Some(event) => {
                        if self.event(&event) {
                            self.turn_cost().await;
                        }
                    }
                    None => self.events = None,
                },
                _ = spinner.tick(), if self.printer.spinning() => self.printer.spin(),
            }
        }
    }

    /// Prints the event; returns whether it ended a turn.
    fn event(&mut self, event: &ChatEvent) -> bool {
        match &event.kind {
            ChatEventKind::Message { message } => {
                self.last_message = self.last_message.max(message.id.0);
            }
            ChatEventKind::ActionRequired { calls } => {
                self.pending.set(calls);
                if let Some(question) = self.pending.question() {
                    self.printer.say(&question);
                }
            }
            ChatEventKind::Status { status, .. } if *status != ChatStatus::RequiresAction => {
                self.pending.clear();
            }
            _ => {}
        }
        let ended = self.printer.event(event);
        if ended && self.waiting.is_some_and(|after| event.cursor.message >= after) {
            self.waiting = None;
        }
        ended
    }

    /// After a turn: what its model calls used and cost (BEHAVIOUR §17), from the chat's
    /// running totals.
    async fn turn_cost(&mut self) {
        let Some(chat) = self.chat else { return };
        let Ok(now) = self.chatd.get_chat(&self.actor, chat).await else { return };
        let before = std::mem::replace(&mut self.spent, now.spent);
        let calls = now.spent.calls - before.calls;
        if calls > 0 {
            let tokens = now.spent.tokens - before.tokens;
            let cost = money(now.spent.cost_micros - before.cost_micros);
            let plural = if calls == 1 { "" } else { "s" };
            self.printer
                .dim(&format!("[{calls} model call{plural}, {tokens} tokens, cost {cost}]"));
        }
    }

    /// Ctrl-C: interrupts a running turn; a second press (or one while idle) exits.
    async fn interrupt(&mut self) -> bool {
        let twice = self.last_interrupt.is_some_and(|at| at.elapsed() < Duration::from_secs(2));
        self.last_interrupt = Some(Instant::now());
        match self.chat {
            Some(chat) if self.busy() && !twice => {
                self.printer.say("[interrupting — Ctrl-C again to exit]");
                self.printer.interrupting();
                if let Err(err) = self.chatd.interrupt(&self.actor, chat).await {
                    self.printer.say(&format!("[cannot interrupt: {err}]"));
                }
                false
            }
            _ => {
                self.printer.say("[bye]");
                true
            }
        }
    }

    /// Handles one line; false to exit.
    async fn line(&mut self, line: &str) -> bool {
        if line.is_empty() {
            return true;
        }
        let Some(command) = line.strip_prefix('/') else {
            if self.pending.waiting() {
                self.answer(line).await;
            } else {
                self.send(line).await;
            }
            return true;
        };
        let (name, rest) = command.split_once(' ').map_or((command, ""), |(n, r)| (n, r.trim()));
        let result = match name {
            "help" => {
                self.printer.say(HELP);
                Ok(())
            }
            "quit" | "exit" => return false,
            "new" => self.new_chat(rest).await,
            "list" => self.list().await,
            "switch" => self.switch(rest).await,
            "history" => self.history().await,
            "edit" => self.edit(rest).await,
            "fork" => self.fork(rest).await,
            "search" => self.search(rest).await,
            "attach" => self.attach(rest).await,
            "queue" => self.queue().await,
            "promote" => self.promote(rest).await,
            "drop" => self.drop_queued(rest).await,
            "interrupt" => match self.chat {
                Some(chat) => self
                    .chatd
                    .interrupt(&self.actor, chat)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                None => Err("no chat open".into()),
            },
            "compact" => self.compact().await,
            "models" => self.models().await,
            "model" => self.choose_model(rest).await,
            other => Err(format!("unknown command /{other} (try /help)")),
        };
        if let Err(message) = result {
            self.printer.say(&format!("[{message}]"));
        }
        true
    }

    async fn open(&mut self, chat: ChatId) -> Result<(), String> {
        let events =
            self.chatd.subscribe(&self.actor, chat, None).await.map_err(|e| e.to_string())?;
        let found = self.chatd.get_chat(&self.actor, chat).await.map_err(|e| e.to_string())?;
        self.printer.say(&format!("── {} ({})", found.title, found.status));
        self.chat = Some(chat);
        self.spent = found.spent;
        self.events = Some(events);
        self.printer.status = Some(found.status);
        Ok(())
    }

    /// Uploads a file for the next message: the library sniffs its type and refuses what
    /// it does not take (BEHAVIOUR §19).
    async fn attach(&mut self, path: &str) -> Result<(), String> {
        use std::io::Read as _;
        let path = path.trim();
        if path.is_empty() {
            return Err("usage: /attach <path>".into());
        }
        let file = std::fs::File::open(path).map_err(|err| format!("{path}: {err}"))?;
        let limit = chatd_core::store::Limits::DEFAULT.max_file_bytes as u64 + 1;
        let mut bytes = Vec::new();
        file.take(limit).read_to_end(&mut bytes).map_err(|err| format!("{path}: {err}"))?;
        let meta = self
            .chatd
            .upload_file(&self.actor, self.chat, path, bytes)
            .await
            .map_err(|err| err.to_string())?;
        self.printer.say(&format!(
            "[attached {}: {}, {} bytes — sent with your next message]",
            meta.name, meta.media_type, meta.size
        ));
        self.attached.push(meta);
        Ok(())
    }

    async fn send(&mut self, text: &str) {
        self.printer.sent(text);
        let mut content = vec![Part::text(text)];
        content.extend(self.attached.drain(..).map(|meta| meta.part()));
        let outcome = match self.chat {
            None => {
                let owner = self.actor.user_id().unwrap_or_default();
                let mut new = NewChat::new(owner).with_message(content);
                if let Some(model) = self.model {
                    new = new.with_model_config(model);
                }
                match self.chatd.create_chat(&self.actor, new).await {
                    Ok(chat) => {
                        self.waiting = Some(1);
                        self.open(chat.id).await
                    }
                    Err(err) => Err(err.to_string()),
                }
            }
            Some(chat) => {
                let mut send = SendMessage::new(content);
                if let Some(model) = self.model {
                    send = send.with_model_config(model);
                }
                match self.chatd.send_message(&self.actor, chat, send).await {
                    Ok(sent) => {
                        match sent.delivery {
                            Delivery::Inserted(message) => self.waiting = Some(message.id.0),
                            Delivery::Queued(queued) => {
                                self.printer.queued();
                                self.printer.say(&format!(
                                    "[queued as {} — answered after the turn in flight]",
                                    queued.id.0
                                ));
                                self.waiting = Some(self.last_message + 1);
                            }
                            _ => {}
                        }
                        Ok(())
                    }
                    Err(err) => Err(err.to_string()),
                }
            }
        };
        if self.interactive {
            self.waiting = None;
        }
        if let Err(message) = outcome {
            self.waiting = None;
            self.printer.say(&format!("[{message}]"));
        }
    }

    /// A line typed while a tool call waits: its decision, sent at once.
    async fn answer(&mut self, line: &str) {
        let Some(chat) = self.chat else { return };
        match self.pending.answer(line) {
            Answer::Ask(text) => self.printer.say(&text),
            Answer::Decide(decision) => {
                match self.chatd.resolve_tool_calls(&self.actor, chat, vec![decision]).await {
                    Ok(after) if after.status == ChatStatus::Pending && !self.interactive => {
                        // Scripted input waits for the turn that continues.
                        self.waiting = Some(self.last_message + 1);
                    }
                    Ok(_) => {}
                    Err(err) => self.printer.say(&format!("[{err}]")),
                }
                if let Some(question) = self.pending.question() {
                    self.printer.say(&question);
                }
            }
        }
    }

    async fn new_chat(&mut self, title: &str) -> Result<(), String> {
        let owner = self.actor.user_id().unwrap_or_default();
        let mut new = NewChat::new(owner);
        if !title.is_empty() {
            new = new.with_title(title);
        }
        let chat = self.chatd.create_chat(&self.actor, new).await.map_err(|e| e.to_string())?;
        self.open(chat.id).await
    }

    async fn list(&mut self) -> Result<(), String> {
        let owner = self.actor.user_id().unwrap_or_default();
        self.show_chats(ChatFilter::owner(owner), "[no chats yet]").await
    }

    /// `/search <words>`: the chats whose title or messages hold every word (BEHAVIOUR §18);
    /// `/switch <n>` then opens one.
    async fn search(&mut self, words: &str) -> Result<(), String> {
        if words.trim().is_empty() {
            return Err("usage: /search <words>".into());
        }
        let owner = self.actor.user_id().unwrap_or_default();
        self.show_chats(ChatFilter::owner(owner).with_query(words), "[no chat matches]").await
    }

    async fn show_chats(&mut self, filter: ChatFilter, none: &str) -> Result<(), String> {
        let page = self.chatd.list_chats(&self.actor, filter).await.map_err(|e| e.to_string())?;
        self.listed = page.items.iter().map(|c| c.id).collect();
        if page.items.is_empty() {
            self.printer.say(none);
        }
        for (n, chat) in page.items.iter().enumerate() {
            let mark = if Some(chat.id) == self.chat { "*" } else { " " };
            self.printer.say(&format!(
                "{mark}{:>3}. {} ({}) {}",
                n + 1,
                chat.title,
                chat.status,
                chat.id
            ));
        }
        Ok(())
    }

    async fn switch(&mut self, which: &str) -> Result<(), String> {
        let chat = match which.parse::<usize>() {
            Ok(n) if n >= 1 => *self.listed.get(n - 1).ok_or("no such number: /list first")?,
            _ => ChatId(which.parse().map_err(|_| "give a number from /list or a chat id")?),
        };
        self.open(chat).await
    }

    async fn history(&mut self) -> Result<(), String> {
        let chat = self.chat.ok_or("no chat open")?;
        let messages =
            self.chatd.list_messages(&self.actor, chat, None).await.map_err(|e| e.to_string())?;
        for message in messages {
            let text: String = summary(&message).chars().take(120).collect();
            let files = files_of(&message);
            self.printer.say(&format!("[{}] {}: {text}{files}", message.id.0, message.role));
        }
        Ok(())
    }

    async fn edit(&mut self, rest: &str) -> Result<(), String> {
        let chat = self.chat.ok_or("no chat open")?;
        let (id, text) = rest.split_once(' ').ok_or("usage: /edit <message id> <new text>")?;
        let id = MessageId(id.parse().map_err(|_| "the message id is a number (see /history)")?);
        let edited = self
            .chatd
            .edit_message(&self.actor, chat, id, vec![Part::text(text)])
            .await
            .map_err(|e| e.to_string())?;
        self.printer.sent(text);
        if !self.interactive {
            self.waiting = Some(edited.message.id.0);
        }
        Ok(())
    }

    /// `/fork [id]`: forks the open chat at that message (the last one by default) and
    /// opens the fork (BEHAVIOUR §18).
    async fn fork(&mut self, rest: &str) -> Result<(), String> {
        let chat = self.chat.ok_or("no chat open")?;
        let at = if rest.is_empty() {
            let messages = self.chatd.list_messages(&self.actor, chat, None).await;
            messages.map_err(|e| e.to_string())?.last().map(|m| m.id).ok_or("the chat is empty")?
        } else {
            MessageId(rest.parse().map_err(|_| "the message id is a number (see /history)")?)
        };
        let fork = self.chatd.fork_chat(&self.actor, chat, at).await.map_err(|e| e.to_string())?;
        self.open(fork.id).await?;
        if fork.status == ChatStatus::Pending && !self.interactive {
            // The fork answers its last message anew: wait for that turn.
            let copied = self.chatd.list_messages(&self.actor, fork.id, None).await;
            self.waiting = copied.map_err(|e| e.to_string())?.last().map(|m| m.id.0);
        }
        Ok(())
    }

    async fn queue(&mut self) -> Result<(), String> {
        let chat = self.chat.ok_or("no chat open")?;
        let queue = self.chatd.list_queued(&self.actor, chat).await.map_err(|e| e.to_string())?;
        if queue.is_empty() {
            self.printer.say("[the queue is empty]");
        }
        for queued in queue {
            let text: String = queued
                .content
                .iter()
                .filter_map(|p| match p {
                    Part::Text { text, .. } => Some(text.as_str()),
                    _ => None,
                })
                .collect();
            self.printer.say(&format!("  {}: {text}", queued.id.0));
        }
        Ok(())
    }

    fn queued_id(rest: &str) -> Result<QueuedMessageId, String> {
        rest.parse()
            .map(QueuedMessageId)
            .map_err(|_| "give a queued message id (see /queue)".to_owned())
    }

    async fn promote(&mut self, rest: &str) -> Result<(), String> {
        let chat = self.chat.ok_or("no chat open")?;
        self.chatd
            .promote_queued(&self.actor, chat, Self::queued_id(rest)?)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    async fn drop_queued(&mut self, rest: &str) -> Result<(), String> {
        let chat = self.chat.ok_or("no chat open")?;
        let queue = self
            .chatd
            .delete_queued(&self.actor, chat, Self::queued_id(rest)?)
            .await
            .map_err(|e| e.to_string())?;
        self.printer.say(&format!("[{} left in the queue]", queue.len()));
        Ok(())
    }

    async fn compact(&mut self) -> Result<(), String> {
        let chat = self.chat.ok_or("no chat open")?;
        let rows = self.chatd.compact(&self.actor, chat).await.map_err(|e| e.to_string())?;
        self.printer.say(&format!("[compacted: {} summary rows]", rows.len()));
        Ok(())
    }

    async fn models(&mut self) -> Result<(), String> {
        let configs = self.chatd.model_configs(&self.actor).await.map_err(|e| e.to_string())?;
        for (n, config) in configs.iter().enumerate() {
            let mark =
                if Some(config.id) == self.model || (self.model.is_none() && config.is_default) {
                    "*"
                } else {
                    " "
                };
            self.printer.say(&format!(
                "{mark}{:>3}. {} {} ({})",
                n + 1,
                config.provider,
                config.model,
                config.id
            ));
        }
        Ok(())
    }

    async fn choose_model(&mut self, which: &str) -> Result<(), String> {
        let configs = self.chatd.model_configs(&self.actor).await.map_err(|e| e.to_string())?;
        let n: usize = which.parse().map_err(|_| "give a number from /models")?;
        let config = configs.get(n.wrapping_sub(1)).ok_or("no such number: /models")?;
        self.model = Some(config.id);
        self.printer.say(&format!("[next messages use {}]", config.model));
        Ok(())
    }
}

async fn next(events: &mut Option<BoxStream<'static, ChatEvent>>) -> Option<ChatEvent> {
    match events {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

/// One line for a message in `/history`: its text, else what its tool calls or results were
/// (a tool step has no text of its own).
fn summary(message: &chatd_core::Message) -> String {
    let text = message.text();
    if !text.trim().is_empty() {
        return text.replace('\n', " ");
    }
    let parts: Vec<String> = message
        .content
        .iter()
        .filter_map(|part| match part {
            Part::ToolCall { tool_name, args, .. } => Some(format!("⚙ {tool_name} {args}")),
            Part::ToolResult { tool_name, is_error, .. } => {
                Some(format!("← {tool_name} {}", if *is_error { "failed" } else { "ok" }))
            }
            _ => None,
        })
        .collect();
    parts.join("; ")
}

/// The files of a message, as `/history` lists them after its text.
fn files_of(message: &chatd_core::Message) -> String {
    message
        .content
        .iter()
        .filter_map(|part| match part {
            Part::File { name, media_type, .. } => {
                Some(format!(" [📎 {}]", name.as_deref().unwrap_or(media_type)))
            }
            _ => None,
        })
        .collect()
}

/// Micro-units as a decimal amount of the prices' currency (`0.001533`).
fn money(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let micros = micros.unsigned_abs();
    format!("{sign}{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}
