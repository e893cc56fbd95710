//! The retry policy the chat loop owns ([BEHAVIOUR §3](crate::behaviour#3-a-turn) "Retries"): typed classification, capped
//! exponential backoff with jitter, and the provider's `Retry-After` honoured.

use std::time::Duration;

use crate::provider::ProviderError;

/// When and how long to wait before retrying a failed model call.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Retries allowed per step (default 25).
    pub max_retries: u32,
    /// The first backoff (default 1 s); doubled per attempt.
    pub base: Duration,
    /// The backoff cap (default 60 s).
    pub max_delay: Duration,
    /// The longest `Retry-After` honoured (default 5 min); longer waits give up.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 25,
            base: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// Sets how many retries a step may make.
    #[must_use]
    pub fn with_max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Sets the first backoff (doubled per attempt).
    #[must_use]
    pub fn with_base(mut self, base: Duration) -> Self {
        self.base = base;
        self
    }

    /// Sets the longest backoff.
    #[must_use]
    pub fn with_max_delay(mut self, max: Duration) -> Self {
        self.max_delay = max;
        self
    }

    /// Sets the longest `Retry-After` honoured (a longer one gives up).
    #[must_use]
    pub fn with_max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
        self
    }

    /// The backoff before retry number `attempt` (0-based) without jitter:
    /// `min(base · 2^attempt, max_delay)`.
    #[must_use]
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.checked_pow(attempt.min(31)).unwrap_or(u32::MAX);
        self.base.checked_mul(factor).unwrap_or(self.max_delay).min(self.max_delay)
    }

    /// How long to wait before retrying after `error` on retry number `attempt` (0-based),
    /// or `None` to give up: the error is not retryable, the budget is spent, or the
    /// provider asked for a longer wait than `max_retry_after`. A provider's `Retry-After`
    /// is used as given; otherwise the backoff with "equal jitter" (half fixed, half random),
    /// so replicas hitting the same limit spread out.
    #[must_use]
    pub fn delay(&self, attempt: u32, error: &ProviderError) -> Option<Duration> {
        if !error.is_retryable() || attempt >= self.max_retries {
            return None;
        }
        if let Some(wait) = error.retry_after() {
            return (wait <= self.max_retry_after).then_some(wait);
        }
        let backoff = self.backoff(attempt);
        let half = backoff / 2;
        Some(half + half.mul_f64(fastrand::f64()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::ProviderErrorKind;

    fn error(kind: ProviderErrorKind) -> ProviderError {
        ProviderError::new("openai", kind, "x")
    }

    #[test]
    fn backoff_doubles_from_one_second_and_caps_at_sixty() {
        let policy = RetryPolicy::default();
        let seconds: Vec<u64> = (0..9).map(|a| policy.backoff(a).as_secs()).collect();
        assert_eq!(seconds, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(policy.backoff(u32::MAX), Duration::from_secs(60), "no overflow");
    }

    #[test]
    fn jittered_delays_stay_within_half_and_full_backoff() {
        let policy = RetryPolicy::default();
        for attempt in 0..8 {
            for _ in 0..50 {
                let delay =
                    policy.delay(attempt, &error(ProviderErrorKind::RateLimited)).expect("retry");
                let backoff = policy.backoff(attempt);
                assert!(delay >= backoff / 2 && delay <= backoff, "{attempt}: {delay:?}");
            }
        }
    }

    #[test]
    fn retry_after_is_honoured_and_a_too_long_wait_gives_up() {
        let policy = RetryPolicy::default();
        let mut err = error(ProviderErrorKind::RateLimited);
        err.retry_after = Some(Duration::from_secs(7));
        assert_eq!(policy.delay(0, &err), Some(Duration::from_secs(7)));
        err.retry_after = Some(Duration::from_secs(3600));
        assert_eq!(policy.delay(0, &err), None);
    }

    #[test]
    fn non_retryable_errors_and_a_spent_budget_give_up() {
        let policy = RetryPolicy { max_retries: 3, ..RetryPolicy::default() };
        for kind in [
            ProviderErrorKind::Auth,
            ProviderErrorKind::ContextLength,
            ProviderErrorKind::InvalidRequest,
            ProviderErrorKind::Cancelled,
        ] {
            assert_eq!(policy.delay(0, &error(kind)), None, "{kind:?}");
        }
        assert!(policy.delay(2, &error(ProviderErrorKind::Server)).is_some());
        assert_eq!(policy.delay(3, &error(ProviderErrorKind::Server)), None);
    }
}
