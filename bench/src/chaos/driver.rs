//! The load of a chaos run: workers that each drive one order at a time through a random walk of
//! its lifecycle, at a steady rate, sending every command with an `Idempotency-Key` and retrying
//! it with the same key while the stack is having an outage.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use uuid::Uuid;

/// How long one command may keep failing before the run gives up on it.
const COMMAND_DEADLINE: Duration = Duration::from_secs(180);

/// Counts of what the drivers did.
#[derive(Debug, Default)]
pub struct Tally {
    /// Commands sent (each with its own key).
    pub commands: AtomicU64,
    /// Commands answered 2xx.
    pub accepted: AtomicU64,
    /// Commands answered 2xx after at least one retry.
    pub retried: AtomicU64,
    /// HTTP requests, retries included.
    pub attempts: AtomicU64,
    /// Commands refused or given up.
    pub failed: AtomicU64,
    /// Orders driven to their end.
    pub orders: AtomicU64,
    tickets: AtomicUsize,
}

/// A small deterministic generator (xorshift64*): no dependency, repeatable from the seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced: xorshift never leaves it).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    /// A duration between `low` and `high` milliseconds.
    pub fn millis(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(low + self.next() % (high - low + 1))
    }
}

/// One worker: takes orders from the shared count until none are left and drives each one.
#[derive(Debug)]
pub struct Driver {
    /// The HTTP client.
    pub http: reqwest::Client,
    /// The command-service replicas, used in turn.
    pub urls: Vec<String>,
    /// Shared counts.
    pub tally: Arc<Tally>,
    /// Customers registered so far, shared by the workers.
    pub customers: Arc<Mutex<Vec<Uuid>>>,
    /// This worker's random choices.
    pub rng: Rng,
    /// Which replica the next request goes to.
    pub turn: usize,
}

impl Driver {
    /// Drives orders until `orders` were started, starting order `n` no earlier than `n / rate`
    /// seconds after `start`.
    pub async fn work(mut self, orders: usize, rate: f64, start: Instant) -> anyhow::Result<()> {
        loop {
            let ticket = self.tally.tickets.fetch_add(1, Ordering::SeqCst);
            if ticket >= orders {
                return Ok(());
            }
            tokio::time::sleep_until(
                (start + Duration::from_secs_f64(ticket as f64 / rate)).into(),
            )
            .await;
            self.drive_one_order().await?;
            self.tally.orders.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A customer (new one time in five), an order, and a random walk through its lifecycle.
    async fn drive_one_order(&mut self) -> anyhow::Result<()> {
        let customer = self.customer().await?;
        let currency = if self.rng.chance(80) { "EUR" } else { "USD" };
        let quantity = 1 + self.rng.next() % 5;
        let order = json!({ "customer_id": customer, "currency": currency, "items": [
            { "sku": "A-1", "name": "Widget", "quantity": quantity, "unit_price_cents": 1250 },
            { "sku": "B-2", "name": "Gadget", "quantity": 1, "unit_price_cents": 499 }
        ]});
        let placed = self.send(Method::POST, "/orders".into(), order).await?;
        let order = uuid(&placed, "order_id")?;
        if self.rng.chance(50) {
            let line =
                json!({ "sku": "C-3", "name": "Gizmo", "quantity": 2, "unit_price_cents": 300 });
            self.post(format!("/orders/{order}/items"), line).await?;
            if self.rng.chance(30) {
                let path = format!("/orders/{order}/items/C-3");
                self.send(Method::DELETE, path, Value::Null).await?;
            }
        }
        if self.rng.chance(10) {
            let name = format!("Renamed {}", self.rng.next() % 1000);
            let path = format!("/customers/{customer}/rename");
            self.post(path, json!({ "name": name })).await?;
        }
        let cancel = json!({ "reason": "chaos" });
        if self.rng.chance(15) {
            return self.post(format!("/orders/{order}/cancel"), cancel).await;
        }
        self.post(format!("/orders/{order}/confirm"), Value::Null)
            .await?;
        if self.rng.chance(15) {
            return self.post(format!("/orders/{order}/cancel"), cancel).await;
        }
        let tracking = format!("JD{:010}", self.rng.next() % 10_000_000_000);
        let shipment = json!({ "carrier": "DHL", "tracking_number": tracking });
        self.post(format!("/orders/{order}/ship"), shipment).await?;
        if self.rng.chance(50) {
            self.post(format!("/orders/{order}/deliver"), Value::Null)
                .await?;
        }
        Ok(())
    }

    /// A new customer one time in five (and for the first order), else a known one.
    async fn customer(&mut self) -> anyhow::Result<Uuid> {
        let known = self.customers.lock().await.len();
        if known > 0 && !self.rng.chance(20) {
            let pick = (self.rng.next() % known as u64) as usize;
            return Ok(self.customers.lock().await[pick]);
        }
        let email = format!("{}@chaos.example", Uuid::now_v7().simple());
        let body = json!({ "name": "Chaos Monkey", "email": email });
        let registered = self.send(Method::POST, "/customers".into(), body).await?;
        let id = uuid(&registered, "customer_id")?;
        self.customers.lock().await.push(id);
        Ok(id)
    }

    async fn post(&mut self, path: String, body: Value) -> anyhow::Result<()> {
        self.send(Method::POST, path, body).await.map(drop)
    }

    /// Sends one command with a fresh `Idempotency-Key`, alternating replicas, and retries it
    /// with the same key while the stack answers with an outage (connection errors, 5xx, 429,
    /// or the key still in progress). Any other refusal is a failure of the run.
    async fn send(&mut self, method: Method, path: String, body: Value) -> anyhow::Result<Value> {
        let key = Uuid::now_v7().to_string();
        let started = Instant::now();
        self.tally.commands.fetch_add(1, Ordering::SeqCst);
        let mut attempt: u32 = 0;
        loop {
            self.turn += 1;
            let url = format!("{}{path}", self.urls[self.turn % self.urls.len()]);
            self.tally.attempts.fetch_add(1, Ordering::SeqCst);
            let mut request = self
                .http
                .request(method.clone(), &url)
                .header("idempotency-key", &key);
            if !body.is_null() {
                request = request.json(&body);
            }
            let outcome = match request.send().await {
                Ok(response) => {
                    Some((response.status(), response.text().await.unwrap_or_default()))
                }
                Err(_) => None,
            };
            match outcome {
                Some((status, text)) if status.is_success() => {
                    self.tally.accepted.fetch_add(1, Ordering::SeqCst);
                    if attempt > 0 {
                        self.tally.retried.fetch_add(1, Ordering::SeqCst);
                    }
                    return Ok(serde_json::from_str(&text).unwrap_or(Value::Null));
                }
                Some((status, text)) if !is_outage(status, &text) => {
                    self.tally.failed.fetch_add(1, Ordering::SeqCst);
                    bail!("{method} {path} was refused: {status} {text}");
                }
                _ => {}
            }
            if started.elapsed() > COMMAND_DEADLINE {
                self.tally.failed.fetch_add(1, Ordering::SeqCst);
                bail!(
                    "{method} {path} kept failing for {} s",
                    COMMAND_DEADLINE.as_secs()
                );
            }
            attempt += 1;
            tokio::time::sleep(Duration::from_millis((50u64 << attempt.min(5)).min(1_000))).await;
        }
    }
}

/// Whether a response means "the stack is having an outage; try again", not "no".
fn is_outage(status: StatusCode, body: &str) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::CONFLICT && body.contains("idempotency-key-in-use"))
}

fn uuid(body: &Value, field: &str) -> anyhow::Result<Uuid> {
    body[field]
        .as_str()
        .and_then(|s| Uuid::try_parse(s).ok())
        .with_context(|| format!("no {field} in {body}"))
}
