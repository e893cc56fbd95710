//! Scenarios: fair acquisition ([BEHAVIOUR §17](crate::behaviour#17-usage-cost-limits-and-fairness) "Fairness") — owners interleaved, and the
//! cluster-wide caps on running turns per owner and in all.

use std::collections::HashMap;

use super::{Fixture, StoreRef};
use crate::store::RunningCaps;
use crate::{ChatId, NewChat, UserId};

async fn pending(fx: &Fixture, owner: UserId, n: usize) -> Vec<ChatId> {
    let mut ids = Vec::new();
    for i in 0..n {
        let new = NewChat::new(owner).with_text(format!("chat {i}"));
        ids.push(fx.store.create_chat(new).await.expect("chat").id);
    }
    ids
}

async fn owners_of(fx: &Fixture, leases: &[crate::store::Lease]) -> HashMap<UserId, usize> {
    let mut owners = HashMap::new();
    for lease in leases {
        *owners.entry(fx.get(lease.chat_id).await.owner_id).or_default() += 1;
    }
    owners
}

/// One owner with 40 pending chats and four owners with one each: the first acquisition of
/// 8 starts every owner's first chat (the old behaviour, oldest first, took 8 of the 40).
pub async fn acquisition_interleaves_owners(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let busy = UserId::new();
    pending(&fx, busy, 40).await;
    let others: Vec<UserId> = (0..4).map(|_| UserId::new()).collect();
    for owner in &others {
        pending(&fx, *owner, 1).await;
    }
    let leases = fx.store.acquire(fx.worker, 8).await.expect("acquire");
    assert_eq!(leases.len(), 8);
    let owners = owners_of(&fx, &leases).await;
    for owner in &others {
        assert_eq!(owners.get(owner), Some(&1), "every owner's first chat starts: {owners:?}");
    }
    assert_eq!(owners.get(&busy), Some(&4), "the rest go to the busy owner, oldest first");
    // Within one owner, the oldest first.
    let next = fx.store.acquire(fx.worker, 1).await.expect("acquire");
    assert_eq!(owners_of(&fx, &next).await.get(&busy), Some(&1));
}

/// With caps, no owner runs more than `per_owner` turns and no more than `total` run in all;
/// a released turn frees its slot.
pub async fn running_caps_hold(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let a = UserId::new();
    let b = UserId::new();
    pending(&fx, a, 5).await;
    pending(&fx, b, 5).await;
    let caps = RunningCaps::none().per_owner(2);
    let first = fx.store.acquire_capped(fx.worker, 8, caps).await.expect("acquire");
    let owners = owners_of(&fx, &first).await;
    assert_eq!((owners.get(&a), owners.get(&b)), (Some(&2), Some(&2)), "{owners:?}");
    let none = fx.store.acquire_capped(fx.worker, 8, caps).await.expect("acquire");
    assert!(none.is_empty(), "both owners are at their cap: {none:?}");
    fx.finish(&first[0]).await;
    let freed = fx.store.acquire_capped(fx.worker, 8, caps).await.expect("acquire");
    assert_eq!(freed.len(), 1, "one slot was freed");
    let total = RunningCaps::none().total(5);
    let more = fx.store.acquire_capped(fx.worker, 8, total).await.expect("acquire");
    assert_eq!(more.len(), 1, "4 run, the total cap is 5");
    let none = fx.store.acquire_capped(fx.worker, 8, total).await.expect("acquire");
    assert!(none.is_empty());
}

/// An owner at its cap does not fill the window: another owner's newer chat behind more of
/// its pending chats than the window holds still starts.
pub async fn a_capped_owner_does_not_hide_others_behind_its_backlog(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let big = UserId::new();
    pending(&fx, big, 70).await;
    let small = UserId::new();
    let waiting = pending(&fx, small, 1).await[0];
    let caps = RunningCaps::none().per_owner(1);
    let first = fx.store.acquire_capped(fx.worker, 1, caps).await.expect("acquire");
    assert_eq!(owners_of(&fx, &first).await.get(&big), Some(&1), "the oldest first");
    // A one-chat acquisition looks at the oldest 64 pending chats: all the big owner's.
    let next = fx.store.acquire_capped(fx.worker, 1, caps).await.expect("acquire");
    let claimed: Vec<ChatId> = next.iter().map(|l| l.chat_id).collect();
    assert_eq!(claimed, vec![waiting], "the other owner's chat, not an idle worker");
}
