//! Scenarios: provider keys encrypted at rest ([BEHAVIOUR §12](crate::behaviour#12-secrets-and-input)).

use std::sync::Arc;

use super::StoreRef;
use crate::store::StoreError;
use crate::{NewProvider, ProviderKind, ProviderUpdate, SecretCipher};

fn cipher(byte: u8) -> SecretCipher {
    SecretCipher::new(&[byte; 32]).expect("cipher")
}

fn is_key_error(err: &StoreError, needle: &str) -> bool {
    matches!(err, StoreError::Validation { field, reason }
        if field == "api_key_key_id" && reason.contains(needle))
}

/// With a cipher, the stored key is ciphertext under the active key; reads decrypt it.
pub async fn keys_are_encrypted_at_rest_under_a_cipher(store: StoreRef) {
    let cipher = Arc::new(cipher(1));
    store.use_cipher(Arc::clone(&cipher)).await.expect("use the cipher");
    let created = store
        .create_provider(NewProvider::new(ProviderKind::Anthropic).with_api_key("sk-ant-canary-1"))
        .await
        .expect("create");
    assert_eq!(created.api_key.expose(), "sk-ant-canary-1", "reads decrypt");
    assert_eq!(created.api_key_key_id.as_deref(), Some(cipher.active_digest()));
    let (at_rest, digest) =
        store.provider_key_at_rest(ProviderKind::Anthropic).await.expect("at rest");
    assert!(!at_rest.expose().contains("sk-ant-canary-1"), "the stored value is ciphertext");
    assert_eq!(digest.as_deref(), Some(cipher.active_digest()));
    let update = ProviderUpdate {
        api_key: Some((crate::Secret::new("sk-ant-canary-2"), None)),
        ..ProviderUpdate::default()
    };
    store.update_provider(ProviderKind::Anthropic, update).await.expect("update");
    let (at_rest, _) = store.provider_key_at_rest(ProviderKind::Anthropic).await.expect("rest");
    assert!(!at_rest.expose().contains("sk-ant-canary-2"));
    let listed = store.list_providers().await.expect("list");
    assert_eq!(listed[0].api_key.expose(), "sk-ant-canary-2");
    let read = store.get_provider(ProviderKind::Anthropic).await.expect("get");
    assert_eq!(read.api_key.expose(), "sk-ant-canary-2");
}

/// A ciphertext copied into another provider's row does not decrypt there.
pub async fn a_ciphertext_copied_to_another_row_does_not_decrypt(store: StoreRef) {
    store.use_cipher(Arc::new(cipher(1))).await.expect("cipher");
    for (kind, key) in [(ProviderKind::OpenAi, "sk-openai"), (ProviderKind::Google, "g-key")] {
        store.create_provider(NewProvider::new(kind).with_api_key(key)).await.expect("create");
    }
    let (stolen, digest) = store.provider_key_at_rest(ProviderKind::OpenAi).await.expect("rest");
    let copy = ProviderUpdate { api_key: Some((stolen, digest)), ..ProviderUpdate::default() };
    store.update_provider(ProviderKind::Google, copy).await.err();
    let err = store.get_provider(ProviderKind::Google).await.expect_err("does not decrypt");
    assert!(is_key_error(&err, "does not decrypt"), "{err}");
    assert!(!err.to_string().contains("sk-openai"));
}

/// Rotation re-encrypts every key (plaintext ones too) under the active key in one step;
/// afterwards a cipher holding only the new key reads them all.
pub async fn rotation_reencrypts_every_key_and_keeps_them_usable(store: StoreRef) {
    store
        .create_provider(NewProvider::new(ProviderKind::Vercel).with_api_key("plain-before"))
        .await
        .expect("plaintext, before any cipher");
    store.use_cipher(Arc::new(cipher(1))).await.expect("old key");
    store
        .create_provider(NewProvider::new(ProviderKind::OpenAi).with_api_key("sk-old"))
        .await
        .expect("under the old key");
    let new = cipher(2);
    let new_digest = new.active_digest().to_owned();
    let rotating = Arc::new(new.with_old_key(&[1; 32]).expect("old"));
    store.use_cipher(rotating).await.expect("both keys");
    assert_eq!(store.rotate_provider_keys().await.expect("rotate"), 2);
    assert_eq!(store.rotate_provider_keys().await.expect("again"), 0, "nothing left to do");
    for kind in [ProviderKind::Vercel, ProviderKind::OpenAi] {
        let (at_rest, digest) = store.provider_key_at_rest(kind).await.expect("rest");
        assert_eq!(digest.as_deref(), Some(new_digest.as_str()), "{kind}");
        assert!(!at_rest.expose().contains("plain-before") && !at_rest.expose().contains("sk-old"));
    }
    store.use_cipher(Arc::new(cipher(2))).await.expect("the new key alone reads everything");
    assert_eq!(
        store.get_provider(ProviderKind::Vercel).await.expect("v").api_key.expose(),
        "plain-before"
    );
    assert_eq!(
        store.get_provider(ProviderKind::OpenAi).await.expect("o").api_key.expose(),
        "sk-old"
    );
}

/// Unknown and revoked keys stop the store at start-up (`use_cipher`), not at first use;
/// a key still in use cannot be revoked.
pub async fn revoked_or_unknown_keys_stop_the_store_at_start_up(store: StoreRef) {
    let first = cipher(1);
    let first_digest = first.active_digest().to_owned();
    store.use_cipher(Arc::new(first)).await.expect("first");
    store
        .create_provider(NewProvider::new(ProviderKind::OpenAi).with_api_key("sk-1"))
        .await
        .expect("create");
    let err = store.use_cipher(Arc::new(cipher(3))).await.expect_err("unknown key");
    assert!(is_key_error(&err, &first_digest) && is_key_error(&err, "not configured"), "{err}");
    let err = store.revoke_key(&first_digest).await.expect_err("still in use");
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let next = Arc::new(cipher(2).with_old_key(&[1; 32]).expect("old"));
    store.use_cipher(next).await.expect("rotating cipher");
    store.rotate_provider_keys().await.expect("rotate");
    store.revoke_key(&first_digest).await.expect("revoke the old key");
    let err = store.use_cipher(Arc::new(cipher(1))).await.expect_err("revoked active key");
    assert!(is_key_error(&err, "revoked"), "{err}");
    store.use_cipher(Arc::new(cipher(2))).await.expect("the current key still opens");
}

fn is_endpoint_refusal(err: &StoreError) -> bool {
    matches!(err, StoreError::Validation { field, reason }
        if field == "api_key" && reason.contains("needs its API key again"))
}

/// A key is bound to the endpoint it was given for ([BEHAVIOUR §12](crate::behaviour#12-secrets-and-input)): changing the base URL
/// needs the key again (with or without a cipher), and a ciphertext whose row's base URL a
/// database writer changed does not decrypt — the key is never sent to the new server.
pub async fn a_key_is_bound_to_its_base_url(store: StoreRef) {
    let (first, evil) = ("https://llm.example/v1", "https://collector.example/v1");
    // Without a cipher: the rule holds all the same.
    store
        .create_provider(
            NewProvider::new(ProviderKind::Google).with_api_key("g-key").with_base_url(first),
        )
        .await
        .expect("create");
    let moved = ProviderUpdate { base_url: Some(evil.into()), ..ProviderUpdate::default() };
    let err = store.update_provider(ProviderKind::Google, moved).await.expect_err("refused");
    assert!(is_endpoint_refusal(&err), "{err}");
    let read = store.get_provider(ProviderKind::Google).await.expect("get");
    assert_eq!((read.base_url.as_str(), read.api_key.expose()), (first, "g-key"), "unchanged");

    let cipher = Arc::new(cipher(1));
    store.use_cipher(Arc::clone(&cipher)).await.expect("cipher");
    store
        .create_provider(
            NewProvider::new(ProviderKind::OpenAi).with_api_key("sk-bound").with_base_url(first),
        )
        .await
        .expect("create");
    let moved = ProviderUpdate { base_url: Some(evil.into()), ..ProviderUpdate::default() };
    let err = store.update_provider(ProviderKind::OpenAi, moved).await.expect_err("refused");
    assert!(is_endpoint_refusal(&err), "{err}");
    // Renaming or disabling needs no key; the same base URL (spaces aside) is no change.
    let same = ProviderUpdate {
        base_url: Some(format!(" {first} ")),
        display_name: Some("renamed".into()),
        ..ProviderUpdate::default()
    };
    store.update_provider(ProviderKind::OpenAi, same).await.expect("no endpoint change");
    // A database writer keeps the ciphertext and points the row elsewhere.
    let (at_rest, digest) = store.provider_key_at_rest(ProviderKind::OpenAi).await.expect("rest");
    let forged = ProviderUpdate {
        base_url: Some(evil.into()),
        api_key: Some((at_rest, digest)),
        ..ProviderUpdate::default()
    };
    store.update_provider(ProviderKind::OpenAi, forged).await.err();
    let err = store.get_provider(ProviderKind::OpenAi).await.expect_err("does not decrypt");
    assert!(is_key_error(&err, "base URL changed"), "{err}");
    assert!(!err.to_string().contains("sk-bound"), "{err}");
    assert!(store.list_providers().await.is_err(), "no read hands the key out");
    // Given again with the key, the new endpoint is the key's.
    let given = ProviderUpdate {
        base_url: Some(evil.into()),
        api_key: Some((crate::Secret::new("sk-rebound"), None)),
        ..ProviderUpdate::default()
    };
    let read = store.update_provider(ProviderKind::OpenAi, given).await.expect("key again");
    assert_eq!((read.base_url.as_str(), read.api_key.expose()), (evil, "sk-rebound"));
}

/// A revoked key never encrypts, also through a cipher installed before the revocation
/// (another process, in a shared database).
pub async fn a_revoked_key_never_encrypts(store: StoreRef) {
    let stale = Arc::new(cipher(1));
    store.use_cipher(Arc::clone(&stale)).await.expect("cipher");
    // Nothing is stored under the key, so it can be revoked while this store still holds it.
    store.revoke_key(stale.active_digest()).await.expect("revoke");
    let err = store
        .create_provider(NewProvider::new(ProviderKind::Anthropic).with_api_key("sk-after"))
        .await
        .expect_err("a revoked key does not encrypt");
    assert!(is_key_error(&err, "has been revoked"), "{err}");
    assert!(
        store.get_provider(ProviderKind::Anthropic).await.is_err(),
        "nothing was stored under the revoked key"
    );
}
