//! [`SecretCipher`]: provider API keys encrypted at rest ([BEHAVIOUR §12](crate::behaviour#12-secrets-and-input)).
//!
//! AES-256-GCM (RustCrypto `aes-gcm`) with a random 96-bit nonce per write. Each ciphertext
//! is bound to where it is stored — table, column and row id — **and to the endpoint it may
//! be sent to** (a provider's base URL; Bedrock's region travels in it or in the host's own
//! configuration) as associated data, so a ciphertext copied into another row (or column)
//! does not decrypt, and neither does one whose row's `base_url` a database writer changed:
//! the key is never sent to the new server. A key is named by its
//! digest (the first 16 hex characters of its SHA-256), which the stores keep in
//! `api_key_key_id` and in `dbcrypt_keys`. Several keys can be held for reading; the first
//! one writes. Key material is zeroised when dropped and never printed.
//!
//! Stored form: `v2:` then base64 (standard, padded) of `nonce ‖ ciphertext ‖ tag`. A value
//! without the prefix was written before keys were bound to their endpoint; it is refused
//! ([`CipherError::Unbound`]) and the key must be set again.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::secret::Secret;

/// Why a key could not be loaded, or a value could not be encrypted or decrypted. Never
/// carries key material or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CipherError {
    /// A key is not 32 bytes (or not valid base64).
    #[error("an encryption key must be 32 bytes (base64: 44 characters): {0}")]
    BadKey(String),
    /// The value was encrypted under a key this cipher does not hold.
    #[error("the value was encrypted with key {0}, which is not configured")]
    UnknownKey(String),
    /// The ciphertext is malformed, was altered, belongs to another row or column, or its
    /// row's endpoint changed.
    #[error(
        "the value does not decrypt with key {0} (altered, copied from elsewhere, or its \
         provider's base URL changed since it was stored: set the key again)"
    )]
    Invalid(String),
    /// The value was encrypted before keys were bound to their endpoint.
    #[error(
        "the value was encrypted with key {0} before keys were bound to their endpoint: set \
         the key again"
    )]
    Unbound(String),
}

/// The prefix of a ciphertext bound to its endpoint.
pub(crate) const VERSION: &str = "v2:";

/// Where a ciphertext is stored: its associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CipherContext<'a> {
    /// The table (e.g. `chat_providers`).
    pub table: &'a str,
    /// The column (e.g. `api_key`).
    pub column: &'a str,
    /// The row's id.
    pub row: &'a str,
    /// Where the value may be sent (a provider's base URL, trimmed; empty: the provider's
    /// default endpoint).
    pub endpoint: &'a str,
}

impl CipherContext<'_> {
    fn associated_data(&self) -> Vec<u8> {
        // Lengths first: no two contexts give the same bytes, whatever their texts hold.
        let mut aad = b"chatd:v2".to_vec();
        for part in [self.table, self.column, self.row, self.endpoint.trim()] {
            aad.extend_from_slice(&(part.len() as u64).to_be_bytes());
            aad.extend_from_slice(part.as_bytes());
        }
        aad
    }
}

struct CipherKey {
    digest: String,
    aead: Aes256Gcm,
}

/// Encrypts and decrypts provider API keys (see the module docs). Cheap to share behind an
/// `Arc`; `Debug` shows digests only.
pub struct SecretCipher {
    /// The first key writes; all of them read.
    keys: Vec<CipherKey>,
}

impl std::fmt::Debug for SecretCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretCipher").field("digests", &self.digests()).finish_non_exhaustive()
    }
}

/// The digest that names `key`: the first 16 hex characters of its SHA-256.
fn digest_of(key: &[u8]) -> String {
    let hash = Sha256::digest(key);
    hash.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn load(key: &[u8]) -> Result<CipherKey, CipherError> {
    if key.len() != 32 {
        return Err(CipherError::BadKey(format!("got {} bytes", key.len())));
    }
    let material = Zeroizing::new(
        <[u8; 32]>::try_from(key)
            .map_err(|_| CipherError::BadKey("got the wrong length".to_owned()))?,
    );
    let aead = Aes256Gcm::new_from_slice(material.as_ref())
        .map_err(|_| CipherError::BadKey("got the wrong length".to_owned()))?;
    Ok(CipherKey { digest: digest_of(material.as_ref()), aead })
}

impl SecretCipher {
    /// A cipher whose active (writing) key is `key` (32 bytes).
    ///
    /// # Errors
    /// [`CipherError::BadKey`] for a key that is not 32 bytes.
    pub fn new(key: &[u8]) -> Result<Self, CipherError> {
        Ok(SecretCipher { keys: vec![load(key)?] })
    }

    /// A cipher whose active key is `key` given as base64 (what a host keeps in its secret
    /// store or environment).
    ///
    /// # Errors
    /// [`CipherError::BadKey`] for invalid base64 or a decoded key that is not 32 bytes.
    pub fn from_base64(key: &str) -> Result<Self, CipherError> {
        Self::new(&decode_key(key)?)
    }

    /// Adds an older key that decrypts but no longer encrypts (during a rotation).
    ///
    /// # Errors
    /// [`CipherError::BadKey`] for a key that is not 32 bytes.
    pub fn with_old_key(mut self, key: &[u8]) -> Result<Self, CipherError> {
        let key = load(key)?;
        if !self.keys.iter().any(|k| k.digest == key.digest) {
            self.keys.push(key);
        }
        Ok(self)
    }

    /// [`SecretCipher::with_old_key`] with a base64 key.
    ///
    /// # Errors
    /// As [`SecretCipher::from_base64`].
    pub fn with_old_base64(self, key: &str) -> Result<Self, CipherError> {
        self.with_old_key(&decode_key(key)?)
    }

    /// A new random key, as base64 (for set-up tools and tests).
    #[must_use]
    pub fn generate_key() -> Zeroizing<String> {
        let key = Aes256Gcm::generate_key(OsRng);
        Zeroizing::new(STANDARD.encode(&key[..]))
    }

    /// The digest of the writing key.
    #[must_use]
    pub fn active_digest(&self) -> &str {
        &self.keys[0].digest
    }

    /// The digests of every key held (the writing one first).
    #[must_use]
    pub fn digests(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.digest.as_str()).collect()
    }

    /// Whether a key with `digest` is held.
    #[must_use]
    pub fn knows(&self, digest: &str) -> bool {
        self.keys.iter().any(|k| k.digest == digest)
    }

    /// Encrypts `plaintext` for `context` with the active key; returns the stored form and
    /// the key's digest.
    ///
    /// # Errors
    /// Only if the AEAD refuses (it does not for inputs of this size).
    pub fn encrypt(
        &self,
        plaintext: &Secret,
        context: CipherContext<'_>,
    ) -> Result<(String, String), CipherError> {
        let key = &self.keys[0];
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = context.associated_data();
        let sealed = key
            .aead
            .encrypt(&nonce, Payload { msg: plaintext.expose().as_bytes(), aad: &aad })
            .map_err(|_| CipherError::Invalid(key.digest.clone()))?;
        let mut stored = nonce.to_vec();
        stored.extend_from_slice(&sealed);
        Ok((format!("{VERSION}{}", STANDARD.encode(stored)), key.digest.clone()))
    }

    /// Decrypts `stored` (encrypted under the key named `digest`) for `context`.
    ///
    /// # Errors
    /// [`CipherError::UnknownKey`] when no held key has `digest`; [`CipherError::Invalid`]
    /// when the value is malformed, altered, or was stored in another place.
    pub fn decrypt(
        &self,
        stored: &str,
        digest: &str,
        context: CipherContext<'_>,
    ) -> Result<Secret, CipherError> {
        let key = self
            .keys
            .iter()
            .find(|k| k.digest == digest)
            .ok_or_else(|| CipherError::UnknownKey(digest.to_owned()))?;
        let invalid = || CipherError::Invalid(digest.to_owned());
        let Some(encoded) = stored.trim().strip_prefix(VERSION) else {
            return Err(CipherError::Unbound(digest.to_owned()));
        };
        let bytes = STANDARD.decode(encoded).map_err(|_| invalid())?;
        if bytes.len() < 12 + 16 {
            return Err(invalid());
        }
        let (nonce, sealed) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| invalid())?;
        let aad = context.associated_data();
        let plain = Zeroizing::new(
            key.aead
                .decrypt(&Nonce::from(nonce), Payload { msg: sealed, aad: &aad })
                .map_err(|_| invalid())?,
        );
        let text = std::str::from_utf8(&plain).map_err(|_| invalid())?;
        Ok(Secret::new(text))
    }
}

fn decode_key(key: &str) -> Result<Zeroizing<Vec<u8>>, CipherError> {
    STANDARD
        .decode(key.trim())
        .map(Zeroizing::new)
        .map_err(|_| CipherError::BadKey("not valid base64".to_owned()))
}

/// The associated data of a provider's API key: its row (the provider kind) and the base URL
/// it is sent to.
#[must_use]
pub(crate) fn provider_key_context<'a>(row: &'a str, base_url: &'a str) -> CipherContext<'a> {
    CipherContext { table: "chat_providers", column: "api_key", row, endpoint: base_url }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> [u8; 32] {
        [byte; 32]
    }

    #[test]
    fn round_trip_with_a_random_nonce_per_write() {
        let cipher = SecretCipher::new(&key(1)).expect("cipher");
        let ctx = provider_key_context("row-1", "");
        let (a, digest) = cipher.encrypt(&Secret::new("sk-live-123"), ctx).expect("encrypt");
        let (b, _) = cipher.encrypt(&Secret::new("sk-live-123"), ctx).expect("encrypt");
        assert_ne!(a, b, "a fresh nonce per write");
        assert!(!a.contains("sk-live"));
        assert_eq!(digest, cipher.active_digest());
        assert_eq!(cipher.decrypt(&a, &digest, ctx).expect("decrypt").expose(), "sk-live-123");
    }

    #[test]
    fn a_ciphertext_copied_to_another_row_or_column_does_not_decrypt() {
        let cipher = SecretCipher::new(&key(1)).expect("cipher");
        let (stored, digest) =
            cipher.encrypt(&Secret::new("sk"), provider_key_context("row-1", "")).expect("encrypt");
        let other_row = cipher.decrypt(&stored, &digest, provider_key_context("row-2", ""));
        assert_eq!(other_row, Err(CipherError::Invalid(digest.clone())));
        let other_column = CipherContext {
            table: "chat_providers",
            column: "base_url",
            row: "row-1",
            endpoint: "",
        };
        assert!(cipher.decrypt(&stored, &digest, other_column).is_err());
        let mut tampered = stored.into_bytes();
        tampered[20] ^= 1;
        let tampered = String::from_utf8(tampered).unwrap_or_default();
        assert!(cipher.decrypt(&tampered, &digest, provider_key_context("row-1", "")).is_err());
    }

    #[test]
    fn old_keys_read_and_only_the_active_key_writes() {
        let old = SecretCipher::new(&key(1)).expect("old");
        let (stored, old_digest) =
            old.encrypt(&Secret::new("sk"), provider_key_context("r", "")).expect("encrypt");
        let rotated = SecretCipher::new(&key(2)).expect("new").with_old_key(&key(1)).expect("old");
        assert_ne!(rotated.active_digest(), old_digest);
        assert_eq!(rotated.digests().len(), 2);
        assert_eq!(
            rotated
                .decrypt(&stored, &old_digest, provider_key_context("r", ""))
                .expect("reads")
                .expose(),
            "sk"
        );
        let (_, written) =
            rotated.encrypt(&Secret::new("sk"), provider_key_context("r", "")).expect("e");
        assert_eq!(written, rotated.active_digest());
        let stranger = SecretCipher::new(&key(3)).expect("stranger");
        assert_eq!(
            stranger.decrypt(&stored, &old_digest, provider_key_context("r", "")),
            Err(CipherError::UnknownKey(old_digest))
        );
    }

    #[test]
    fn bad_keys_are_refused_and_debug_shows_digests_only() {
        assert!(matches!(SecretCipher::new(&[0; 16]), Err(CipherError::BadKey(_))));
        assert!(matches!(SecretCipher::from_base64("not base64!"), Err(CipherError::BadKey(_))));
        let generated = SecretCipher::generate_key();
        let cipher = SecretCipher::from_base64(&generated).expect("generated");
        let debug = format!("{cipher:?}");
        assert!(debug.contains(cipher.active_digest()) && !debug.contains(generated.as_str()));
    }
}
