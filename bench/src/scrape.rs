//! Reading a histogram from a service's `/metrics`: the bucket bound under which a quantile of
//! the observations falls.

/// The cumulative bucket counts `(le, count)` of histogram `name` as the service at `base_url`
/// reports them now.
pub async fn histogram(base_url: &str, name: &str) -> anyhow::Result<Vec<(f64, f64)>> {
    let metrics = reqwest::get(format!("{base_url}/metrics"))
        .await?
        .text()
        .await?;
    Ok(buckets(&metrics, name))
}

/// The cumulative bucket counts `(le, count)` of histogram `name`, by bound.
pub fn buckets(metrics: &str, name: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{name}_bucket{{");
    let mut buckets: Vec<(f64, f64)> = metrics
        .lines()
        .filter(|line| line.starts_with(&prefix))
        .filter_map(|line| {
            let le = line.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            let count: f64 = line.rsplit(' ').next()?.parse().ok()?;
            Some((le, count))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
}

/// The buckets observed between two scrapes.
pub fn since(before: &[(f64, f64)], after: &[(f64, f64)]) -> Vec<(f64, f64)> {
    after
        .iter()
        .map(|(le, count)| {
            let earlier = before
                .iter()
                .find(|(b, _)| b == le)
                .map_or(0.0, |(_, c)| *c);
            (*le, count - earlier)
        })
        .collect()
}

/// The smallest bucket bound (`le`) with at least `q` of the observations at or below it, or
/// `None` when there are none.
pub fn quantile_bound(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    (total > 0.0)
        .then(|| {
            buckets
                .iter()
                .find(|(_, count)| *count >= q * total)
                .map(|(le, _)| *le)
        })
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::{buckets, quantile_bound, since};

    #[test]
    fn finds_the_bucket_holding_the_quantile() {
        let text = "x_bucket{le=\"0.001\"} 10\nx_bucket{le=\"0.005\"} 90\nx_bucket{le=\"0.01\"} 99\nx_bucket{le=\"+Inf\"} 100\nx_sum 1\nx_count 100\n";
        assert_eq!(quantile_bound(&buckets(text, "x"), 0.5), Some(0.005));
        assert_eq!(quantile_bound(&buckets(text, "x"), 0.99), Some(0.01));
        assert_eq!(quantile_bound(&buckets(text, "y"), 0.5), None);
        let earlier = buckets(
            "x_bucket{le=\"0.001\"} 10\nx_bucket{le=\"0.005\"} 10\nx_bucket{le=\"0.01\"} 10\nx_bucket{le=\"+Inf\"} 10\n",
            "x",
        );
        assert_eq!(
            quantile_bound(&since(&earlier, &buckets(text, "x")), 0.5),
            Some(0.005)
        );
    }
}
