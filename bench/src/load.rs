//! Load against the command service: closed loops (N connections back to back) and an open loop
//! (a fixed arrival rate, latency counted from each request's scheduled time so a stalled server
//! cannot hide its queue: no coordinated omission).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;
use tokio::sync::Mutex;
use tokio::time::Instant;
use uuid::Uuid;

use crate::Target;
use crate::stats::histogram;

/// What one run measured.
#[derive(Debug)]
pub struct Run {
    /// Latency of each accepted command, µs.
    pub latency: Histogram<u64>,
    /// Requests that did not get a 201.
    pub errors: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl Run {
    /// Accepted commands per second.
    pub fn rate(&self) -> f64 {
        self.latency.len() as f64 / self.elapsed.as_secs_f64()
    }
}

fn client(connections: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .tcp_nodelay(true)
        .build()
        .expect("HTTP client")
}

fn order(customer: Uuid) -> serde_json::Value {
    serde_json::json!({
        "customer_id": customer,
        "currency": "EUR",
        "items": [
            { "sku": "BENCH-1", "name": "Widget", "quantity": 2, "unit_price_cents": 1250 },
            { "sku": "BENCH-2", "name": "Gadget", "quantity": 1, "unit_price_cents": 990 }
        ]
    })
}

/// Registers `count` customers (16 at a time) and returns their ids.
pub async fn register_customers(target: &Target, count: usize) -> anyhow::Result<Vec<Uuid>> {
    let http = client(16);
    let ids = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let next = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (http, ids, next, url) = (
                http.clone(),
                ids.clone(),
                next.clone(),
                format!("{}/customers", target.command_url),
            );
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < count as u64 {
                    let email = format!("{}@bench.example", Uuid::now_v7().simple());
                    let body = serde_json::json!({ "name": "Bench Customer", "email": email });
                    let response: serde_json::Value = http
                        .post(&url)
                        .json(&body)
                        .send()
                        .await?
                        .error_for_status()?
                        .json()
                        .await?;
                    let id = response["customer_id"]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .context("customer_id")?;
                    ids.lock().await.push(id);
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for worker in workers {
        worker.await??;
    }
    let ids = std::mem::take(&mut *ids.lock().await);
    Ok(ids)
}

/// `connections` workers, each sending the next order as soon as the last was answered.
pub async fn closed_loop(
    target: &Target,
    customers: &[Uuid],
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Run> {
    let http = client(connections);
    let url = format!("{}/orders", target.command_url);
    let customers: Arc<[Uuid]> = customers.into();
    let start = Instant::now();
    let deadline = start + duration;
    let workers: Vec<_> = (0..connections)
        .map(|worker| {
            let (http, url, customers) = (http.clone(), url.clone(), customers.clone());
            tokio::spawn(async move {
                let (mut latency, mut errors) = (histogram(), 0u64);
                let mut i = worker;
                while Instant::now() < deadline {
                    let body = order(customers[i % customers.len()]);
                    i += connections;
                    let sent = Instant::now();
                    match http.post(&url).json(&body).send().await {
                        Ok(r) if r.status() == 201 => {
                            let _ = r.bytes().await;
                            latency.record(sent.elapsed().as_micros() as u64).ok();
                        }
                        _ => errors += 1,
                    }
                }
                (latency, errors)
            })
        })
        .collect();
    let mut run = Run {
        latency: histogram(),
        errors: 0,
        elapsed: Duration::ZERO,
    };
    for worker in workers {
        let (latency, errors) = worker.await?;
        run.latency.add(latency).ok();
        run.errors += errors;
    }
    run.elapsed = start.elapsed();
    Ok(run)
}

/// Sends orders at `rate` per second for `duration`, each on its own task; latency runs from
/// the scheduled send time. With `visible_at` (the query service), each accepted order is then
/// read there with its consistency token (every `sample`-th order), and the time from the 201
/// to the 200 is the order's visibility latency.
pub async fn open_loop(
    target: &Target,
    customers: &[Uuid],
    rate: f64,
    duration: Duration,
    visible_at: Option<(&str, usize)>,
) -> anyhow::Result<(Run, Histogram<u64>)> {
    let http = client(512);
    let url = format!("{}/orders", target.command_url);
    let total = (rate * duration.as_secs_f64()) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let scheduled = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(scheduled).await;
        // Every `sample`-th order is also read back, so measuring visibility does not itself
        // double the load.
        let query = visible_at
            .filter(|(_, sample)| i % sample == 0)
            .map(|(url, _)| url.to_owned());
        let (http, url, body) = (
            http.clone(),
            url.clone(),
            order(customers[i % customers.len()]),
        );
        tasks.push(tokio::spawn(async move {
            let response = http
                .post(&url)
                .json(&body)
                .send()
                .await
                .ok()
                .filter(|r| r.status() == 201)?;
            let accepted = scheduled.elapsed().as_micros() as u64;
            let Some(query) = query else {
                let _ = response.bytes().await;
                return Some((accepted, None));
            };
            let answered = Instant::now();
            let token = response.headers().get("x-consistency-token")?.clone();
            let order: serde_json::Value = response.json().await.ok()?;
            let read = http
                .get(format!("{query}/orders/{}", order["order_id"].as_str()?))
                .header("x-consistency-token", token)
                .send()
                .await
                .ok()
                .filter(|r| r.status() == 200)?;
            let _ = read.bytes().await;
            Some((accepted, Some(answered.elapsed().as_micros() as u64)))
        }));
    }
    let mut run = Run {
        latency: histogram(),
        errors: 0,
        elapsed: Duration::ZERO,
    };
    let mut visibility = histogram();
    for task in tasks {
        match task.await? {
            Some((accepted, visible)) => {
                run.latency.record(accepted).ok();
                if let Some(visible) = visible {
                    visibility.record(visible).ok();
                }
            }
            None => run.errors += 1,
        }
    }
    run.elapsed = start.elapsed();
    Ok((run, visibility))
}

/// Up to `count` orders the query service lists, with their customers (newest first).
pub async fn known_orders(query_url: &str, count: usize) -> anyhow::Result<Vec<(Uuid, Uuid)>> {
    let http = client(1);
    let mut known = Vec::with_capacity(count);
    let mut cursor: Option<String> = None;
    while known.len() < count {
        let mut url = format!("{query_url}/orders?limit=100");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page: serde_json::Value = http
            .get(&url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let items = page["items"].as_array().context("items")?;
        let id = |o: &serde_json::Value, field: &str| o[field].as_str()?.parse::<Uuid>().ok();
        known.extend(
            items
                .iter()
                .filter_map(|o| Some((id(o, "order_id")?, id(o, "customer_id")?))),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    Ok(known)
}

/// `connections` workers reading `path(id)` of random `ids` from `base_url` back to back; only
/// 200 answers count as reads.
pub async fn read_loop(
    base_url: &str,
    ids: &[Uuid],
    path: fn(Uuid) -> String,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Run> {
    let http = client(connections);
    let base: Arc<str> = base_url.into();
    random_reads(ids, connections, duration, move |id| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            match http.get(format!("{base}{}", path(id))).send().await {
                Ok(r) if r.status() == 200 => r.bytes().await.is_ok(),
                _ => false,
            }
        }
    })
    .await
}

/// `connections` workers calling `read` on random ids of `orders` back to back for `duration`;
/// `read` says whether the read succeeded (only successes are timed).
pub async fn random_reads<F, Fut>(
    orders: &[Uuid],
    connections: usize,
    duration: Duration,
    read: F,
) -> anyhow::Result<Run>
where
    F: Fn(Uuid) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let orders: Arc<[Uuid]> = orders.into();
    let start = Instant::now();
    let deadline = start + duration;
    let workers: Vec<_> = (0..connections)
        .map(|worker| {
            let (orders, read) = (orders.clone(), read.clone());
            tokio::spawn(async move {
                let (mut latency, mut errors) = (histogram(), 0u64);
                // A cheap, fixed-seed walk over the ids: every worker reads other orders.
                let mut i = worker.wrapping_mul(7919);
                while Instant::now() < deadline {
                    i = i
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let id = orders[(i >> 33) % orders.len()];
                    let sent = Instant::now();
                    if read(id).await {
                        latency.record(sent.elapsed().as_micros() as u64).ok();
                    } else {
                        errors += 1;
                    }
                }
                anyhow::Ok((latency, errors))
            })
        })
        .collect();
    collect(workers, start).await
}

/// A load worker: its latencies and how many of its requests failed.
pub type Worker = tokio::task::JoinHandle<anyhow::Result<(Histogram<u64>, u64)>>;

/// Adds up the workers' results into one run that started at `start`.
pub async fn collect(workers: Vec<Worker>, start: Instant) -> anyhow::Result<Run> {
    let mut run = Run {
        latency: histogram(),
        errors: 0,
        elapsed: Duration::ZERO,
    };
    for worker in workers {
        let (latency, errors) = worker.await??;
        run.latency.add(latency).ok();
        run.errors += errors;
    }
    run.elapsed = start.elapsed();
    Ok(run)
}
