//! The database's own limit for the work a request does, measured without HTTP: the exact
//! transaction of `POST /orders` (the command service's own code, called directly), and the
//! primary-key read behind `GET /orders/{id}`.

use std::sync::Arc;
use std::time::Duration;

use command_service::commands::{Command, CommandContext, CommandRequest, Commands};
use command_service::domain::order::{Lines, NewLine, PlaceOrder};
use command_service::domain::values::{
    Currency, CustomerId, ProductName, Quantity, Sku, UnitPrice,
};
use command_service::relay::CommitSignal;
use command_service::store::idempotency::Recorded;
use platform::db::connections::Connections;
use sqlx::PgPool;
use tokio::time::Instant;
use uuid::Uuid;

use crate::load::{Run, collect, random_reads};
use crate::stats::histogram;

fn place_order(customer: Uuid) -> anyhow::Result<PlaceOrder> {
    let line = |sku: &str, name: &str, quantity: i64, price: i64| -> anyhow::Result<NewLine> {
        Ok(NewLine {
            sku: Sku::parse(sku)?,
            name: ProductName::parse(name)?,
            quantity: Quantity::parse(quantity)?,
            unit_price: UnitPrice::parse(price)?,
        })
    };
    Ok(PlaceOrder {
        customer_id: CustomerId(customer),
        currency: Currency::parse("EUR")?,
        lines: Lines::new(vec![
            line("BENCH-1", "Widget", 2, 1250)?,
            line("BENCH-2", "Gadget", 1, 990)?,
        ])
        .map_err(|e| anyhow::anyhow!("{e:?}"))?,
        shipping_address: None,
    })
}

/// `connections` workers committing the create-order transaction back to back.
pub async fn create_order_transactions(
    pool: &Connections,
    customers: &[Uuid],
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Run> {
    let commands = Commands::new(
        pool.clone(),
        CommitSignal::default(),
        Duration::from_secs(3600),
    );
    let customers: Arc<[Uuid]> = customers.into();
    let start = Instant::now();
    let deadline = start + duration;
    let workers: Vec<_> = (0..connections)
        .map(|worker| {
            let (commands, customers) = (commands.clone(), customers.clone());
            tokio::spawn(async move {
                let (mut latency, mut errors) = (histogram(), 0u64);
                let mut i = worker;
                while Instant::now() < deadline {
                    let command = place_order(customers[i % customers.len()])?;
                    i += connections;
                    let request = CommandRequest {
                        command: Command::PlaceOrder(command),
                        expected_versions: None,
                        ctx: CommandContext {
                            correlation_id: "bench".into(),
                            causation_id: "bench".into(),
                            traceparent: None,
                            now: chrono::Utc::now(),
                            caller: platform::auth::Caller::Admin,
                        },
                        idempotency: None,
                    };
                    let sent = Instant::now();
                    let render = |_: &_| Recorded {
                        status: 201,
                        headers: Vec::new(),
                        body: Vec::new(),
                    };
                    match commands.execute(request, render).await {
                        Ok(_) => {
                            latency.record(sent.elapsed().as_micros() as u64).ok();
                        }
                        Err(_) => errors += 1,
                    }
                }
                anyhow::Ok((latency, errors))
            })
        })
        .collect();
    collect(workers, start).await
}

/// `connections` workers reading order documents by primary key back to back.
pub async fn primary_key_reads(
    pool: &PgPool,
    orders: &[Uuid],
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Run> {
    let pool = pool.clone();
    random_reads(orders, connections, duration, move |id| {
        let pool = pool.clone();
        async move {
            let read: Result<Option<String>, _> =
                sqlx::query_scalar("SELECT body::text FROM views.order_detail WHERE order_id = $1")
                    .bind(id)
                    .fetch_optional(&pool)
                    .await;
            matches!(read, Ok(Some(_)))
        }
    })
    .await
}

/// `connections` connections to `url`, like the services' (statement timeout).
pub fn settings(url: &str, connections: usize) -> anyhow::Result<platform::db::DbSettings> {
    Ok(platform::db::DbSettings {
        url: url.parse().map_err(|e: String| anyhow::anyhow!(e))?,
        max_connections: u32::try_from(connections).unwrap_or(64),
        min_connections: u32::try_from(connections).unwrap_or(64),
        statement_timeout: Duration::from_secs(10),
        acquire_timeout: Duration::from_secs(30),
        search_path: None,
        synchronous_commit: true,
    })
}

/// A sqlx pool of `connections` connections to `url` (see [`settings`]).
pub async fn pool(url: &str, connections: usize) -> anyhow::Result<PgPool> {
    platform::db::connect(&settings(url, connections)?).await
}
