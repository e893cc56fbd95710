//! A string that never shows itself.

use std::fmt;

use serde::Deserialize;

/// A secret value (a provider API key). `Debug` and `Display` print `***`; the value is
/// only reachable through [`Secret::expose`]. It deliberately does not implement
/// `Serialize`, so it cannot end up in an event or an API response by accident. Its bytes
/// are overwritten with zeros when it is dropped (copies made from [`Secret::expose`], such
/// as a request's header, are not).
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value. Call it only where the value is sent to its destination.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty (no key configured).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() { f.write_str("Secret(\"\")") } else { f.write_str("Secret(***)") }
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_redact_in_debug_and_display() {
        let secret = Secret::new("sk-live-123");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(format!("{secret}"), "***");
        assert!(!format!("{:?}", Some(&secret)).contains("sk-live"));
        assert_eq!(secret.expose(), "sk-live-123");
    }
}
