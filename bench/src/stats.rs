//! Latency histograms and their one-line summaries.

use hdrhistogram::Histogram;

/// A histogram of microseconds, 1 µs to 1 h at 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// `p50 | p95 | p99 | max` in milliseconds, as table cells.
pub fn row(h: &Histogram<u64>) -> String {
    let ms = |v: u64| format!("{:.1}", v as f64 / 1000.0);
    format!(
        "{} | {} | {} | {}",
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.95)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max())
    )
}
