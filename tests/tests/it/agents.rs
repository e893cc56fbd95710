//! Provisioning and sub-agents (BEHAVIOUR §13) through the turn runner: templates, workspaces
//! bound per chat, child chats, their tool restrictions and the descendant check.

use std::sync::Arc;
use std::time::Duration;

use chatd_core::runtime::tools::{
    AgentOptions, ChatWorkspaces, LocalProvisioner, NewWorkspace, Provisioner, ToolContext, ToolSet,
};
use chatd_core::runtime::turn::{TurnEnd, TurnRunner, TurnSignal};
use chatd_core::store::{ChatStore, MessageQuery};
use chatd_core::testing::pinned::CHILD_CANNOT_SPAWN;
use chatd_core::testing::{ScriptedCall, ScriptedProvider};
use chatd_core::{ChatId, ChatStatus, NewChat, Part, ProviderKind, TurnOutcome, UserId, WorkerId};
use chatd_store_memory::InMemoryChatStore;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::Scripted;

const ROOT_ONLY: [&str; 7] = [
    "list_templates",
    "read_template",
    "create_workspace",
    "spawn_agent",
    "wait_agent",
    "message_agent",
    "close_agent",
];

struct World {
    store: Arc<dyn ChatStore>,
    tools: ToolSet,
    provisioner: Arc<LocalProvisioner>,
    _dirs: tempfile::TempDir,
}

async fn world() -> World {
    let dirs = tempfile::tempdir().expect("tempdir");
    let templates = dirs.path().join("templates");
    std::fs::create_dir_all(templates.join("rust-service/src")).expect("template");
    std::fs::write(
        templates.join("rust-service/template.json"),
        r#"{"name": "Rust service", "description": "An HTTP service in Rust",
            "parameters": [{"name": "port", "default": "8080"}, {"name": "crate", "required": true}]}"#,
    )
    .expect("meta");
    std::fs::write(templates.join("rust-service/src/main.rs"), "fn main() {}\n").expect("file");
    std::fs::create_dir_all(templates.join("static-site")).expect("template");
    std::fs::write(templates.join("static-site/index.html"), "<h1>hi</h1>\n").expect("file");
    let provisioner = Arc::new(
        LocalProvisioner::new(&templates, dirs.path().join("workspaces")).expect("provisioner"),
    );
    let store: Arc<dyn ChatStore> = Arc::new(InMemoryChatStore::new());
    chatd_tests::configure(store.as_ref()).await;
    let shared: Arc<dyn Provisioner> = Arc::clone(&provisioner) as Arc<dyn Provisioner>;
    let tools = ToolSet::workspace_from(Arc::new(ChatWorkspaces::new(
        Arc::clone(&store),
        Arc::clone(&shared),
    )))
    .merge(ToolSet::provisioning(Arc::clone(&store), shared))
    .merge(ToolSet::agents(
        Arc::clone(&store),
        AgentOptions::default().with_poll(Duration::from_millis(10)),
    ));
    World { store, tools, provisioner, _dirs: dirs }
}

impl World {
    fn runner(&self, provider: &Arc<ScriptedProvider>) -> TurnRunner {
        TurnRunner::new(
            Arc::clone(&self.store),
            Arc::new(Scripted(Arc::clone(provider))),
            self.tools.clone(),
        )
        .with_titles(false)
    }

    async fn root(&self, text: &str) -> ChatId {
        let chat = self
            .store
            .create_chat(
                NewChat::new(UserId::new()).with_system_prompt("be useful").with_text(text),
            )
            .await
            .expect("chat");
        chat.id
    }

    /// Acquires `chat` (the only pending one) and runs its turn.
    async fn run(&self, chat: ChatId, provider: &Arc<ScriptedProvider>) -> TurnEnd {
        let leases = self.store.acquire(WorkerId::new(), 1).await.expect("acquire");
        assert_eq!(leases.iter().map(|l| l.chat_id).collect::<Vec<_>>(), vec![chat]);
        let end = self.runner(provider).run(leases[0], TurnSignal::new()).await;
        if let TurnEnd::Release(outcome) = &end {
            self.store.release(&leases[0], outcome.clone()).await.expect("release");
        }
        end
    }

    async fn results(&self, chat: ChatId) -> Vec<(String, bool, Value)> {
        let messages = self.store.list_messages(chat, MessageQuery::all()).await.expect("messages");
        messages
            .iter()
            .flat_map(|m| m.content.iter())
            .filter_map(|p| match p {
                Part::ToolResult { tool_name, is_error, result, .. } => {
                    Some((tool_name.clone(), *is_error, result.clone()))
                }
                _ => None,
            })
            .collect()
    }

    async fn ctx(&self, chat: ChatId) -> ToolContext {
        let chat = self.store.get_chat(chat).await.expect("chat");
        ToolContext::for_chat(&chat, CancellationToken::new())
    }
}

fn names(request: &chatd_core::provider::ModelRequest) -> Vec<String> {
    request.tools.iter().map(|t| t.name.clone()).collect()
}

#[tokio::test]
async fn create_workspace_copies_a_template_binds_it_and_is_idempotent_per_chat() {
    let w = world().await;
    let chat = w.root("set up a service").await;
    let provider = Arc::new(ScriptedProvider::new(
        ProviderKind::Anthropic,
        vec![
            ScriptedCall::tool_calls(&[("l", "list_templates", json!({"query": "rust"}))], None),
            ScriptedCall::tool_calls(
                &[("r", "read_template", json!({"template_id": "rust-service"}))],
                None,
            ),
            ScriptedCall::tool_calls(
                &[(
                    "c",
                    "create_workspace",
                    json!({"template_id": "rust-service", "parameters": {"crate": "svc"}}),
                )],
                None,
            ),
            ScriptedCall::tool_calls(
                &[
                    ("again", "create_workspace", json!({"template_id": "static-site"})),
                    ("read", "read_file", json!({"path": "src/main.rs"})),
                ],
                None,
            ),
            ScriptedCall::text("ready", None),
        ],
    ));
    assert_eq!(w.run(chat, &provider).await, TurnEnd::Release(TurnOutcome::Finished));
    let results = w.results(chat).await;
    assert!(results.iter().all(|(_, is_error, _)| !is_error), "{results:#?}");
    assert_eq!(results[0].2["templates"].as_array().map(Vec::len), Some(1));
    assert_eq!(results[0].2["templates"][0]["id"], "rust-service");
    assert_eq!(results[1].2["files"], json!(["src/main.rs"]));
    assert_eq!(results[2].2["created"], true);
    assert_eq!(results[2].2["parameters"], json!({"crate": "svc", "port": "8080"}));
    assert_eq!(results[3].2["created"], false, "a second call keeps the first workspace");
    assert_eq!(results[4].2["content"], "fn main() {}\n", "file tools act in the new workspace");
    let bound = w.store.get_chat(chat).await.expect("chat").workspace_id;
    let bound_id = bound.expect("bound");
    assert_eq!(results[2].2["workspace_id"], json!(bound_id));
    assert_eq!(
        w.provisioner.workspace_owner(bound_id).await.expect("owner"),
        Some(w.store.get_chat(chat).await.expect("chat").owner_id),
        "the provisioner records the owner"
    );
    // The provisioner itself is idempotent per chat, whatever the template asked for.
    let again = w
        .provisioner
        .create_workspace(chat, UserId::new(), &NewWorkspace::new("static-site"))
        .await
        .expect("again");
    assert_eq!(
        (again.workspace_id, again.template_id.as_str()),
        (bound.expect("bound"), "rust-service")
    );
}

#[tokio::test]
async fn provisioning_rejects_unknown_templates_bad_parameters_and_path_tricks() {
    let w = world().await;
    let ctx = w.ctx(w.root("x").await).await;
    let run = |name: &'static str, args: Value| {
        let tools = w.tools.clone();
        let ctx = ctx.clone();
        async move {
            let call = Part::tool_call("c", name, args);
            let results = tools.run_calls(&ctx, &[call]).await.expect("not cancelled");
            match &results[0] {
                Part::ToolResult { is_error: true, result, .. } => {
                    result["error"].as_str().unwrap_or_default().to_owned()
                }
                other => panic!("expected an error, got {other:?}"),
            }
        }
    };
    assert!(
        run("read_template", json!({"template_id": "../templates"}))
            .await
            .contains("unknown template")
    );
    assert!(
        run("read_template", json!({"template_id": "/etc"})).await.contains("unknown template")
    );
    assert!(
        run("create_workspace", json!({"template_id": "nope"})).await.contains("unknown template")
    );
    assert!(
        run("create_workspace", json!({"template_id": "rust-service"}))
            .await
            .contains("\"crate\" is required")
    );
    assert!(
        run(
            "create_workspace",
            json!({"template_id": "rust-service", "parameters": {"crate": "a", "colour": "red"}})
        )
        .await
        .contains("unknown parameter \"colour\"")
    );
    assert!(run("read_file", json!({"path": "a"})).await.contains("no workspace yet"));
}

#[tokio::test]
async fn child_chats_lack_provisioning_and_sub_agent_tools_and_report_back() {
    let w = world().await;
    let root = w.root("delegate").await;
    let root_provider = Arc::new(ScriptedProvider::new(
        ProviderKind::Anthropic,
        vec![
            ScriptedCall::tool_calls(
                &[(
                    "c",
                    "create_workspace",
                    json!({"template_id": "rust-service", "parameters": {"crate": "svc"}}),
                )],
                None,
            ),
            ScriptedCall::tool_calls(
                &[("s", "spawn_agent", json!({"prompt": "count the files", "title": "Counter"}))],
                None,
            ),
            ScriptedCall::text("delegated", None),
        ],
    ));
    assert_eq!(w.run(root, &root_provider).await, TurnEnd::Release(TurnOutcome::Finished));
    let results = w.results(root).await;
    let child: ChatId = serde_json::from_value(results[1].2["chat_id"].clone()).expect("child id");
    let child_chat = w.store.get_chat(child).await.expect("child");
    assert_eq!(child_chat.parent_chat_id, Some(root));
    assert_eq!(child_chat.title, "Counter");
    assert_eq!(child_chat.status, ChatStatus::Pending);
    assert_eq!(child_chat.workspace_id, w.store.get_chat(root).await.expect("root").workspace_id);

    // The child's turn: it is offered no root-only tool, reads the shared workspace, and
    // its spawn_agent call is refused with the documented text.
    let child_provider = Arc::new(ScriptedProvider::new(
        ProviderKind::Anthropic,
        vec![
            ScriptedCall::tool_calls(
                &[
                    ("r", "read_file", json!({"path": "src/main.rs"})),
                    ("s", "spawn_agent", json!({"prompt": "grandchild"})),
                    ("l", "list_templates", json!({})),
                ],
                None,
            ),
            ScriptedCall::text("There is 1 file.", None),
        ],
    ));
    assert_eq!(w.run(child, &child_provider).await, TurnEnd::Release(TurnOutcome::Finished));
    let offered = names(&child_provider.requests()[0]);
    assert!(offered.contains(&"read_file".to_owned()));
    for tool in ROOT_ONLY {
        assert!(!offered.contains(&tool.to_owned()), "{tool} offered to a child: {offered:?}");
    }
    let child_results = w.results(child).await;
    assert_eq!(child_results[0].2["content"], "fn main() {}\n");
    assert_eq!(
        child_results[1],
        ("spawn_agent".to_owned(), true, json!({"error": CHILD_CANNOT_SPAWN}))
    );
    assert!(child_results[2].1, "provisioning refused for a child");
    assert!(w.store.list_children(child).await.expect("children").is_empty());

    // Back in the root: wait_agent returns the child's report; message_agent and
    // close_agent act on it.
    w.store
        .send_message(root, chatd_core::store::SendMessage::text("status?"))
        .await
        .expect("send");
    let root_provider = Arc::new(ScriptedProvider::new(
        ProviderKind::Anthropic,
        vec![
            ScriptedCall::tool_calls(
                &[("w", "wait_agent", json!({"chat_id": child, "timeout_seconds": 5}))],
                None,
            ),
            ScriptedCall::tool_calls(
                &[("m", "message_agent", json!({"chat_id": child, "message": "thanks"}))],
                None,
            ),
            ScriptedCall::tool_calls(&[("x", "close_agent", json!({"chat_id": child}))], None),
            ScriptedCall::text("done", None),
        ],
    ));
    let root_offers: Vec<String> =
        w.tools.definitions_for(chatd_core::ChatKind::Root).into_iter().map(|t| t.name).collect();
    assert!(ROOT_ONLY.iter().all(|t| root_offers.contains(&(*t).to_owned())));
    assert_eq!(w.run(root, &root_provider).await, TurnEnd::Release(TurnOutcome::Finished));
    let results = w.results(root).await;
    assert_eq!(results[2].2["report"], "There is 1 file.");
    assert_eq!(results[3].2["delivery"], "delivered");
    assert_eq!(results[4].2["closed"], true);
    let closed = w.store.get_chat(child).await.expect("child");
    assert!(closed.archived);
    assert_eq!(closed.status, ChatStatus::Paused, "closing keeps the message from running");
}

#[tokio::test]
async fn wait_agent_reports_a_failed_child_and_refuses_chats_that_are_not_descendants() {
    let w = world().await;
    let root = w.root("a").await;
    let stranger = w.root("b").await;
    let owner = w.store.get_chat(root).await.expect("root").owner_id;
    let child = w
        .store
        .create_chat(NewChat::new(owner).with_parent(root).with_text("work"))
        .await
        .expect("child");
    let ctx = w.ctx(root).await;
    let call = |args: Value| Part::tool_call("w", "wait_agent", args);
    // Another root chat is not a descendant; neither is the chat itself.
    for target in [stranger, root] {
        let results = w
            .tools
            .run_calls(&ctx, &[call(json!({"chat_id": target, "timeout_seconds": 1}))])
            .await
            .expect("not cancelled");
        let Part::ToolResult { is_error, result, .. } = &results[0] else { panic!() };
        assert!(*is_error);
        assert!(result["error"].as_str().unwrap_or_default().contains("no sub-agent"), "{result}");
    }
    // A pending child that never runs: the wait times out with an error result.
    let results = w
        .tools
        .run_calls(&ctx, &[call(json!({"chat_id": child.id, "timeout_seconds": 0}))])
        .await
        .expect("not cancelled");
    let Part::ToolResult { is_error, result, .. } = &results[0] else { panic!() };
    assert!(
        *is_error && result["error"].as_str().unwrap_or_default().contains("still pending"),
        "{result}"
    );
    // A child that failed: its error is the tool error.
    let lease = w.store.acquire(WorkerId::new(), 3).await.expect("acquire");
    let lease = lease.into_iter().find(|l| l.chat_id == child.id).expect("child lease");
    w.store.release(&lease, TurnOutcome::Failed("model exploded".into())).await.expect("release");
    let results = w
        .tools
        .run_calls(&ctx, &[call(json!({"chat_id": child.id}))])
        .await
        .expect("not cancelled");
    let Part::ToolResult { is_error, result, .. } = &results[0] else { panic!() };
    assert!(
        *is_error && result["error"].as_str().unwrap_or_default().contains("model exploded"),
        "{result}"
    );
    // A child context is refused outright.
    let results = w
        .tools
        .run_calls(&w.ctx(child.id).await, &[call(json!({"chat_id": child.id}))])
        .await
        .expect("not cancelled");
    let Part::ToolResult { result, .. } = &results[0] else { panic!() };
    assert_eq!(result["error"], "delegated chats cannot manage subagents");
}

#[tokio::test]
async fn spawn_agent_from_a_child_is_refused_with_the_spec_text() {
    let w = world().await;
    let root = w.root("a").await;
    let owner = w.store.get_chat(root).await.expect("root").owner_id;
    let child = w
        .store
        .create_chat(NewChat::new(owner).with_parent(root).with_text("work"))
        .await
        .expect("child");
    let call = Part::tool_call("s", "spawn_agent", json!({"prompt": "go deeper"}));
    let results = w.tools.run_calls(&w.ctx(child.id).await, &[call]).await.expect("not cancelled");
    assert_eq!(
        results,
        vec![Part::tool_result("s", "spawn_agent", json!({"error": CHILD_CANNOT_SPAWN}), true)]
    );
    assert_eq!(CHILD_CANNOT_SPAWN, "delegated chats cannot create child subagents");
    assert!(w.store.list_children(child.id).await.expect("children").is_empty());
}

// ----- ownership between users (BEHAVIOUR §11, §13) ---------------------------------------------

/// Runs `name(args)` as a call of `chat`'s model and returns (result, is_error).
async fn call_as(w: &World, chat: ChatId, name: &str, args: Value) -> (Value, bool) {
    let ctx = w.ctx(chat).await;
    let results =
        w.tools.run_calls(&ctx, &[Part::tool_call("c", name, args)]).await.expect("not cancelled");
    match &results[0] {
        Part::ToolResult { result, is_error, .. } => (result.clone(), *is_error),
        other => panic!("{other:?}"),
    }
}

/// Alice's and Bob's root chats, Bob's with a workspace holding a secret.
async fn alice_and_bob(w: &World) -> (ChatId, ChatId, chatd_core::WorkspaceId) {
    let alice = w.root("alice's chat").await;
    let bob = w.root("bob's chat").await;
    let (made, is_error) =
        call_as(w, bob, "create_workspace", json!({"template_id": "static-site"})).await;
    assert!(!is_error, "{made}");
    let (_, is_error) =
        call_as(w, bob, "write_file", json!({"path": "secret.txt", "content": "bob only"})).await;
    assert!(!is_error);
    let bob_ws = w.store.get_chat(bob).await.expect("bob").workspace_id.expect("bound");
    (alice, bob, bob_ws)
}

/// The local provisioner, plus workspace agents: each agent runs in one workspace.
struct WithAgents {
    local: Arc<LocalProvisioner>,
    agents: Vec<(chatd_core::WorkspaceAgentId, chatd_core::WorkspaceId)>,
}

#[async_trait::async_trait]
impl Provisioner for WithAgents {
    async fn list_templates(
        &self,
        owner: UserId,
        query: Option<&str>,
    ) -> Result<
        Vec<chatd_core::runtime::tools::TemplateSummary>,
        chatd_core::runtime::tools::ToolError,
    > {
        self.local.list_templates(owner, query).await
    }
    async fn read_template(
        &self,
        owner: UserId,
        id: &str,
    ) -> Result<chatd_core::runtime::tools::Template, chatd_core::runtime::tools::ToolError> {
        self.local.read_template(owner, id).await
    }
    async fn create_workspace(
        &self,
        chat: ChatId,
        owner: UserId,
        request: &NewWorkspace,
    ) -> Result<
        chatd_core::runtime::tools::ProvisionedWorkspace,
        chatd_core::runtime::tools::ToolError,
    > {
        self.local.create_workspace(chat, owner, request).await
    }
    async fn open_workspace(
        &self,
        id: chatd_core::WorkspaceId,
    ) -> Result<Arc<dyn chatd_core::runtime::tools::Workspace>, chatd_core::runtime::tools::ToolError>
    {
        self.local.open_workspace(id).await
    }
    async fn workspace_owner(
        &self,
        id: chatd_core::WorkspaceId,
    ) -> Result<Option<UserId>, chatd_core::runtime::tools::ToolError> {
        self.local.workspace_owner(id).await
    }
    async fn agent_workspace(
        &self,
        agent: chatd_core::WorkspaceAgentId,
    ) -> Result<Option<chatd_core::WorkspaceId>, chatd_core::runtime::tools::ToolError> {
        Ok(self.agents.iter().find(|(a, _)| *a == agent).map(|(_, w)| *w))
    }
}

#[tokio::test]
async fn a_workspace_agent_is_checked_like_its_workspace() {
    use chatd_core::service::{Actor, Chatd, ChatdError};
    use chatd_core::store::StoreError;
    let w = world().await;
    let (alice_chat, _bob, bob_ws) = alice_and_bob(&w).await;
    let alice = w.store.get_chat(alice_chat).await.expect("alice").owner_id;
    let (_, is_error) =
        call_as(&w, alice_chat, "create_workspace", json!({"template_id": "static-site"})).await;
    assert!(!is_error);
    let alice_ws = w.store.get_chat(alice_chat).await.expect("alice").workspace_id.expect("ws");
    let agent = || chatd_core::WorkspaceAgentId(uuid::Uuid::new_v4());
    let (alices_agent, bobs_agent, unknown) = (agent(), agent(), agent());
    let chatd = Chatd::new(Arc::clone(&w.store)).with_provisioner(Arc::new(WithAgents {
        local: Arc::clone(&w.provisioner),
        agents: vec![(alices_agent, alice_ws), (bobs_agent, bob_ws)],
    }) as Arc<dyn Provisioner>);
    let as_alice = Actor::user(alice);
    let create = |ws: Option<chatd_core::WorkspaceId>, agent| {
        let mut new = NewChat::new(alice);
        new.workspace_id = ws;
        new.workspace_agent_id = Some(agent);
        chatd.create_chat(&as_alice, new)
    };
    let is_agent_refusal = |err: &ChatdError| matches!(err, ChatdError::Store(StoreError::Validation { field, .. }) if field == "workspace_agent_id");
    let chat = create(Some(alice_ws), alices_agent).await.expect("her agent in her workspace");
    assert_eq!(chat.workspace_agent_id, Some(alices_agent));
    let err = create(Some(alice_ws), bobs_agent).await.expect_err("Bob's agent");
    assert!(is_agent_refusal(&err), "{err}");
    let other = create(Some(alice_ws), unknown).await.expect_err("an unknown agent");
    assert_eq!(
        err.to_string().replace(&bobs_agent.to_string(), "X"),
        other.to_string().replace(&unknown.to_string(), "X"),
        "existence does not leak"
    );
    let err = create(None, alices_agent).await.expect_err("an agent without its workspace");
    assert!(is_agent_refusal(&err), "{err}");
    let err = create(Some(bob_ws), bobs_agent).await.expect_err("Bob's workspace");
    assert!(err.to_string().contains("workspace"), "{err}");
    // The system actor binds what it is told.
    let mut new = NewChat::new(alice);
    new.workspace_id = Some(bob_ws);
    new.workspace_agent_id = Some(unknown);
    chatd.create_chat(&Actor::System, new).await.expect("the system binds freely");
}

#[tokio::test]
async fn alice_cannot_bind_bobs_workspace_through_create_chat() {
    use chatd_core::service::{Actor, Chatd};
    let w = world().await;
    let (alice_chat, _bob, bob_ws) = alice_and_bob(&w).await;
    let alice = w.store.get_chat(alice_chat).await.expect("alice").owner_id;
    let chatd = Chatd::new(Arc::clone(&w.store))
        .with_provisioner(Arc::clone(&w.provisioner) as Arc<dyn Provisioner>);
    let err = chatd
        .create_chat(&Actor::user(alice), NewChat::new(alice).with_workspace(bob_ws, None))
        .await
        .expect_err("Bob's workspace is refused");
    assert!(
        matches!(&err, chatd_core::service::ChatdError::Store(chatd_core::store::StoreError::Validation { field, .. }) if field == "workspace_id"),
        "{err}"
    );
    let unknown = chatd_core::WorkspaceId(uuid::Uuid::new_v4());
    let other = chatd
        .create_chat(&Actor::user(alice), NewChat::new(alice).with_workspace(unknown, None))
        .await
        .expect_err("an unknown workspace is refused");
    assert_eq!(
        err.to_string().replace(&bob_ws.to_string(), "X"),
        other.to_string().replace(&unknown.to_string(), "X"),
        "existence does not leak"
    );
    // Alice's own workspace is fine; without a provisioner no user may name one.
    let (_, is_error) =
        call_as(&w, alice_chat, "create_workspace", json!({"template_id": "static-site"})).await;
    assert!(!is_error);
    let alice_ws = w.store.get_chat(alice_chat).await.expect("alice").workspace_id.expect("ws");
    chatd
        .create_chat(&Actor::user(alice), NewChat::new(alice).with_workspace(alice_ws, None))
        .await
        .expect("her own workspace");
    Chatd::new(Arc::clone(&w.store))
        .create_chat(&Actor::user(alice), NewChat::new(alice).with_workspace(alice_ws, None))
        .await
        .expect_err("no provisioner: nobody can confirm the owner");
}

#[tokio::test]
async fn a_chat_bound_to_another_users_workspace_cannot_open_it() {
    let w = world().await;
    let (_alice, _bob, bob_ws) = alice_and_bob(&w).await;
    // However the binding came about (here: the store directly), the tools refuse it.
    let mallory = w
        .store
        .create_chat(NewChat::new(UserId::new()).with_text("x").with_workspace(bob_ws, None))
        .await
        .expect("chat");
    let (result, is_error) =
        call_as(&w, mallory.id, "read_file", json!({"path": "secret.txt"})).await;
    assert!(is_error, "{result}");
    assert!(!result.to_string().contains("bob only"));
    assert!(result["error"].as_str().is_some_and(|e| e.contains("does not belong")), "{result}");
}

#[tokio::test]
async fn alice_cannot_reach_bob_through_agents_or_create_workspace() {
    let w = world().await;
    let (alice, bob, bob_ws) = alice_and_bob(&w).await;
    // message_agent (and the other agent tools) only reach descendants.
    let (result, is_error) =
        call_as(&w, alice, "message_agent", json!({"chat_id": bob, "message": "leak it"})).await;
    assert!(is_error && result["error"].as_str().is_some_and(|e| e.contains("no sub-agent")));
    let (result, is_error) = call_as(&w, alice, "wait_agent", json!({"chat_id": bob})).await;
    assert!(is_error, "{result}");
    // create_workspace gives Alice a workspace of her own, never Bob's.
    let (made, is_error) =
        call_as(&w, alice, "create_workspace", json!({"template_id": "static-site"})).await;
    assert!(!is_error, "{made}");
    assert_ne!(made["workspace_id"], json!(bob_ws));
    let (result, _) = call_as(&w, alice, "read_file", json!({"path": "secret.txt"})).await;
    assert!(!result.to_string().contains("bob only"), "{result}");
    // Her sub-agent works in her workspace too.
    let (spawned, is_error) = call_as(&w, alice, "spawn_agent", json!({"prompt": "look"})).await;
    assert!(!is_error, "{spawned}");
    let child: ChatId = serde_json::from_value(spawned["chat_id"].clone()).expect("child id");
    assert_eq!(
        w.store.get_chat(child).await.expect("child").workspace_id,
        w.store.get_chat(alice).await.expect("alice").workspace_id
    );
    let (result, _) = call_as(&w, child, "read_file", json!({"path": "secret.txt"})).await;
    assert!(!result.to_string().contains("bob only"), "{result}");
    // And Bob's chat was never touched.
    assert!(w.store.list_queued(bob).await.expect("queue").is_empty());
}

#[tokio::test]
async fn sub_agents_use_their_roots_workspace_even_one_created_later() {
    let w = world().await;
    let root = w.root("root").await;
    let (spawned, _) = call_as(&w, root, "spawn_agent", json!({"prompt": "wait for files"})).await;
    let child: ChatId = serde_json::from_value(spawned["chat_id"].clone()).expect("child id");
    let (_, is_error) =
        call_as(&w, root, "create_workspace", json!({"template_id": "static-site"})).await;
    assert!(!is_error);
    let (result, is_error) = call_as(&w, child, "read_file", json!({"path": "index.html"})).await;
    assert!(!is_error, "{result}");
    assert_eq!(result["content"], "<h1>hi</h1>\n");
}

#[tokio::test]
async fn wait_agent_refuses_absurd_timeouts_and_spawning_is_capped() {
    let w = world().await;
    let root = w.root("root").await;
    let (spawned, _) = call_as(&w, root, "spawn_agent", json!({"prompt": "work"})).await;
    let child = spawned["chat_id"].clone();
    for timeout in [json!(1e18), json!(1_000_000_000_000_000_000_u64), json!(-5)] {
        let (result, is_error) =
            call_as(&w, root, "wait_agent", json!({"chat_id": child, "timeout_seconds": timeout}))
                .await;
        assert!(is_error, "{timeout}: {result}");
        assert!(
            result["error"].as_str().is_some_and(|e| e.contains("timeout_seconds")),
            "{timeout}: {result}"
        );
    }
    for _ in 1..chatd_core::testing::pinned::MAX_SUB_AGENTS {
        let (result, is_error) = call_as(&w, root, "spawn_agent", json!({"prompt": "more"})).await;
        assert!(!is_error, "{result}");
    }
    let (result, is_error) =
        call_as(&w, root, "spawn_agent", json!({"prompt": "one too many"})).await;
    assert!(
        is_error && result["error"].as_str().is_some_and(|e| e.contains("at most 16")),
        "{result}"
    );
    // Closing one makes room.
    let (_, is_error) = call_as(&w, root, "close_agent", json!({"chat_id": child})).await;
    assert!(!is_error);
    let (result, is_error) = call_as(&w, root, "spawn_agent", json!({"prompt": "room now"})).await;
    assert!(!is_error, "{result}");
}

#[tokio::test]
async fn template_copies_never_follow_links_out_of_the_template() {
    let dirs = tempfile::tempdir().expect("dirs");
    let (templates, outside) = (dirs.path().join("templates"), dirs.path().join("outside"));
    std::fs::create_dir_all(templates.join("linky")).expect("template");
    std::fs::create_dir_all(&outside).expect("outside");
    std::fs::write(outside.join("host-secret.txt"), "host secret").expect("secret");
    std::fs::write(templates.join("linky/README.md"), "hello\n").expect("file");
    std::os::unix::fs::symlink(outside.join("host-secret.txt"), templates.join("linky/leak.txt"))
        .expect("file link");
    std::os::unix::fs::symlink(&outside, templates.join("linky/dir-link")).expect("dir link");
    std::os::unix::fs::symlink(&outside, templates.join("whole")).expect("template link");
    std::os::unix::fs::symlink(outside.join("host-secret.txt"), outside.join("template.json"))
        .expect("meta link");
    let provisioner =
        LocalProvisioner::new(&templates, dirs.path().join("workspaces")).expect("provisioner");
    let owner = UserId::new();
    let made = provisioner
        .create_workspace(ChatId::new(), owner, &NewWorkspace::new("linky"))
        .await
        .expect("created");
    let root = provisioner.workspace_dir(made.workspace_id);
    assert!(root.join("README.md").is_file());
    assert!(!root.join("leak.txt").exists(), "a file link was followed");
    assert!(!root.join("dir-link").exists(), "a directory link was followed");
    let err = provisioner
        .create_workspace(ChatId::new(), owner, &NewWorkspace::new("whole"))
        .await
        .expect_err("a template that is a link is refused");
    assert!(err.message().contains("unknown template"), "{err}");
    let listed = provisioner.list_templates(owner, None).await.expect("list");
    assert_eq!(listed.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), vec!["linky"]);
}

#[tokio::test]
async fn the_sub_agent_cap_is_configurable() {
    let w = world().await;
    let tools = ToolSet::agents(Arc::clone(&w.store), AgentOptions::default().with_max_children(1));
    let root = w.root("root").await;
    let ctx = w.ctx(root).await;
    let spawn = |id: &str| Part::tool_call(id, "spawn_agent", json!({"prompt": "work"}));
    let first = tools.run_calls(&ctx, &[spawn("a")]).await.expect("not cancelled");
    assert!(matches!(&first[0], Part::ToolResult { is_error: false, .. }), "{first:?}");
    let second = tools.run_calls(&ctx, &[spawn("b")]).await.expect("not cancelled");
    assert!(
        matches!(&second[0], Part::ToolResult { is_error: true, result, .. } if result.to_string().contains("at most 1")),
        "{second:?}"
    );
}
