//! Store, model and worker set-up shared by the example programs.

use chatd_core::limits::{SpendLimiter, SpendLimits, SpendPolicy};
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use chatd_core::provider::{ModelProvider, ProviderError};
use chatd_core::runtime::tools::{
    LocalWorkspace, SandboxMode, SandboxPolicy, ToolContext, ToolError, ToolSet, Workspace,
    WorkspaceSource,
};
use chatd_core::runtime::turn::{ProviderSource, TurnRunner};
use chatd_core::runtime::worker::Worker;
use chatd_core::store::ChatStore;
use chatd_core::{ModelConfig, NewModelConfig, NewProvider, ProviderKind};
use chatd_providers::{ProviderRegistry, StoreProviderSource};
use chatd_store_memory::InMemoryChatStore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::ask::AskSwitch;
use crate::model::{DEMO_MODEL, DemoModel, location_tool};

/// Any error of the set-up, with its message.
pub type SetupError = Box<dyn std::error::Error + Send + Sync>;

/// The store: PostgreSQL at `database_url` (migrated, with a cipher for provider keys:
/// see [`crate::keys`]; where the key came from is said on standard error), else a fresh
/// in-memory store.
///
/// # Errors
/// When PostgreSQL cannot be reached or migrated, or the key is unusable or does not open
/// the stored keys.
pub async fn open_store(database_url: Option<&str>) -> Result<Arc<dyn ChatStore>, SetupError> {
    Ok(match database_url {
        Some(url) => {
            let store = crate::startup::connect_postgres(url).await?;
            store.migrate().await?;
            let (cipher, source) = crate::keys::cipher()?;
            store.use_cipher(Arc::new(cipher)).await?;
            eprintln!("{}", crate::keys::describe(&source));
            Arc::new(store)
        }
        None => Arc::new(InMemoryChatStore::new()),
    })
}

/// Which model chats use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelChoice {
    /// The offline [`DemoModel`].
    Demo,
    /// An OpenAI-compatible server (OpenAI, Ollama, vLLM, LiteLLM, ...).
    OpenAiCompat {
        /// Its base URL, e.g. `https://api.openai.com/v1`.
        base_url: String,
        /// The model name.
        model: String,
        /// Its key (empty: none; `OPENAI_COMPAT_API_KEY` is read when none is stored).
        api_key: String,
    },
}

impl ModelChoice {
    /// From command-line values: a base URL selects a real server, else the demo.
    #[must_use]
    pub fn from_flags(
        base_url: Option<String>,
        model: Option<String>,
        api_key: Option<String>,
    ) -> Self {
        match base_url {
            Some(base_url) => ModelChoice::OpenAiCompat {
                base_url,
                model: model.unwrap_or_else(|| "gpt-4.1-mini".into()),
                api_key: api_key.unwrap_or_default(),
            },
            None => ModelChoice::Demo,
        }
    }

    fn model(&self) -> &str {
        match self {
            ModelChoice::Demo => DEMO_MODEL,
            ModelChoice::OpenAiCompat { model, .. } => model,
        }
    }
}

/// The command-line flags that choose the model, shared by the example programs.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelFlags {
    /// An OpenAI-compatible endpoint (default: the offline demo model).
    #[arg(long)]
    pub base_url: Option<String>,
    /// The model name (with `--base-url`).
    #[arg(long)]
    pub model: Option<String>,
    /// The API key (with `--base-url`; default `OPENAI_API_KEY`).
    #[arg(long)]
    pub api_key: Option<String>,
    /// The demo model's pause before each word, in milliseconds.
    #[arg(long, default_value_t = 35)]
    pub word_delay_ms: u64,
    /// What each user may spend per UTC day, in the prices' currency (e.g. `0.05`); sends
    /// and model calls past it are refused (BEHAVIOUR §17). Default: no limit.
    #[arg(long)]
    pub daily_spend_limit: Option<f64>,
}

impl ModelFlags {
    /// The model chosen (the key falls back to `OPENAI_API_KEY`).
    #[must_use]
    pub fn choice(&self) -> ModelChoice {
        let api_key = self.api_key.clone().or_else(|| std::env::var("OPENAI_API_KEY").ok());
        ModelChoice::from_flags(self.base_url.clone(), self.model.clone(), api_key)
    }

    /// A set-up over `store` with this choice and demo speed.
    #[must_use]
    pub fn setup(&self, store: Arc<dyn ChatStore>, workspaces: PathBuf) -> Setup {
        let mut setup = Setup::new(store, self.choice(), workspaces);
        setup.demo = DemoModel::with_delay(std::time::Duration::from_millis(self.word_delay_ms));
        if let Some(limit) = self.daily_spend_limit.filter(|l| l.is_finite() && *l >= 0.0) {
            // Whole micro-units; a limit past i64 is no limit at all.
            #[allow(clippy::cast_possible_truncation)]
            let micros = (limit * 1e6).round().min(9.0e18) as i64;
            setup.spend = Some(SpendLimits::none().owner_per_day(micros));
        }
        setup
    }
}

/// Each chat gets its own directory under a root, opened as a [`LocalWorkspace`] (commands
/// confined with Landlock where the kernel has it, else run with a warning).
#[derive(Debug, Clone)]
pub struct DirPerChat {
    root: PathBuf,
}

impl DirPerChat {
    /// Workspaces under `root` (created when needed).
    #[must_use]
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirPerChat { root: root.into() }
    }
}

#[async_trait]
impl WorkspaceSource for DirPerChat {
    async fn workspace(&self, ctx: &ToolContext) -> Result<Arc<dyn Workspace>, ToolError> {
        let dir = self.root.join(ctx.chat_id.0.to_string());
        std::fs::create_dir_all(&dir)
            .map_err(|err| ToolError::new(format!("cannot create the workspace: {err}")))?;
        let policy = SandboxPolicy::new(SandboxMode::BestEffort);
        let workspace = LocalWorkspace::open_with(&dir, &policy)
            .map_err(|err| ToolError::new(format!("cannot open the workspace: {err}")))?;
        Ok(Arc::new(workspace))
    }
}

/// Answers the demo model's config with the [`DemoModel`], any other through the stored
/// providers.
struct DemoSource {
    demo: DemoModel,
    stored: StoreProviderSource,
}

#[async_trait]
impl ProviderSource for DemoSource {
    async fn provider(
        &self,
        config: &ModelConfig,
    ) -> Result<Arc<dyn ModelProvider>, ProviderError> {
        if config.model == DEMO_MODEL {
            return Ok(self.demo.clone().shared());
        }
        self.stored.provider(config).await
    }
}

/// Everything a program needs to run chats: the store, the model, the workspaces.
#[derive(Clone)]
pub struct Setup {
    /// The store.
    pub store: Arc<dyn ChatStore>,
    /// The model chats use.
    pub choice: ModelChoice,
    /// Where the per-chat workspaces live.
    pub workspaces: PathBuf,
    /// The demo model (its word delay).
    pub demo: DemoModel,
    /// Which chats ask before their tools change the workspace (on for every chat unless
    /// switched off).
    pub ask: AskSwitch,
    /// Every user's limits (none by default).
    pub spend: Option<SpendLimits>,
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setup").field("workspaces", &self.workspaces).finish_non_exhaustive()
    }
}

impl Setup {
    /// A set-up over `store`.
    #[must_use]
    pub fn new(store: Arc<dyn ChatStore>, choice: ModelChoice, workspaces: PathBuf) -> Self {
        Setup {
            store,
            choice,
            workspaces,
            demo: DemoModel::default(),
            ask: AskSwitch::default(),
            spend: None,
        }
    }

    /// Makes sure the chosen model is configured and the default: creates the provider and
    /// the model config unless a config of that model exists (a shared PostgreSQL store
    /// keeps them between runs).
    ///
    /// # Errors
    /// The store's.
    pub async fn seed(&self) -> Result<ModelConfig, SetupError> {
        let configs = self.store.list_model_configs(true).await?;
        if let Some(found) = configs.iter().find(|c| c.model == self.choice.model() && !c.deleted) {
            return Ok(found.clone());
        }
        let (base_url, api_key) = match &self.choice {
            ModelChoice::Demo => (String::new(), String::new()),
            ModelChoice::OpenAiCompat { base_url, api_key, .. } => {
                (base_url.clone(), api_key.clone())
            }
        };
        let providers = self.store.list_providers().await?;
        if !providers.iter().any(|p| p.provider == ProviderKind::OpenAiCompat) {
            let provider = NewProvider::new(ProviderKind::OpenAiCompat)
                .with_base_url(base_url)
                .with_api_key(api_key);
            self.store.create_provider(provider).await?;
        }
        let name = self.choice.model();
        let mut config =
            NewModelConfig::new(ProviderKind::OpenAiCompat, name, 128_000).as_default();
        if matches!(self.choice, ModelChoice::Demo) {
            // Made-up prices, so that the demo shows costs: 3 per million input tokens, 15 per
            // million output tokens (a real model's are the administrator's to set).
            config = config.with_prices(chatd_core::usage::Prices::new(3_000_000, 15_000_000));
        }
        Ok(self.store.create_model_config(config).await?)
    }

    /// Where the chats' models come from.
    #[must_use]
    pub fn providers(&self) -> Arc<dyn ProviderSource> {
        let stored = StoreProviderSource::new(Arc::clone(&self.store), ProviderRegistry::new());
        Arc::new(DemoSource { demo: self.demo.clone(), stored })
    }

    /// A turn runner with the workspace tools (one directory per chat) and the client tool
    /// [`location_tool`], asking before tools change a workspace while the chat's
    /// [`AskSwitch`] is on. Generated titles are on for a real model only (the demo model
    /// has no title trick).
    #[must_use]
    pub fn runner(&self) -> TurnRunner {
        let tools = ToolSet::workspace_from(Arc::new(DirPerChat::new(&self.workspaces)))
            .with(Arc::new(location_tool()));
        let runner = TurnRunner::new(Arc::clone(&self.store), self.providers(), tools)
            .with_titles(self.choice != ModelChoice::Demo)
            .with_policy(Arc::new(self.ask.clone()));
        match self.spend_policy() {
            Some(policy) => runner.with_spend_policy(policy),
            None => runner,
        }
    }

    /// The spend limiter of [`Setup::spend`], for the workers' runners and the service.
    #[must_use]
    pub fn spend_policy(&self) -> Option<Arc<dyn SpendPolicy>> {
        self.spend.map(|limits| Arc::new(SpendLimiter::new(limits)) as Arc<dyn SpendPolicy>)
    }

    /// A service over the store with these models (and the spend limits, if any).
    #[must_use]
    pub fn chatd(&self) -> chatd_core::Chatd {
        let chatd =
            chatd_core::Chatd::new(Arc::clone(&self.store)).with_providers(self.providers());
        match self.spend_policy() {
            Some(policy) => chatd.with_spend_policy(policy),
            None => chatd,
        }
    }

    /// A worker over the store.
    #[must_use]
    pub fn worker(&self) -> Worker {
        Worker::new(Arc::clone(&self.store), self.runner())
    }

    /// Starts `count` in-process workers; they stop when `shutdown` fires.
    #[must_use]
    pub fn spawn_workers(&self, count: usize, shutdown: &CancellationToken) -> Vec<JoinHandle<()>> {
        (0..count).map(|_| tokio::spawn(self.worker().run(shutdown.clone()))).collect()
    }
}
