//! Who is asking ([BEHAVIOUR §11](crate::behaviour#11-authorization)).

use std::collections::BTreeSet;

use crate::ids::UserId;

/// A permission a user's credentials carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// `chat:create`.
    Create,
    /// `chat:read`.
    Read,
    /// `chat:update` (send, edit, queue, interrupt, pause, archive, compact).
    Update,
    /// `chat:delete`.
    Delete,
}

impl Scope {
    /// Every scope (`chat:*`).
    pub const ALL: [Scope; 4] = [Scope::Create, Scope::Read, Scope::Update, Scope::Delete];

    /// The scope's name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Create => "chat:create",
            Scope::Read => "chat:read",
            Scope::Update => "chat:update",
            Scope::Delete => "chat:delete",
        }
    }

    /// Parses `chat:create|read|update|delete`; `chat:*` is every scope.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Vec<Scope>> {
        match raw {
            "chat:*" => Some(Scope::ALL.to_vec()),
            other => Scope::ALL.iter().find(|s| s.as_str() == other).map(|s| vec![*s]),
        }
    }
}

/// A person using the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Their id.
    pub id: UserId,
    /// What their credentials allow.
    pub scopes: BTreeSet<Scope>,
    /// Whether they administer providers and model configs.
    pub admin: bool,
}

/// Who performs an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A person: their own chats only, within their scopes.
    User(User),
    /// The system (workers, maintenance): everything.
    System,
}

impl Actor {
    /// A user with every chat scope, not an admin.
    #[must_use]
    pub fn user(id: UserId) -> Self {
        Actor::User(User { id, scopes: Scope::ALL.into_iter().collect(), admin: false })
    }

    /// A user with exactly `scopes`.
    #[must_use]
    pub fn with_scopes(id: UserId, scopes: impl IntoIterator<Item = Scope>) -> Self {
        Actor::User(User { id, scopes: scopes.into_iter().collect(), admin: false })
    }

    /// An administrator with every chat scope.
    #[must_use]
    pub fn admin(id: UserId) -> Self {
        Actor::User(User { id, scopes: Scope::ALL.into_iter().collect(), admin: true })
    }

    /// The user's id (`None` for the system).
    #[must_use]
    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Actor::User(user) => Some(user.id),
            Actor::System => None,
        }
    }

    /// Whether the actor administers configuration.
    #[must_use]
    pub fn is_admin(&self) -> bool {
        match self {
            Actor::User(user) => user.admin,
            Actor::System => true,
        }
    }

    /// Whether the actor holds `scope`.
    #[must_use]
    pub fn has(&self, scope: Scope) -> bool {
        match self {
            Actor::User(user) => user.scopes.contains(&scope),
            Actor::System => true,
        }
    }
}
