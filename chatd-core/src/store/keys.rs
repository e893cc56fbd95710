//! Provider keys at rest, for store implementors ([BEHAVIOUR §12](crate::behaviour#12-secrets-and-input)): every store seals keys
//! with the same [`ProviderKeys`] around an optional [`SecretCipher`], so they behave the same.

use crate::cipher::{CipherError, SecretCipher, VERSION, provider_key_context};
use crate::secret::Secret;

/// What a store does with provider keys around an optional [`SecretCipher`]: seal on write,
/// open on read, check at start-up, re-seal on rotation. Every store uses this one type,
/// so they behave the same. The row of a key's associated data is the provider kind (the
/// table's unique key).
#[derive(Debug, Default)]
pub struct ProviderKeys {
    cipher: std::sync::RwLock<Option<std::sync::Arc<SecretCipher>>>,
}

fn key_error(reason: impl Into<String>) -> crate::store::StoreError {
    crate::store::StoreError::validation("api_key_key_id", reason)
}

impl ProviderKeys {
    fn current(&self) -> Option<std::sync::Arc<SecretCipher>> {
        self.cipher.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The cipher in use, if any.
    #[must_use]
    pub fn cipher(&self) -> Option<std::sync::Arc<SecretCipher>> {
        self.current()
    }

    /// Checks the stored keys against `cipher` (see [`ProviderKeys::check`]) and, if they
    /// pass, uses it from now on.
    ///
    /// # Errors
    /// As [`ProviderKeys::check`].
    pub fn install(
        &self,
        cipher: std::sync::Arc<SecretCipher>,
        stored: &[crate::ProviderConfig],
        revoked: &[String],
    ) -> crate::store::Result<()> {
        Self::check(&cipher, stored, revoked)?;
        *self.cipher.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(cipher);
        Ok(())
    }

    /// The start-up check: the active key is not revoked, and every stored ciphertext is
    /// under a held, unrevoked key and decrypts in its row.
    ///
    /// # Errors
    /// `Validation` on `api_key_key_id`, naming the provider and the key digest.
    pub fn check(
        cipher: &SecretCipher,
        stored: &[crate::ProviderConfig],
        revoked: &[String],
    ) -> crate::store::Result<()> {
        if revoked.iter().any(|d| d == cipher.active_digest()) {
            return Err(key_error(format!(
                "the active encryption key {} has been revoked; configure a new one",
                cipher.active_digest()
            )));
        }
        for row in stored {
            let Some(digest) = &row.api_key_key_id else { continue };
            if revoked.contains(digest) {
                return Err(key_error(format!(
                    "the {} provider's key is encrypted with key {digest}, which has been revoked",
                    row.provider
                )));
            }
            if !cipher.knows(digest) {
                return Err(key_error(format!(
                    "the {} provider's key is encrypted with key {digest}, which is not \
                     configured (add it with SecretCipher::with_old_key, then rotate)",
                    row.provider
                )));
            }
            let context = provider_key_context(row.provider.as_str(), &row.base_url);
            match cipher.decrypt(row.api_key.expose(), digest, context) {
                Ok(_) => {}
                // Usable again once the key is set again; the store can still start.
                Err(err @ (CipherError::Unbound(_) | CipherError::Invalid(_))) => {
                    tracing::warn!(provider = %row.provider, error = %err, "a stored provider key cannot be used");
                }
                Err(err) => {
                    return Err(key_error(format!("the {} provider's key: {err}", row.provider)));
                }
            }
        }
        Ok(())
    }

    /// What to store for `key` of provider `kind` sent to `base_url`: with a cipher, the
    /// ciphertext and the active digest; without, the plaintext and `None`. `given` is a digest the caller
    /// supplies for a value it encrypted itself: then the value is stored as it is, and the
    /// digest must be a key the cipher holds.
    ///
    /// # Errors
    /// `Validation` for a pre-encrypted value without a cipher, or under an unknown key.
    pub fn seal(
        &self,
        kind: crate::ProviderKind,
        base_url: &str,
        key: &Secret,
        given: Option<&str>,
    ) -> crate::store::Result<(Secret, Option<String>)> {
        let cipher = self.current();
        match (given, cipher) {
            (Some(digest), Some(cipher)) if cipher.knows(digest) => {
                Ok((key.clone(), Some(digest.to_owned())))
            }
            (Some(digest), _) => Err(key_error(format!(
                "the key is marked as encrypted with key {digest}, which this store's cipher \
                 does not hold"
            ))),
            (None, _) if key.is_empty() => Ok((Secret::default(), None)),
            (None, None) => Ok((key.clone(), None)),
            (None, Some(cipher)) => {
                let (stored, digest) = cipher
                    .encrypt(key, provider_key_context(kind.as_str(), base_url))
                    .map_err(|err| key_error(err.to_string()))?;
                Ok((Secret::new(stored), Some(digest)))
            }
        }
    }

    /// Prepares `update` of the provider `current` for storage: a new key is sealed for the
    /// base URL the provider will have, and a new base URL without a new key is refused
    /// while a key is stored — the stored key is bound to its endpoint, and is never sent
    /// to a server it was not given for ([BEHAVIOUR §12](crate::behaviour#12-secrets-and-input)). The same rule holds without a
    /// cipher, so an administrator's mistake or a forged request cannot redirect a key
    /// either.
    ///
    /// # Errors
    /// `Validation` on `api_key` for a base URL change without the key; as
    /// [`ProviderKeys::seal`].
    pub fn seal_update(
        &self,
        current: &crate::ProviderConfig,
        update: &mut crate::ProviderUpdate,
    ) -> crate::store::Result<()> {
        let target = update.base_url.as_deref().map_or(current.base_url.trim(), str::trim);
        let moved = target != current.base_url.trim();
        match update.api_key.take() {
            Some((key, given)) => {
                let sealed = self.seal(current.provider, target, &key, given.as_deref())?;
                update.api_key = Some((sealed.0, sealed.1));
            }
            None if moved && !current.api_key.is_empty() => {
                return Err(crate::store::StoreError::validation(
                    "api_key",
                    format!(
                        "changing the {} provider's base URL needs its API key again: the \
                         stored key is bound to the endpoint it was given for",
                        current.provider
                    ),
                ));
            }
            None => {}
        }
        Ok(())
    }

    /// `config` as read from storage, with its key decrypted.
    ///
    /// # Errors
    /// `Validation` when the key is encrypted and no cipher (or not its key) is configured,
    /// or it does not decrypt in this row.
    pub fn open(
        &self,
        mut config: crate::ProviderConfig,
    ) -> crate::store::Result<crate::ProviderConfig> {
        let Some(digest) = config.api_key_key_id.clone() else { return Ok(config) };
        let Some(cipher) = self.current() else {
            return Err(key_error(format!(
                "the {} provider's key is encrypted (key {digest}) but no cipher is configured",
                config.provider
            )));
        };
        let context = provider_key_context(config.provider.as_str(), &config.base_url);
        config.api_key = cipher
            .decrypt(config.api_key.expose(), &digest, context)
            .map_err(|err| key_error(format!("the {} provider's key: {err}", config.provider)))?;
        Ok(config)
    }

    /// For a rotation: the stored value of `config`'s key under the active key, or `None`
    /// when there is no key or it already is under the active key.
    ///
    /// # Errors
    /// `Validation` without a cipher, or as [`ProviderKeys::open`].
    pub fn reseal(
        &self,
        config: &crate::ProviderConfig,
    ) -> crate::store::Result<Option<(Secret, String)>> {
        let Some(cipher) = self.current() else {
            return Err(key_error("no cipher is configured: nothing to rotate to"));
        };
        if config.api_key.is_empty()
            || config.api_key_key_id.as_deref() == Some(cipher.active_digest())
        {
            return Ok(None);
        }
        if config.api_key_key_id.is_some() && !config.api_key.expose().trim().starts_with(VERSION) {
            // Written before keys were bound to their endpoint: it cannot be re-encrypted
            // without trusting the stored base URL; it is set again instead.
            tracing::warn!(provider = %config.provider, "a key stored before endpoint binding is not rotated: set it again");
            return Ok(None);
        }
        let plain = self.open(config.clone())?.api_key;
        let (stored, digest) = self.seal(config.provider, &config.base_url, &plain, None)?;
        Ok(Some((stored, digest.unwrap_or_default())))
    }
}
