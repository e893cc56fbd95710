//! Scenarios: files ([BEHAVIOUR §19](crate::behaviour#19-attachments)) — stored once with the type their bytes show, read back
//! only by their owner (or the system), bounded per chat, bound by a message all or none, and
//! gone with their chat; uploads never bound are purged by age.

use std::sync::Arc;
use std::time::Duration;

use super::{Fixture, StoreRef};
use crate::store::Limits;
use crate::store::files::{FileStore, NewFile, testing_png};
use crate::store::{RetentionPolicy, StoreError};
use crate::{ChatId, FileId, UserId};

fn files_of(fx: &Fixture) -> Arc<dyn FileStore> {
    fx.store.file_store().expect("the store keeps files (ChatStore::file_store)")
}

fn new_file(owner: UserId, chat: Option<ChatId>, name: &str, bytes: Vec<u8>) -> NewFile {
    NewFile::new(owner, chat, name, bytes, &Limits::default()).expect("an accepted file")
}

fn capped(owner: UserId, chat: Option<ChatId>, cap: usize) -> NewFile {
    let limits = Limits::default().with_max_files_per_chat(cap);
    NewFile::new(owner, chat, "shot.png", testing_png(2, 2), &limits).expect("png")
}

async fn gone(files: &dyn FileStore, id: FileId) -> bool {
    matches!(files.read_file(None, id).await, Err(StoreError::NotFound { .. }))
}

/// A file is stored with the type its bytes show (not its name's), read back byte for byte
/// with its size, name and binding; a large file round-trips whole.
pub async fn files_are_stored_with_their_sniffed_type(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let files = files_of(&fx);
    let chat = fx.idle_chat().await;
    let png = testing_png(5, 3);
    let meta = files.put_file(new_file(fx.owner, Some(chat.id), "up/notes.txt", png.clone())).await;
    let meta = meta.expect("put");
    assert_eq!((meta.media_type.as_str(), meta.name.as_str()), ("image/png", "notes.txt"));
    assert_eq!(
        (meta.size, meta.chat_id, meta.owner_id),
        (png.len() as u64, Some(chat.id), fx.owner)
    );
    let read = files.read_file(Some(fx.owner), meta.id).await.expect("read");
    assert_eq!((read.meta.clone(), read.bytes), (meta.clone(), png));
    assert_eq!(files.file_meta(Some(fx.owner), meta.id).await.expect("meta"), meta);
    let text: Vec<u8> = "line\n".repeat(200_000).into_bytes();
    let big =
        files.put_file(new_file(fx.owner, None, "big.txt", text.clone())).await.expect("1 MiB");
    assert_eq!(big.media_type, "text/plain");
    assert_eq!(big.chat_id, None);
    assert_eq!(files.read_file(None, big.id).await.expect("read big").bytes, text);
    assert_eq!(files.chat_files(chat.id).await.expect("list"), vec![meta]);
}

/// Another owner's file is not found, to reads and to binding; a file cannot be put into
/// another owner's chat; the system reads any file.
pub async fn files_are_scoped_to_their_owner(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let files = files_of(&fx);
    let stranger = UserId::new();
    let chat = fx.idle_chat().await;
    let mine = files.put_file(new_file(fx.owner, None, "a.png", testing_png(1, 1))).await;
    let mine = mine.expect("put");
    for reader in [Some(stranger)] {
        assert!(files.read_file(reader, mine.id).await.expect_err("theirs").is_not_found());
        assert!(files.file_meta(reader, mine.id).await.expect_err("theirs").is_not_found());
    }
    assert_eq!(files.read_file(None, mine.id).await.expect("system").meta.id, mine.id);
    let into_theirs = files.put_file(new_file(stranger, Some(chat.id), "b.png", testing_png(1, 1)));
    assert!(into_theirs.await.expect_err("not their chat").is_not_found());
    let bind = files.bind_files(stranger, chat.id, &[mine.id], 200).await;
    assert!(bind.expect_err("not their chat").is_not_found());
    let missing =
        files.put_file(new_file(fx.owner, Some(ChatId::new()), "c.png", testing_png(1, 1)));
    assert!(missing.await.expect_err("no chat").is_not_found());
    // A stranger's file named in the owner's binding is left alone.
    let theirs = files.put_file(new_file(stranger, None, "t.png", testing_png(1, 1))).await;
    let theirs = theirs.expect("put");
    files.bind_files(fx.owner, chat.id, &[theirs.id, mine.id], 200).await.expect("bind");
    assert_eq!(files.file_meta(None, theirs.id).await.expect("meta").chat_id, None);
    assert_eq!(files.file_meta(None, mine.id).await.expect("meta").chat_id, Some(chat.id));
    assert_eq!(files.chat_files(chat.id).await.expect("list").len(), 1);
}

/// A chat holds at most its cap of files: the upload past it is refused and stores nothing,
/// and a binding that would pass it binds none; files already bound are left as they are.
pub async fn a_chat_holds_at_most_its_cap(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let files = files_of(&fx);
    let chat = fx.idle_chat().await;
    for _ in 0..2 {
        files.put_file(capped(fx.owner, Some(chat.id), 3)).await.expect("within the cap");
    }
    let a = files.put_file(capped(fx.owner, None, 3)).await.expect("unbound");
    let b = files.put_file(capped(fx.owner, None, 3)).await.expect("unbound");
    let err = files.bind_files(fx.owner, chat.id, &[a.id, b.id], 3).await.expect_err("over");
    assert_eq!(err.to_string(), "A chat may have at most 3 files.");
    assert_eq!(files.chat_files(chat.id).await.expect("list").len(), 2, "all or none");
    assert_eq!(files.file_meta(None, a.id).await.expect("a").chat_id, None);
    files.bind_files(fx.owner, chat.id, &[a.id, a.id], 3).await.expect("one more fits");
    let err = files.put_file(capped(fx.owner, Some(chat.id), 3)).await.expect_err("full");
    assert_eq!(err.to_string(), "A chat may have at most 3 files.");
    assert_eq!(files.chat_files(chat.id).await.expect("list").len(), 3, "nothing stored");
    // Binding files already bound changes nothing and counts nothing.
    let held: Vec<FileId> =
        files.chat_files(chat.id).await.expect("list").iter().map(|f| f.id).collect();
    files.bind_files(fx.owner, chat.id, &held, 3).await.expect("already bound");
    let other = fx.idle_chat().await;
    files.bind_files(fx.owner, other.id, &held, 3).await.expect("bound elsewhere");
    assert!(files.chat_files(other.id).await.expect("list").is_empty());
}

/// A chat's files go with it — deleted or purged by retention — and no one else's do;
/// unbound uploads are purged once older than the given time, bound files never are.
pub async fn files_go_with_their_chat(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let files = files_of(&fx);
    let (deleted, purged, kept) =
        (fx.idle_chat().await, fx.idle_chat().await, fx.idle_chat().await);
    let mut ids = Vec::new();
    for chat in [deleted.id, purged.id, kept.id] {
        let put = files.put_file(new_file(fx.owner, Some(chat), "s.png", testing_png(1, 1))).await;
        ids.push(put.expect("put").id);
    }
    let unbound = files.put_file(new_file(fx.owner, None, "u.txt", b"draft".to_vec())).await;
    let unbound = unbound.expect("put").id;
    fx.store.delete_chat(deleted.id).await.expect("delete");
    fx.store.set_archived(purged.id, true).await.expect("archive");
    let policy = RetentionPolicy::off().with_purge_archived_after(Duration::ZERO);
    let pass = fx.store.apply_retention(&policy, 100).await.expect("purge");
    assert_eq!(pass.purged, [purged.id]);
    // A store that keeps files elsewhere deletes them here; ours have done it already.
    for chat in [deleted.id, purged.id] {
        files.delete_chat_files(chat).await.expect("delete files");
    }
    assert!(gone(files.as_ref(), ids[0]).await && gone(files.as_ref(), ids[1]).await);
    assert!(files.chat_files(deleted.id).await.expect("list").is_empty());
    assert!(!gone(files.as_ref(), ids[2]).await, "another chat's file stays");
    let past = chrono::Utc::now() - chrono::Duration::hours(1);
    assert_eq!(files.purge_unbound_files(past).await.expect("purge none"), 0);
    assert!(!gone(files.as_ref(), unbound).await);
    let future = chrono::Utc::now() + chrono::Duration::seconds(5);
    assert_eq!(files.purge_unbound_files(future).await.expect("purge"), 1);
    assert!(gone(files.as_ref(), unbound).await);
    assert!(!gone(files.as_ref(), ids[2]).await, "bound files are never purged as unbound");
}
