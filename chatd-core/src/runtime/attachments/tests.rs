use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;
use crate::ids::ChatId;
use crate::message::Role;
use crate::store::Limits;
use crate::store::files::{FileMeta, NewFile, testing_png};

/// A file store in a map that counts its reads.
#[derive(Debug, Default)]
struct Counting {
    files: Mutex<HashMap<FileId, StoredFile>>,
    reads: AtomicUsize,
}

impl Counting {
    fn add(&self, owner: UserId, name: &str, bytes: Vec<u8>) -> FileMeta {
        let file = NewFile::new(owner, None, name, bytes, &Limits::default()).expect("file");
        let stored = file.into_stored(Utc::now());
        let meta = stored.meta.clone();
        self.files.lock().expect("lock").insert(meta.id, stored);
        meta
    }
}

#[async_trait]
impl FileStore for Counting {
    async fn put_file(&self, _: NewFile) -> Result<FileMeta> {
        unreachable!("not used")
    }
    async fn file_meta(&self, reader: Option<UserId>, id: FileId) -> Result<FileMeta> {
        self.read_file(reader, id).await.map(|file| file.meta)
    }
    async fn read_file(&self, reader: Option<UserId>, id: FileId) -> Result<StoredFile> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let files = self.files.lock().expect("lock");
        match files.get(&id) {
            Some(file) if reader.is_none_or(|r| r == file.meta.owner_id) => Ok(file.clone()),
            _ => Err(StoreError::not_found(crate::store::Entity::File, id)),
        }
    }
    async fn bind_files(&self, _: UserId, _: ChatId, _: &[FileId], _: usize) -> Result<()> {
        Ok(())
    }
    async fn chat_files(&self, _: ChatId) -> Result<Vec<FileMeta>> {
        Ok(Vec::new())
    }
    async fn delete_chat_files(&self, _: ChatId) -> Result<u64> {
        Ok(0)
    }
    async fn purge_unbound_files(&self, _: DateTime<Utc>) -> Result<u64> {
        Ok(0)
    }
}

fn texts(messages: &[PromptMessage]) -> Vec<String> {
    messages
        .iter()
        .flat_map(|m| m.content.iter())
        .filter_map(|p| p.as_text().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn each_file_is_read_once_per_step_and_sent_by_value() {
    let store = Counting::default();
    let owner = UserId::new();
    let png = testing_png(4, 4);
    let image = store.add(owner, "shot.png", png.clone());
    let mut messages = vec![
        PromptMessage::new(Role::User, vec![Part::text("look"), image.part()]),
        PromptMessage::new(Role::User, vec![image.part()]),
    ];
    let read = load_attachments(Some(&store), owner, ProviderKind::Anthropic, &mut messages)
        .await
        .expect("load");
    assert_eq!((read, store.reads.load(Ordering::SeqCst)), (1, 1), "one read for two references");
    let encoded = base64::engine::general_purpose::STANDARD.encode(&png);
    for part in [&messages[0].content[1], &messages[1].content[0]] {
        let Part::File { data, media_type, attachment_id, .. } = part else { panic!("{part:?}") };
        assert_eq!(data.as_deref(), Some(encoded.as_str()));
        assert_eq!((media_type.as_str(), *attachment_id), ("image/png", Some(image.id)));
    }
}

#[tokio::test]
async fn what_a_model_cannot_read_becomes_a_note() {
    let store = Counting::default();
    let owner = UserId::new();
    let pdf = store.add(owner, "spec.pdf", b"%PDF-1.7\n".to_vec());
    let text = store.add(owner, "notes.txt", b"line one\n".to_vec());
    let theirs = store.add(UserId::new(), "theirs.png", testing_png(1, 1));
    let gone = Part::attachment(FileId::new(), "image/png", "gone.png");
    let content = vec![pdf.part(), text.part(), theirs.part(), gone];
    let mut messages = vec![PromptMessage::new(Role::User, content.clone())];
    load_attachments(Some(&store), owner, ProviderKind::OpenAiCompat, &mut messages)
        .await
        .expect("load");
    assert_eq!(
        texts(&messages),
        vec![
            "[attached file spec.pdf (application/pdf): this model cannot read files of this type]",
            "[attached file notes.txt]\nline one\n",
            "[attached file theirs.png (image/png): it is no longer available]",
            "[attached file gone.png (image/png): it is no longer available]",
        ]
    );
    // The same PDF goes to a provider that takes documents.
    let mut messages = vec![PromptMessage::new(Role::User, vec![pdf.part()])];
    load_attachments(Some(&store), owner, ProviderKind::Bedrock, &mut messages)
        .await
        .expect("load");
    assert!(matches!(&messages[0].content[0], Part::File { data: Some(_), .. }));
    // Without a file store every reference is a note, never a failed call.
    let mut messages = vec![PromptMessage::new(Role::User, content)];
    load_attachments(None, owner, ProviderKind::Anthropic, &mut messages).await.expect("load");
    assert_eq!(texts(&messages).len(), 4);
}

#[test]
fn long_text_files_are_cut_with_a_note() {
    let long = "é".repeat(MAX_TEXT_BYTES);
    let text = text_of("big.txt", long.as_bytes());
    assert!(
        text.starts_with("[attached file big.txt, first 262144 of 524288 bytes]"),
        "{}",
        &text[..80]
    );
}

#[test]
fn a_summary_names_the_files_it_does_not_send() {
    let id = FileId::new();
    let mut messages = vec![PromptMessage::new(
        Role::User,
        vec![Part::text("see"), Part::attachment(id, "image/png", "shot.png")],
    )];
    name_attachments(&mut messages);
    assert_eq!(texts(&messages), vec!["see", "[attached file shot.png (image/png)]"]);
}

#[tokio::test]
async fn a_step_loads_files_up_to_its_budget_newest_first() {
    let store = Counting::default();
    let owner = UserId::new();
    let (old, new) = (testing_png(40, 40), testing_png(30, 30));
    let older = store.add(owner, "older.png", old.clone());
    let newer = store.add(owner, "newer.png", new.clone());
    let mut messages = vec![
        PromptMessage::new(Role::User, vec![older.part()]),
        PromptMessage::new(Role::User, vec![newer.part(), older.part()]),
    ];
    let budget = new.len() + old.len() - 1;
    let read = load_attachments_within(
        Some(&store),
        owner,
        ProviderKind::Anthropic,
        &mut messages,
        budget,
    )
    .await
    .expect("load");
    assert_eq!(read, 1, "only the newest fits");
    assert!(
        matches!(&messages[1].content[0], Part::File { data: Some(_), name: Some(n), .. } if n == "newer.png")
    );
    let note = "[attached file older.png (image/png): not sent: this request's files reached their size limit]";
    assert_eq!(texts(&messages), vec![note, note]);
}
