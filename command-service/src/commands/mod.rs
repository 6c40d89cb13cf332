//! The application layer: one transaction per command. It loads what the command needs, lets
//! the domain decide, and saves the new state together with the events and, when the request
//! carried an `Idempotency-Key`, the response to replay.
//!
//! What must be atomic, and why: the state change, its events (with their outbox rows) and the
//! idempotency record commit together or not at all. An accepted command can therefore never
//! lose its events, an event never describes a change that did not happen, and a key is
//! recorded exactly when its command took effect.

mod customers;
mod orders;

use std::time::Duration;

use chrono::{DateTime, Utc};
use platform::auth::Caller;
use platform::db::connections::Connections;
use shared_events::{AggregateType, DomainEvent, EventEnvelope};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::domain::customer::RegisterCustomer;
use crate::domain::order::{NewLine, OrderRuleViolation, OrderStatus, PlaceOrder, Shipment};
use crate::domain::values::{CustomerId, EmailAddress, OrderId, PersonName, Sku, Text};
use crate::relay::CommitSignal;
use crate::store;
use crate::store::idempotency::Recorded;

/// Facts about the request a command came in, carried into its events.
#[derive(Debug, Clone)]
pub struct CommandContext {
    /// Shared by everything one user action causes (trace id or request id).
    pub correlation_id: String,
    /// Id of this command (the request id).
    pub causation_id: String,
    /// W3C trace context to forward with the events.
    pub traceparent: Option<String>,
    /// When the command is accepted; every event and timestamp of the command carries it.
    pub now: DateTime<Utc>,
    /// Who sent it: a customer may act only on their own customer and orders.
    pub caller: Caller,
}

impl CommandContext {
    /// The context with `now` read again. Commands on an existing aggregate call this once they
    /// hold its lock: a command that waited for the lock must not carry an earlier time than the
    /// one it waited for.
    pub fn after_lock(&self) -> CommandContext {
        CommandContext {
            now: chrono::SubsecRound::trunc_subsecs(Utc::now(), 6).max(self.now),
            ..self.clone()
        }
    }
}

/// Every command the service accepts.
#[derive(Debug, Clone)]
pub enum Command {
    /// `POST /customers`.
    RegisterCustomer(RegisterCustomer),
    /// `POST /customers/{id}/rename`.
    RenameCustomer(CustomerId, PersonName),
    /// `POST /customers/{id}/change-email`.
    ChangeCustomerEmail(CustomerId, EmailAddress),
    /// `POST /orders`.
    PlaceOrder(PlaceOrder),
    /// `POST /orders/{id}/items`.
    AddOrderItem(OrderId, NewLine),
    /// `DELETE /orders/{id}/items/{sku}`.
    RemoveOrderItem(OrderId, Sku),
    /// `POST /orders/{id}/confirm`.
    ConfirmOrder(OrderId),
    /// `POST /orders/{id}/ship`.
    ShipOrder(OrderId, Shipment),
    /// `POST /orders/{id}/deliver`.
    DeliverOrder(OrderId),
    /// `POST /orders/{id}/cancel`.
    CancelOrder(OrderId, Text),
}

impl Command {
    /// What the command does, when only the back office may do it: shipping and delivery are
    /// the warehouse's and the carrier's to report, not the customer's.
    fn admin_only(&self) -> Option<&'static str> {
        match self {
            Command::ShipOrder(..) => Some("ship an order"),
            Command::DeliverOrder(_) => Some("mark an order delivered"),
            _ => None,
        }
    }

    /// Whether the command reads and writes in a single statement. PostgreSQL runs every
    /// statement atomically, so such a command needs no transaction block of its own: without an
    /// idempotency key to lock and record, it is sent without `BEGIN` and `COMMIT`, one round
    /// trip instead of three. A command listed here must stay one statement.
    fn is_one_statement(&self) -> bool {
        matches!(self, Command::PlaceOrder(_))
    }
}

/// A command with its preconditions and request facts.
#[derive(Debug, Clone)]
pub struct CommandRequest {
    /// What to do.
    pub command: Command,
    /// `If-Match`: the versions the client expects the aggregate to be at; `None` for any.
    pub expected_versions: Option<Vec<i64>>,
    /// Correlation and time.
    pub ctx: CommandContext,
    /// The `Idempotency-Key` and the request's fingerprint, when the client sent a key.
    pub idempotency: Option<IdempotencyKey>,
}

/// An `Idempotency-Key` with the fingerprint of the request that carries it.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    /// The key as sent.
    pub key: String,
    /// Method, path, preconditions and body of the request; a retry must match it exactly.
    pub fingerprint: Vec<u8>,
}

/// A command that was accepted and committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// The aggregate it changed or created.
    pub aggregate_id: Uuid,
    /// The aggregate's version after it.
    pub version: i64,
}

impl Accepted {
    /// The aggregate at `version_before` plus `events`.
    fn after(aggregate_id: Uuid, version_before: i64, events: &[DomainEvent]) -> Self {
        Accepted {
            aggregate_id,
            version: version_before + i64::try_from(events.len()).unwrap_or(i64::MAX),
        }
    }
}

/// How a request was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The command ran now; this is its response.
    Executed(Recorded),
    /// The key was used before with the same request; this is the first response again.
    Replayed(Recorded),
}

/// Why a command was not accepted. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// No aggregate with this id.
    #[error("no {} with id {id}", aggregate.as_str())]
    NotFound {
        /// Its kind.
        aggregate: AggregateType,
        /// The id asked for.
        id: Uuid,
    },
    /// `If-Match` named other versions than the current one.
    #[error("expected version {expected:?}, but it is at {current}")]
    VersionMismatch {
        /// What the client sent.
        expected: Vec<i64>,
        /// The aggregate's current version.
        current: i64,
    },
    /// The order's state does not allow the command.
    #[error("{violation}")]
    OrderRule {
        /// The rule.
        violation: OrderRuleViolation,
        /// The order's status when the command was refused.
        status: OrderStatus,
        /// Its version then.
        version: i64,
    },
    /// The order names a customer that is not registered (or one the caller may not act for).
    #[error("no customer with id {0}")]
    UnknownCustomer(Uuid),
    /// The customer the caller's token names is registered already.
    #[error("the customer the token names is registered already")]
    AlreadyRegistered,
    /// The command is for the back office; the caller is a customer.
    #[error("only an administrator may {0}")]
    AdminOnly(&'static str),
    /// Another customer has this email address.
    #[error("the email address is taken by another customer")]
    EmailTaken,
    /// Another transaction wrote the same aggregate version first (caught by the database).
    #[error("the aggregate was changed concurrently")]
    ConcurrentModification,
    /// A request with this `Idempotency-Key` is still running.
    #[error("a request with this Idempotency-Key is still in progress")]
    IdempotencyKeyInUse,
    /// This `Idempotency-Key` was used with another request.
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyKeyReused,
    /// Anything the caller did not cause (database down, bug); logged, answered with a bare 500.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for CommandError {
    fn from(error: sqlx::Error) -> Self {
        CommandError::Unexpected(error.into())
    }
}

/// Turns the violation of a named constraint into the refusal it stands for, at the call that
/// expects it (realworld-axum-sqlx's `on_constraint`); any other error passes unchanged.
trait OnConstraint<T> {
    fn on_constraint(
        self,
        constraint: &str,
        refusal: impl FnOnce() -> CommandError,
    ) -> Result<T, CommandError>;
}

impl<T, E: Into<CommandError>> OnConstraint<T> for Result<T, E> {
    fn on_constraint(
        self,
        constraint: &str,
        refusal: impl FnOnce() -> CommandError,
    ) -> Result<T, CommandError> {
        self.map_err(|error| match error.into() {
            CommandError::Unexpected(error) if store::violates(&error, constraint) => refusal(),
            other => other,
        })
    }
}

/// The command service's handle on its database and relay.
#[derive(Debug, Clone)]
pub struct Commands {
    connections: Connections,
    committed: CommitSignal,
    idempotency_ttl: Duration,
}

impl Commands {
    /// Commands on `connections`, ringing `committed` after each commit so the relay publishes
    /// at once; idempotency records are kept for `idempotency_ttl`.
    pub fn new(
        connections: Connections,
        committed: CommitSignal,
        idempotency_ttl: Duration,
    ) -> Self {
        Commands {
            connections,
            committed,
            idempotency_ttl,
        }
    }

    /// Runs `request` in one transaction and answers with `render(accepted)`, or replays the
    /// recorded answer of an earlier request with the same idempotency key.
    pub async fn execute(
        &self,
        request: CommandRequest,
        render: impl FnOnce(&Accepted) -> Recorded,
    ) -> Result<Outcome, CommandError> {
        if let Some(action) = request.command.admin_only() {
            request
                .ctx
                .caller
                .require_admin()
                .map_err(|_| CommandError::AdminOnly(action))?;
        }
        let mut lent = self.connections.acquire().await?;
        if request.idempotency.is_none() && request.command.is_one_statement() {
            let outcome = dispatch(lent.connection(), &request).await;
            // Outside a transaction the connection is clean whatever the statement's outcome,
            // unless it failed for a reason of its own.
            if !matches!(outcome, Err(CommandError::Unexpected(_))) {
                lent.release();
            }
            let response = render(&outcome?);
            self.committed.ring();
            return Ok(Outcome::Executed(response));
        }
        let mut tx = lent.connection().begin().await?;
        // Whatever fails before the transaction ended drops `lent`, which closes the connection:
        // PostgreSQL then rolls back what was open.
        match decide(&mut tx, &request, render, self.idempotency_ttl).await {
            Ok(Outcome::Executed(response)) => {
                tx.commit().await?;
                lent.release();
                self.committed.ring();
                Ok(Outcome::Executed(response))
            }
            outcome => {
                // Roll back before answering: until then the transaction holds the key's
                // advisory lock and the aggregate's row lock, and a retry sent at once would be
                // told that the key is in use (found by scripts/fuzz).
                match tx.rollback().await {
                    Ok(()) => lent.release(),
                    Err(error) => {
                        tracing::warn!(%error, "rolling back a refused or replayed command failed");
                    }
                }
                outcome
            }
        }
    }

    /// The order as the write model has it now (a strict read), in a read-only snapshot.
    pub async fn current_order(
        &self,
        id: OrderId,
    ) -> Result<Option<crate::domain::order::Order>, CommandError> {
        let mut lent = self.connections.acquire().await?;
        let order = async {
            let mut tx = lent.connection().begin().await?;
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
            let order = store::orders::load_current(&mut tx, id).await?;
            tx.rollback().await?;
            anyhow::Ok(order)
        }
        .await;
        Ok(lent.settle(order)?)
    }

    /// The customer as the write model has them now (a strict read).
    pub async fn current_customer(
        &self,
        id: CustomerId,
    ) -> Result<Option<crate::domain::customer::Customer>, CommandError> {
        let mut lent = self.connections.acquire().await?;
        let customer = store::customers::load_current(lent.connection(), id).await;
        Ok(lent.settle(customer)?)
    }

    /// The audit trail of one aggregate: its events above `after_version`, oldest first.
    pub async fn history(
        &self,
        aggregate_type: AggregateType,
        id: Uuid,
        after_version: i64,
        limit: i64,
    ) -> Result<Vec<EventEnvelope>, CommandError> {
        let history =
            store::event_log::history(&self.connections, aggregate_type, id, after_version, limit);
        Ok(history.await?)
    }
}

/// Everything of [`Commands::execute`] inside its transaction but the commit: the key's lock
/// and record, the command, and the record of its answer.
async fn decide(
    tx: &mut PgConnection,
    request: &CommandRequest,
    render: impl FnOnce(&Accepted) -> Recorded,
    idempotency_ttl: Duration,
) -> Result<Outcome, CommandError> {
    if let Some(idempotency) = &request.idempotency {
        if !store::idempotency::try_lock(tx, &idempotency.key).await? {
            return Err(CommandError::IdempotencyKeyInUse);
        }
        if let Some(record) = store::idempotency::find(tx, &idempotency.key).await? {
            return if record.request == idempotency.fingerprint {
                Ok(Outcome::Replayed(record.response))
            } else {
                Err(CommandError::IdempotencyKeyReused)
            };
        }
    }
    let accepted = dispatch(tx, request).await?;
    let response = render(&accepted);
    if let Some(idempotency) = &request.idempotency {
        store::idempotency::record(
            tx,
            &idempotency.key,
            &idempotency.fingerprint,
            &response,
            idempotency_ttl,
        )
        .await?;
    }
    Ok(Outcome::Executed(response))
}

async fn dispatch(
    tx: &mut PgConnection,
    request: &CommandRequest,
) -> Result<Accepted, CommandError> {
    let expected = request.expected_versions.as_deref();
    let ctx = &request.ctx;
    match &request.command {
        Command::RegisterCustomer(command) => customers::register(tx, command, ctx).await,
        Command::RenameCustomer(id, name) => {
            customers::change(tx, *id, expected, ctx, |c| c.rename(name)).await
        }
        Command::ChangeCustomerEmail(id, email) => {
            customers::change(tx, *id, expected, ctx, |c| c.change_email(email)).await
        }
        Command::PlaceOrder(command) => orders::place(tx, command, ctx).await,
        Command::AddOrderItem(id, line) => {
            orders::change(tx, *id, expected, ctx, |o| o.add_item(line)).await
        }
        Command::RemoveOrderItem(id, sku) => {
            orders::change(tx, *id, expected, ctx, |o| o.remove_item(sku)).await
        }
        Command::ConfirmOrder(id) => orders::change(tx, *id, expected, ctx, |o| o.confirm()).await,
        Command::ShipOrder(id, shipment) => {
            orders::change(tx, *id, expected, ctx, |o| o.ship(shipment)).await
        }
        Command::DeliverOrder(id) => orders::change(tx, *id, expected, ctx, |o| o.deliver()).await,
        Command::CancelOrder(id, reason) => {
            orders::change(tx, *id, expected, ctx, |o| o.cancel(reason)).await
        }
    }
}

/// Refuses the command when the client expected other versions than `current`.
fn check_expected(expected: Option<&[i64]>, current: i64) -> Result<(), CommandError> {
    match expected {
        Some(versions) if !versions.contains(&current) => Err(CommandError::VersionMismatch {
            expected: versions.to_vec(),
            current,
        }),
        _ => Ok(()),
    }
}

/// Appends the events of one command on one aggregate, numbered from `version_before + 1`,
/// and returns the accepted version.
async fn append(
    tx: &mut PgConnection,
    aggregate_id: Uuid,
    version_before: i64,
    events: &[DomainEvent],
    ctx: &CommandContext,
) -> Result<Accepted, CommandError> {
    store::event_log::append(
        tx,
        &envelopes(version_before, events, ctx),
        ctx.traceparent.as_deref(),
    )
    .await
    .on_constraint(store::event_log::ONE_EVENT_PER_VERSION, || {
        CommandError::ConcurrentModification
    })?;
    Ok(Accepted::after(aggregate_id, version_before, events))
}

/// The envelopes of one command's events on one aggregate, numbered from `version_before + 1`.
fn envelopes(
    version_before: i64,
    events: &[DomainEvent],
    ctx: &CommandContext,
) -> Vec<EventEnvelope> {
    (version_before + 1..)
        .zip(events)
        .map(|(version, event)| {
            EventEnvelope::new(event, version, ctx.now)
                .caused_by(&ctx.correlation_id, &ctx.causation_id)
        })
        .collect()
}
