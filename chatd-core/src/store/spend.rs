//! Spend admission ([BEHAVIOUR §17](crate::behaviour#17-usage-cost-limits-and-fairness)): how model calls of one owner on different workers are
//! admitted one at a time, each holding an upper bound of its cost while it is in flight, so
//! that concurrent calls overshoot a limit by at most one call in all.

use async_trait::async_trait;

use super::{Lease, Result};
use crate::ids::{ChatId, UserId};

/// What the other model calls of an owner hold while in flight: holds of turns still
/// running under the lease that took them (a finished, failed or taken-over turn holds
/// nothing), excluding the asking chat's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held {
    /// How many calls hold something.
    pub calls: i64,
    /// Their upper bounds in all, in micro-units.
    pub owner_micros: i64,
    /// The part of that held in the asking chat's tree.
    pub tree_micros: i64,
}

/// The hold a model call takes when admitted: its chat's lease (the hold lapses when the
/// lease does) and an upper bound of its cost. A chat holds at most one: a new hold replaces
/// its chat's last, and recording the usage of a step settles it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewSpendHold {
    /// The running turn's lease.
    pub lease: Lease,
    /// The chat's owner.
    pub owner_id: UserId,
    /// The root of the chat's tree.
    pub root_chat_id: ChatId,
    /// The most the call can cost, in micro-units.
    pub cost_micros: i64,
}

/// One owner's admission in progress: while it is open, no other admission for that owner
/// (in any process sharing the store) can be. Finish it; dropping it also ends it, but a
/// store may then release the owner later than it could.
#[async_trait]
pub trait SpendAdmission: Send {
    /// What the owner's other calls in flight hold (`chat`'s own hold is not counted;
    /// `root` is its tree).
    ///
    /// # Errors
    /// `Backend` only.
    async fn held(&mut self, chat: ChatId, root: ChatId) -> Result<Held>;

    /// Ends the admission, first recording `hold` when the call was admitted.
    ///
    /// # Errors
    /// `LeaseLost` when the hold's lease is no longer its chat's; `Backend`. Nothing is held
    /// then.
    async fn finish(self: Box<Self>, hold: Option<NewSpendHold>) -> Result<()>;
}
