//! Admitting a model call against the spend policy ([BEHAVIOUR §17](crate::behaviour#17-usage-cost-limits-and-fairness)): under the owner's
//! admission, read what was spent and what other calls in flight hold, ask the policy, and
//! hold an upper bound of this call's cost until its usage is recorded.

use std::time::Duration;

use super::{StopReason, TurnEnd, TurnRunner, TurnSignal, store_failure};
use crate::chat::Chat;
use crate::limits::{SpendContext, SpentSoFar, call_upper_bound};
use crate::model_config::ModelConfig;
use crate::status::TurnOutcome;
use crate::store::{Lease, NewSpendHold, StoreError};
use crate::usage::Spend;

/// How often a call refused only while others are in flight asks again.
const HELD_RETRY: Duration = Duration::from_millis(250);

impl TurnRunner {
    /// `Ok` once the spend policy admits the call about to send `request_bytes`, holding its
    /// upper bound; `Err` with the turn's end when it refuses. A refusal while other calls
    /// of the owner are in flight waits for them to settle (they may cost less than they
    /// hold) and asks again; only a refusal with nothing else in flight ends the turn.
    pub(super) async fn admit_call(
        &self,
        lease: &Lease,
        chat: &Chat,
        config: &ModelConfig,
        request_bytes: usize,
        turn: Spend,
        signal: &TurnSignal,
    ) -> Result<(), TurnEnd> {
        let Some(policy) = &self.spend else { return Ok(()) };
        let hold = NewSpendHold {
            lease: *lease,
            owner_id: chat.owner_id,
            root_chat_id: chat.root_id(),
            cost_micros: call_upper_bound(config, request_bytes),
        };
        let failed = |err: StoreError| match err {
            StoreError::LeaseLost { .. } => TurnEnd::LeaseLost,
            err => store_failure(err, ""),
        };
        loop {
            let mut admission =
                self.store.begin_spend_admission(chat.owner_id).await.map_err(failed)?;
            let held = admission.held(chat.id, chat.root_id()).await.map_err(failed)?;
            let mut spent = SpentSoFar::read(self.store.as_ref(), chat, chrono::Utc::now())
                .await
                .map_err(failed)?;
            spent.turn = turn;
            spent.held = held;
            let context = SpendContext {
                owner: chat.owner_id,
                chat: Some(chat),
                model_config: config,
                spent,
                before_send: false,
            };
            match policy.check(&context).await {
                Ok(()) => return admission.finish(Some(hold)).await.map_err(failed),
                Err(refusal) => {
                    admission.finish(None).await.map_err(failed)?;
                    if held.calls == 0 {
                        return Err(TurnEnd::Release(TurnOutcome::Failed(refusal.to_string())));
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(HELD_RETRY) => {}
                () = signal.stopped() => {
                    return Err(TurnEnd::Release(match signal.reason() {
                        Some(StopReason::Shutdown) => TurnOutcome::Shutdown,
                        _ => TurnOutcome::Interrupted,
                    }));
                }
            }
        }
    }
}
