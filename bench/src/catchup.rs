//! Projection catch-up: fill the topic with a backlog of realistic events while the query
//! service is stopped, then time how long the restarted service takes to apply all of it.

use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use shared_events::customer::CustomerRegistered;
use shared_events::order::{OrderConfirmed, OrderLine, OrderPlaced};
use shared_events::{DomainEvent, EventEnvelope};
use tokio::time::Instant;
use uuid::Uuid;

/// Orders per customer in the backlog.
const ORDERS_PER_CUSTOMER: usize = 50;
/// Events appended per transaction.
const CHUNK: usize = 5_000;

fn envelope(event: DomainEvent, version: i64) -> EventEnvelope {
    EventEnvelope::new(&event, version, Utc::now())
}

/// The backlog: per customer a registration, then orders each placed (2 lines) and confirmed.
fn backlog(events: usize) -> impl Iterator<Item = EventEnvelope> {
    let per_customer = 1 + 2 * ORDERS_PER_CUSTOMER;
    (0..events.div_ceil(per_customer))
        .flat_map(|_| {
            let customer = Uuid::now_v7();
            let registered = DomainEvent::CustomerRegistered(CustomerRegistered {
                customer_id: customer,
                name: "Bench Customer".into(),
                email: format!("{}@bench.example", customer.simple()),
            });
            std::iter::once(envelope(registered, 1)).chain((0..ORDERS_PER_CUSTOMER).flat_map(
                move |_| {
                    let order = Uuid::now_v7();
                    let items = vec![
                        OrderLine {
                            sku: "BENCH-1".into(),
                            name: "Widget".into(),
                            quantity: 2,
                            unit_price_cents: 1250,
                        },
                        OrderLine {
                            sku: "BENCH-2".into(),
                            name: "Gadget".into(),
                            quantity: 1,
                            unit_price_cents: 990,
                        },
                    ];
                    let placed = DomainEvent::OrderPlaced(OrderPlaced {
                        order_id: order,
                        customer_id: customer,
                        currency: "EUR".into(),
                        items,
                        item_count: 3,
                        total_cents: 3490,
                        shipping_address: None,
                        placed_at: Utc::now(),
                    });
                    let confirmed = DomainEvent::OrderConfirmed(OrderConfirmed {
                        order_id: order,
                        customer_id: customer,
                        item_count: 3,
                        total_cents: 3490,
                        currency: "EUR".into(),
                    });
                    [envelope(placed, 1), envelope(confirmed, 2)]
                },
            ))
        })
        .take(events)
}

/// Appends `events` backlog events to the command side's event log and outbox, as commands
/// would, in chunks of [`CHUNK`], and waits until the relay has published all of them: the
/// backlog reaches the topic the way every event does, and `query-service verify` can compare
/// the caught-up views with the log.
pub async fn enqueue(command_db: &str, events: usize) -> anyhow::Result<()> {
    let pool = sqlx::PgPool::connect(command_db)
        .await
        .context("connect to the command database")?;
    let started = Instant::now();
    let backlog: Vec<EventEnvelope> = backlog(events).collect();
    for chunk in backlog.chunks(CHUNK) {
        let mut tx = pool.begin().await?;
        command_service::store::event_log::append(&mut tx, chunk, None)
            .await
            .context("append the backlog")?;
        tx.commit().await?;
    }
    let appended = started.elapsed();
    loop {
        let (waiting, _) = command_service::store::event_log::backlog(&pool).await?;
        if waiting == 0 {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "the relay has not published the backlog after 10 minutes ({waiting} events left)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // What autovacuum would do to the log and the outbox meanwhile, done before the clock starts.
    sqlx::query("VACUUM (ANALYZE) event_log, outbox")
        .execute(&pool)
        .await
        .context("vacuum the event log")?;
    eprintln!(
        "appended {events} events in {:.1} s; the relay published them {:.1} s later",
        appended.as_secs_f64(),
        (started.elapsed() - appended).as_secs_f64()
    );
    Ok(())
}

/// Polls the query service's projection status until it has applied `events` and has no lag;
/// the clock starts now (the service was just started).
pub async fn caught_up(query_url: &str, events: usize) -> anyhow::Result<crate::report::Catchup> {
    let http = reqwest::Client::new();
    let cpu = crate::machine::CpuMeter::start(&[
        ("query-service", crate::machine::pid("QUERY_PID")),
        ("broker", crate::machine::pid("BROKER_PID")),
    ]);
    let started = Instant::now();
    let mut first_progress = None;
    loop {
        if let Ok(response) = http
            .get(format!("{query_url}/admin/projections"))
            .send()
            .await
            && let Ok(status) = response.json::<serde_json::Value>().await
        {
            let applied: i64 = status["partitions"].as_array().map_or(0, |ps| {
                ps.iter()
                    .filter_map(|p| p["committed_offset"].as_i64())
                    .sum()
            });
            if applied > 0 && first_progress.is_none() {
                first_progress = Some((started.elapsed(), applied));
            }
            if applied >= events as i64 && status["total_lag_events"] == 0 {
                let total = started.elapsed();
                let cpu_us = cpu.micros_per(events as u64);
                let (startup, at_start) = first_progress.unwrap_or((total, 0));
                let applying = total.saturating_sub(startup);
                return Ok(crate::report::Catchup {
                    events,
                    startup_s: startup.as_secs_f64(),
                    total_s: total.as_secs_f64(),
                    rate: events as f64 / total.as_secs_f64(),
                    rate_applying: (applied - at_start) as f64 / applying.as_secs_f64().max(0.001),
                    verified_events: verify().await?,
                    cpu_us,
                });
            }
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "not caught up after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Compares the caught-up views with what folding the command side's event log one event at a
/// time gives (`query-service verify`); fails on any difference. Returns the events compared.
async fn verify() -> anyhow::Result<u64> {
    let connect = |name: &'static str| async move {
        let url = std::env::var(name).with_context(|| name.to_owned())?;
        sqlx::PgPool::connect(&url).await.context(name)
    };
    let command_db = connect("COMMAND_DATABASE_URL").await?;
    let query_db = connect("QUERY_DATABASE_URL").await?;
    let report = query_service::verify::verify(&command_db, &query_db, 0).await?;
    anyhow::ensure!(
        report.passed,
        "the caught-up views differ from the event log:\n{report}"
    );
    eprintln!(
        "verified: the views equal the event log's {} events folded one by one",
        report.events
    );
    Ok(report.events)
}
