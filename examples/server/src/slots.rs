//! Open streams per user. Every stream (a chat's SSE stream, the chat list, an AI SDK turn)
//! holds a subscription, and with it a share of the process's memory and of the chat's
//! shared reader, for as long as the client keeps the connection. A user may hold at most
//! [`MAX_STREAMS_PER_USER`] at once (set with [`AppState::with_max_streams_per_user`]); one
//! more is `429 too_many_streams`. The slot is freed when the stream ends: the client left,
//! the turn ended, or the server cut it.
//!
//! [`AppState::with_max_streams_per_user`]: crate::AppState::with_max_streams_per_user

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::StatusCode;
use chatd_core::{Actor, UserId};

use crate::error::{ApiError, ApiResult};

/// How many streams one user may hold open by default (a few browser tabs, each with the
/// chat list and a chat, plus a CLI).
pub const MAX_STREAMS_PER_USER: usize = 16;

/// The open streams of every user.
#[derive(Debug)]
pub(crate) struct StreamSlots {
    max: usize,
    open: Mutex<HashMap<UserId, usize>>,
}

/// One open stream; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct Slot {
    slots: Arc<StreamSlots>,
    user: UserId,
}

impl StreamSlots {
    pub(crate) fn new(max: usize) -> Self {
        StreamSlots { max, open: Mutex::new(HashMap::new()) }
    }

    /// A slot for `actor`'s new stream (`None` for the system, which is not limited).
    ///
    /// # Errors
    /// 429 when the user already holds the most streams allowed.
    pub(crate) fn take(self: &Arc<Self>, actor: &Actor) -> ApiResult<Option<Slot>> {
        let Some(user) = actor.user_id() else { return Ok(None) };
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(user).or_insert(0);
        if *count >= self.max {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                format!("too many open streams: at most {} per user; close one first", self.max),
            ));
        }
        *count += 1;
        Ok(Some(Slot { slots: Arc::clone(self), user }))
    }

    /// Streams `user` holds open now.
    pub(crate) fn open(&self, user: UserId) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&user).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_holds_at_most_max_streams_and_a_dropped_one_frees_its_slot() {
        let slots = Arc::new(StreamSlots::new(2));
        let (alice, bob) = (UserId::new(), UserId::new());
        let first = slots.take(&Actor::user(alice)).expect("first");
        let _second = slots.take(&Actor::user(alice)).expect("second");
        let refused = slots.take(&Actor::user(alice)).expect_err("third");
        assert_eq!(
            (refused.status, refused.code),
            (StatusCode::TOO_MANY_REQUESTS, "too_many_streams")
        );
        assert!(slots.take(&Actor::user(bob)).is_ok(), "another user is not affected");
        assert!(slots.take(&Actor::System).expect("system").is_none(), "the system is not limited");
        drop(first);
        assert_eq!(slots.open(alice), 1);
        assert!(slots.take(&Actor::user(alice)).is_ok(), "a freed slot is reused");
    }
}
