//! One measurement line.

use serde::Serialize;

/// Which way a ratio must go to meet its target.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    /// `ratio >= x`.
    AtLeast(f64),
    /// `ratio <= x`.
    AtMost(f64),
    /// Informational: no target.
    None,
}

/// One measurement and its baseline.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    scenario: &'static str,
    metric: String,
    unit: &'static str,
    value: f64,
    baseline: f64,
    ratio: f64,
    target: Option<String>,
    pass: Option<bool>,
}

impl Report {
    /// A measurement whose ratio is `value / baseline`.
    pub(crate) fn new(
        scenario: &'static str,
        metric: impl Into<String>,
        unit: &'static str,
        value: f64,
        baseline: f64,
        target: Target,
    ) -> Self {
        let ratio = if baseline > 0.0 { value / baseline } else { 0.0 };
        let (target, pass) = match target {
            Target::AtLeast(min) => (Some(format!(">= {min}")), Some(ratio >= min)),
            Target::AtMost(max) => (Some(format!("<= {max}")), Some(ratio <= max)),
            Target::None => (None, None),
        };
        Report {
            scenario,
            metric: metric.into(),
            unit,
            value: round(value),
            baseline: round(baseline),
            ratio: round(ratio),
            target,
            pass,
        }
    }

    /// A measurement with an absolute limit (`value <= max`); the baseline is reported
    /// for context and the ratio is `value / baseline`.
    pub(crate) fn limit(
        scenario: &'static str,
        metric: impl Into<String>,
        unit: &'static str,
        value: f64,
        baseline: f64,
        max: f64,
    ) -> Self {
        let mut report = Report::new(scenario, metric, unit, value, baseline, Target::None);
        report.target = Some(format!("value <= {max}"));
        report.pass = Some(value <= max);
        report
    }

    /// The JSON line.
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|err| format!("{{\"error\":\"{err}\"}}"))
    }
}

/// The `p`-quantile (0..=1) of `samples` by nearest rank (sorts them; 0 for none).
pub(crate) fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    let rank = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples.get(rank).copied().unwrap_or(0.0)
}

fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}
