//! Bearer tokens → actors. Tokens come from a JSON file, the `CHATD_TOKENS` variable, or are
//! generated for the demo; only their SHA-256 digests are kept. A request authenticates with
//! `Authorization: Bearer <token>`, or with the `chatd_token` cookie that `POST /api/session`
//! sets (HttpOnly, SameSite=Strict) — a browser's `EventSource` cannot send headers.

use std::collections::{BTreeSet, HashMap};

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use chatd_core::UserId;
use chatd_core::service::{Actor, Scope, User};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;

/// The cookie a browser session carries.
pub const COOKIE_NAME: &str = "chatd_token";

/// One token's actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenEntry {
    /// The token itself (never kept after loading: only its digest).
    pub token: String,
    /// The user it stands for.
    pub user_id: UserId,
    /// Its scopes (`chat:create|read|update|delete`, `chat:*`); default every scope.
    #[serde(default = "all_scopes")]
    pub scopes: Vec<String>,
    /// Whether it administers providers and model configs.
    #[serde(default)]
    pub admin: bool,
    /// A name shown in the UI.
    #[serde(default)]
    pub name: String,
}

fn all_scopes() -> Vec<String> {
    vec!["chat:*".into()]
}

/// The token file's shape.
#[derive(Debug, Deserialize)]
struct TokenFile {
    tokens: Vec<TokenEntry>,
}

/// Who a token is.
#[derive(Debug, Clone)]
struct Identity {
    actor: Actor,
    name: String,
}

/// The tokens the server accepts.
#[derive(Debug, Default)]
pub struct Tokens {
    by_digest: HashMap<[u8; 32], Identity>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Tokens {
    /// The tokens of `entries`.
    ///
    /// # Errors
    /// An unknown scope, or an empty token.
    pub fn from_entries(entries: Vec<TokenEntry>) -> Result<Self, String> {
        let mut by_digest = HashMap::new();
        for entry in entries {
            if entry.token.trim().is_empty() {
                return Err(format!("the token of user {} is empty", entry.user_id));
            }
            let mut scopes = BTreeSet::new();
            for raw in &entry.scopes {
                scopes.extend(Scope::parse(raw).ok_or_else(|| format!("unknown scope {raw:?}"))?);
            }
            let actor = Actor::User(User { id: entry.user_id, scopes, admin: entry.admin });
            by_digest.insert(digest(&entry.token), Identity { actor, name: entry.name });
        }
        Ok(Tokens { by_digest })
    }

    /// Tokens from a JSON file `{"tokens": [{"token", "user_id", "scopes", "admin", "name"}]}`.
    ///
    /// # Errors
    /// An unreadable or malformed file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
        let file: TokenFile = serde_json::from_str(&text)
            .map_err(|err| format!("{} is not a token file: {err}", path.display()))?;
        Self::from_entries(file.tokens)
    }

    /// Tokens from `token=user-uuid[:admin]` pairs separated by commas (`CHATD_TOKENS`).
    ///
    /// # Errors
    /// A malformed pair.
    pub fn from_env_value(value: &str) -> Result<Self, String> {
        let mut entries = Vec::new();
        for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (token, rest) =
                pair.split_once('=').ok_or("CHATD_TOKENS: expected token=user-uuid[:admin]")?;
            let (user, admin) = match rest.split_once(':') {
                Some((user, "admin")) => (user, true),
                Some(_) => return Err("CHATD_TOKENS: the only flag is :admin".into()),
                None => (rest, false),
            };
            let user_id = user
                .parse::<uuid::Uuid>()
                .map_err(|_| format!("CHATD_TOKENS: {user:?} is not a UUID"))?;
            entries.push(TokenEntry {
                token: token.to_owned(),
                user_id: UserId(user_id),
                scopes: all_scopes(),
                admin,
                name: String::new(),
            });
        }
        Self::from_entries(entries)
    }

    /// The actor of `token`, if it is known.
    #[must_use]
    pub fn actor(&self, token: &str) -> Option<Actor> {
        self.by_digest.get(&digest(token)).map(|i| i.actor.clone())
    }

    fn identity(&self, token: &str) -> Option<&Identity> {
        self.by_digest.get(&digest(token))
    }

    /// How many tokens are accepted.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// Whether no token is accepted.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }
}

/// The token a request carries: the bearer header, else the session cookie.
fn token(parts: &Parts) -> Option<String> {
    if let Some(value) = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        // The scheme is case-insensitive (RFC 9110 §11.1): `bearer` is as good as `Bearer`.
        let (scheme, token) = value.trim().split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned());
    }
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.to_owned())
}

/// The authenticated actor of a request (401 otherwise).
#[derive(Debug, Clone)]
pub struct Authed {
    /// Who.
    pub actor: Actor,
    /// Their display name.
    pub name: String,
    /// The token used (to set the session cookie).
    pub(crate) token: String,
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = token(parts).ok_or_else(ApiError::unauthenticated)?;
        let identity = state.tokens.identity(&token).ok_or_else(ApiError::unauthenticated)?;
        Ok(Authed { actor: identity.actor.clone(), name: identity.name.clone(), token })
    }
}

/// An administrator (403 for anyone else).
#[derive(Debug, Clone)]
pub struct Admin(pub Actor);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let authed = Authed::from_request_parts(parts, state).await?;
        if !authed.actor.is_admin() {
            return Err(ApiError::forbidden("administrators only"));
        }
        Ok(Admin(authed.actor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_pairs_and_files_parse_and_bad_input_is_refused() {
        let user = uuid::Uuid::new_v4();
        let tokens = Tokens::from_env_value(&format!("abc={user}:admin, def={user}")).expect("ok");
        assert!(tokens.actor("abc").expect("known").is_admin());
        assert!(!tokens.actor("def").expect("known").is_admin());
        assert!(tokens.actor("nope").is_none());
        assert!(Tokens::from_env_value("abc").is_err());
        assert!(Tokens::from_env_value(&format!("abc={user}:root")).is_err());
        assert!(Tokens::from_env_value("abc=not-a-uuid").is_err());
        let entry = |scopes: &[&str]| TokenEntry {
            token: "t".into(),
            user_id: UserId(user),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            admin: false,
            name: String::new(),
        };
        let reader = Tokens::from_entries(vec![entry(&["chat:read"])]).expect("ok");
        let actor = reader.actor("t").expect("known");
        assert!(actor.has(Scope::Read) && !actor.has(Scope::Update));
        assert!(Tokens::from_entries(vec![entry(&["chat:everything"])]).is_err());
    }
}
