//! Progress of long work (training steps, scored sentences, stages) as `tracing` spans that the
//! binary's `tracing-indicatif` layer draws as bars with counts, rate and ETA when stderr is a
//! terminal. Without that layer (a file, a pipe, the library) the calls do nothing.

use indicatif::ProgressStyle;
use tracing::Span;
use tracing_indicatif::span_ext::IndicatifSpanExt;

/// A bar of `total` steps, shown from its start until the value is dropped (its span closes).
pub struct Progress {
    span: Span,
}

/// The bar's look: what, how far, and for steps of similar cost how fast and how long still.
fn style(unit: &str, estimate: bool) -> ProgressStyle {
    let rate = if estimate {
        ", {rate}, {elapsed} so far, ETA {eta}"
    } else {
        ", {elapsed} so far"
    };
    ProgressStyle::with_template(&format!(
        "{{span_name}} {{msg}} [{{bar:30}}] {{human_pos}}/{{human_len}} {unit}{rate}"
    ))
    .expect("a valid progress template")
    .with_key(
        "rate",
        |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.0}/s", state.per_sec());
        },
    )
    .progress_chars("=> ")
}

impl Progress {
    /// Starts the bar of `span` (created with the field `indicatif.pb_show`, which the binary's
    /// filter shows) counting `unit`s of similar cost, with their rate and the time left.
    pub fn start(span: Span, unit: &str, total: usize, message: String) -> Progress {
        Self::with_style(span, style(unit, true), total, message)
    }

    /// The same for steps of unequal cost (stages), without a rate or an estimate.
    pub fn unestimated(span: Span, unit: &str, total: usize, message: String) -> Progress {
        Self::with_style(span, style(unit, false), total, message)
    }

    fn with_style(span: Span, style: ProgressStyle, total: usize, message: String) -> Progress {
        span.pb_set_style(&style);
        span.pb_set_length(total as u64);
        span.pb_set_message(&message);
        // The layer shows a span's bar from its first entry until the span closes.
        span.in_scope(|| ());
        Progress { span }
    }

    pub fn advance(&self, steps: usize) {
        self.span.pb_inc(steps as u64);
    }

    pub fn message(&self, message: &str) {
        self.span.pb_set_message(message);
    }
}
