//! Attachments ([BEHAVIOUR §19](crate::behaviour#19-attachments)): files stored once per owner and referenced from message parts
//! by id, their type told from their bytes, loaded into a prompt only by the step that sends
//! it.
//!
//! - [`FileStore`] is the storage contract. Both chat stores implement it (`chat_files` in
//!   PostgreSQL as `bytea`, a map in memory) and return themselves from
//!   [`ChatStore::file_store`](crate::store::ChatStore::file_store); with the `object-store`
//!   feature, `ObjectFileStore` keeps files in any object store instead.
//! - [`NewFile::new`] is the only way to make a file to store: it sniffs the type from the
//!   bytes (`sniff`) and checks the size, so a store never holds a file that was not checked.
//! - A message refers to a file with [`Part::attachment`]; a tool result refers to files in
//!   its `attachments` field ([`FileRef::attach`]); the turn turns references
//!   into the bytes (or a text note) a provider receives, once per step.

mod sniff;

#[cfg(feature = "object-store")]
mod object;

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{ChatId, FileId, UserId};
use crate::part::Part;
use crate::store::Limits;
use crate::store::{Result, StoreError};

#[cfg(feature = "object-store")]
#[cfg_attr(docsrs, doc(cfg(feature = "object-store")))]
pub use object::ObjectFileStore;
pub(crate) use sniff::image_dimensions;
pub(crate) use sniff::sniff;

/// The most bytes of one file by default: 10 MiB.
pub(crate) const MAX_FILE_BYTES: usize = 10 * 1024 * 1024;
/// The most file parts of one message by default: 20.
pub(crate) const MAX_FILES_PER_MESSAGE: usize = 20;
/// The most files bound to one chat by default: 200.
pub(crate) const MAX_FILES_PER_CHAT: usize = 200;
/// The most bytes of base64 data a stored file part carries inline by default: 8 KiB.
pub(crate) const MAX_INLINE_FILE_BYTES: usize = 8 * 1024;
/// The most characters of a file's name (longer ones are cut).
pub(crate) const MAX_FILE_NAME_CHARS: usize = 255;
/// The field of a tool result that lists the files it attaches.
pub(crate) const ATTACHMENTS_KEY: &str = "attachments";

/// What a stored file is: everything but its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    /// The file's id.
    pub id: FileId,
    /// Whose file it is: only this user (and the system) can read it.
    pub owner_id: UserId,
    /// The chat it is bound to (purged with it); `None` until a message first refers to it.
    pub chat_id: Option<ChatId>,
    /// Its name (a base name, never a path).
    pub name: String,
    /// Its media type, sniffed from the bytes.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

impl FileMeta {
    /// The message part that refers to this file.
    #[must_use]
    pub fn part(&self) -> Part {
        Part::attachment(self.id, self.media_type.clone(), self.name.clone())
    }

    /// The reference a tool result carries for this file.
    #[must_use]
    pub fn reference(&self) -> FileRef {
        FileRef {
            attachment_id: self.id,
            media_type: self.media_type.clone(),
            name: self.name.clone(),
            size: self.size,
        }
    }
}

/// A stored file with its bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// Its id, owner, name, sniffed media type and size.
    pub meta: FileMeta,
    /// Its content, as uploaded.
    pub bytes: Vec<u8>,
}

impl fmt::Debug for StoredFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredFile")
            .field("meta", &self.meta)
            .field("bytes", &format_args!("{} bytes", self.bytes.len()))
            .finish()
    }
}

/// A checked file, ready to store: made only by [`NewFile::new`].
#[derive(Clone)]
pub struct NewFile {
    id: FileId,
    owner_id: UserId,
    chat_id: Option<ChatId>,
    name: String,
    media_type: &'static str,
    bytes: Vec<u8>,
    max_per_chat: usize,
}

impl fmt::Debug for NewFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewFile")
            .field("id", &self.id)
            .field("owner_id", &self.owner_id)
            .field("chat_id", &self.chat_id)
            .field("name", &self.name)
            .field("media_type", &self.media_type)
            .field("bytes", &format_args!("{} bytes", self.bytes.len()))
            .finish()
    }
}

impl NewFile {
    /// Checks a file to store for `owner_id`, bound to `chat_id` (or unbound until a message
    /// refers to it): its type is sniffed from `bytes` (`sniff`), its size must be within
    /// `limits.max_file_bytes`, and `name` is reduced to a base name without control
    /// characters (an empty one becomes `file`), at most `MAX_FILE_NAME_CHARS` characters.
    ///
    /// # Errors
    /// A validation error on `file`: `The file is empty.`, `A file may be at most N bytes.`,
    /// or `Only PNG, JPEG, GIF and WebP images, PDF and plain text can be attached.`
    pub fn new(
        owner_id: UserId,
        chat_id: Option<ChatId>,
        name: &str,
        bytes: Vec<u8>,
        limits: &Limits,
    ) -> Result<Self> {
        if bytes.is_empty() {
            return Err(StoreError::validation("file", "The file is empty."));
        }
        if bytes.len() > limits.max_file_bytes {
            return Err(StoreError::validation(
                "file",
                format!("A file may be at most {} bytes.", limits.max_file_bytes),
            ));
        }
        let Some(media_type) = sniff(&bytes) else {
            return Err(StoreError::validation(
                "file",
                "Only PNG, JPEG, GIF and WebP images, PDF and plain text can be attached.",
            ));
        };
        Ok(NewFile {
            id: FileId::new(),
            owner_id,
            chat_id,
            name: base_name(name),
            media_type,
            bytes,
            max_per_chat: limits.max_files_per_chat,
        })
    }

    /// The id it will be stored under.
    #[must_use]
    pub const fn id(&self) -> FileId {
        self.id
    }

    /// Its owner.
    #[must_use]
    pub const fn owner_id(&self) -> UserId {
        self.owner_id
    }

    /// The chat it is bound to, if any.
    #[must_use]
    pub const fn chat_id(&self) -> Option<ChatId> {
        self.chat_id
    }

    /// Its cleaned name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its sniffed media type.
    #[must_use]
    pub const fn media_type(&self) -> &'static str {
        self.media_type
    }

    /// Its bytes.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The most files its chat may hold (from the limits it was checked against).
    #[must_use]
    pub const fn max_per_chat(&self) -> usize {
        self.max_per_chat
    }

    /// Its description once stored at `created_at`.
    #[must_use]
    pub fn meta(&self, created_at: DateTime<Utc>) -> FileMeta {
        FileMeta {
            id: self.id,
            owner_id: self.owner_id,
            chat_id: self.chat_id,
            name: self.name.clone(),
            media_type: self.media_type.to_owned(),
            size: self.bytes.len() as u64,
            created_at,
        }
    }

    /// Its description and bytes.
    #[must_use]
    pub fn into_stored(self, created_at: DateTime<Utc>) -> StoredFile {
        StoredFile { meta: self.meta(created_at), bytes: self.bytes }
    }
}

/// The last path component of `name`, without control characters, cut to
/// [`MAX_FILE_NAME_CHARS`]; `file` when nothing is left.
fn base_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let clean: String =
        last.chars().filter(|c| !c.is_control()).take(MAX_FILE_NAME_CHARS).collect();
    let clean = clean.trim();
    if clean.is_empty() || clean == "." || clean == ".." {
        "file".to_owned()
    } else {
        clean.to_owned()
    }
}

/// A file a tool result attaches (an element of its `attachments` field): a tool stores a
/// file with [`ToolContext::attach`](crate::runtime::tools::ToolContext::attach) and lists it
/// with [`FileRef::attach`]; the prompt builder reads them back with [`FileRef::listed_in`]
/// and gives the model the files after the result ([BEHAVIOUR §19](crate::behaviour#19-attachments)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// The stored file.
    pub attachment_id: FileId,
    /// Its media type, as sniffed from the bytes when stored.
    pub media_type: String,
    /// Its base name, as uploaded (never a path).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
}

impl FileRef {
    /// `result` with `files` listed in its `attachments` field: an object result gains the
    /// field; any other value becomes `{"result": value, "attachments": [...]}`; with no
    /// files, `result` as it is.
    #[must_use]
    pub fn attach(result: Value, files: &[FileMeta]) -> Value {
        with_attachments(result, files)
    }

    /// The files a tool result attaches: its well-formed `attachments` entries.
    #[must_use]
    pub fn listed_in(result: &Value) -> Vec<FileRef> {
        attachments_of(result)
    }
}

/// [`FileRef::attach`].
pub(crate) fn with_attachments(result: Value, files: &[FileMeta]) -> Value {
    if files.is_empty() {
        return result;
    }
    let refs: Vec<Value> =
        files.iter().filter_map(|meta| serde_json::to_value(meta.reference()).ok()).collect();
    let mut object = match result {
        Value::Object(object) => object,
        other => {
            let mut object = serde_json::Map::new();
            object.insert("result".into(), other);
            object
        }
    };
    object.insert(ATTACHMENTS_KEY.into(), Value::Array(refs));
    Value::Object(object)
}

/// [`FileRef::listed_in`].
pub(crate) fn attachments_of(result: &Value) -> Vec<FileRef> {
    result
        .get(ATTACHMENTS_KEY)
        .and_then(Value::as_array)
        .map(|items| {
            items.iter().filter_map(|item| serde_json::from_value(item.clone()).ok()).collect()
        })
        .unwrap_or_default()
}

/// Where files are kept ([BEHAVIOUR §19](crate::behaviour#19-attachments)). Reads are scoped to an owner: `reader` is the user
/// reading (another owner's file is `NotFound`), or `None` for the system, which reads any.
#[async_trait]
pub trait FileStore: Send + Sync + fmt::Debug {
    /// Stores a checked file. A file bound to a chat needs the chat to exist, to be the
    /// file owner's, and to hold fewer than [`NewFile::max_per_chat`] files.
    ///
    /// # Errors
    /// `NotFound` for a missing chat or another owner's; a validation error on `file` when the
    /// chat is full (`A chat may have at most N files.`); storage failures.
    async fn put_file(&self, file: NewFile) -> Result<FileMeta>;

    /// What a file is.
    ///
    /// # Errors
    /// `NotFound` for a missing file or one `reader` does not own.
    async fn file_meta(&self, reader: Option<UserId>, id: FileId) -> Result<FileMeta>;

    /// A file with its bytes.
    ///
    /// # Errors
    /// `NotFound` for a missing file or one `reader` does not own.
    async fn read_file(&self, reader: Option<UserId>, id: FileId) -> Result<StoredFile>;

    /// Binds `owner`'s unbound files among `ids` to `chat` (files already bound, to it or
    /// to another chat, are left as they are), all or none.
    ///
    /// # Errors
    /// `NotFound` for a missing chat or another owner's; a validation error on `file` when
    /// the chat would hold more than `max_per_chat` files.
    async fn bind_files(
        &self,
        owner: UserId,
        chat: ChatId,
        ids: &[FileId],
        max_per_chat: usize,
    ) -> Result<()>;

    /// The files bound to a chat, oldest first.
    ///
    /// # Errors
    /// Storage failures.
    async fn chat_files(&self, chat: ChatId) -> Result<Vec<FileMeta>>;

    /// Deletes the files bound to a chat and returns how many there were. Stores whose
    /// files go with their chat's row (both chat stores) have usually done so already.
    ///
    /// # Errors
    /// Storage failures.
    async fn delete_chat_files(&self, chat: ChatId) -> Result<u64>;

    /// Deletes files never bound to a chat that were stored before `before` (uploads whose
    /// message was never sent) and returns how many.
    ///
    /// # Errors
    /// Storage failures.
    async fn purge_unbound_files(&self, before: DateTime<Utc>) -> Result<u64>;
}

/// [`StoreError::chat_full`].
pub(crate) fn chat_full(max: usize) -> StoreError {
    StoreError::validation("file", format!("A chat may have at most {max} files."))
}

/// A valid grey PNG of `width` × `height` pixels, for tests and demos.
///
/// # Panics
/// Never for sizes up to a few thousand pixels a side (encoding to memory cannot fail).
#[cfg(any(test, feature = "testing"))]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
#[must_use]
#[allow(clippy::missing_panics_doc, clippy::expect_used)]
pub fn testing_png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().expect("png header");
        let pixels = vec![0x80_u8; (width as usize) * (height as usize)];
        writer.write_image_data(&pixels).expect("png data");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_base_names_without_control_characters() {
        assert_eq!(base_name("../../etc/passwd"), "passwd");
        assert_eq!(base_name("C:\\Users\\me\\shot.png"), "shot.png");
        assert_eq!(base_name("a\u{0}b\nc.png"), "abc.png");
        assert_eq!(base_name("  "), "file");
        assert_eq!(base_name("dir/.."), "file");
        assert_eq!(base_name(&"x".repeat(300)).chars().count(), MAX_FILE_NAME_CHARS);
    }

    #[test]
    fn new_files_are_checked() {
        let limits = Limits::default();
        let owner = UserId::new();
        let png = testing_png(2, 2);
        let file = NewFile::new(owner, None, "dir/shot.bin", png.clone(), &limits).expect("png");
        assert_eq!((file.media_type(), file.name()), ("image/png", "shot.bin"));
        assert!(!format!("{file:?}").contains("137"), "bytes never printed");
        let err =
            NewFile::new(owner, None, "a.png", b"\x7fELF".to_vec(), &limits).expect_err("elf");
        assert!(err.to_string().contains("Only PNG"), "{err}");
        assert!(NewFile::new(owner, None, "e", Vec::new(), &limits).is_err());
        let small = limits.with_max_file_bytes(png.len() - 1);
        let err = NewFile::new(owner, None, "a.png", png, &small).expect_err("size");
        assert!(err.to_string().contains("at most"), "{err}");
    }

    #[test]
    fn tool_results_carry_attachments() {
        let meta =
            NewFile::new(UserId::new(), None, "a.png", testing_png(1, 1), &Limits::default())
                .expect("png")
                .meta(Utc::now());
        let object = with_attachments(json!({"path": "a.png"}), std::slice::from_ref(&meta));
        assert_eq!(object["path"], "a.png");
        assert_eq!(attachments_of(&object), vec![meta.reference()]);
        let wrapped = with_attachments(json!("done"), std::slice::from_ref(&meta));
        assert_eq!(wrapped["result"], "done");
        assert_eq!(attachments_of(&wrapped).len(), 1);
        assert_eq!(with_attachments(json!(1), &[]), json!(1));
        assert!(attachments_of(&json!({"attachments": [{"bogus": 1}]})).is_empty());
    }
}
