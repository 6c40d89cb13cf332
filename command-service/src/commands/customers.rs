//! Customer commands: register a new customer, or change one under its row lock.

use platform::auth::Caller;
use shared_events::{AggregateType, DomainEvent};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Accepted, CommandContext, CommandError, OnConstraint, append, check_expected};
use crate::domain::customer::{Customer, RegisterCustomer};
use crate::domain::values::CustomerId;
use crate::store;

/// Registers a new customer; 409 when the email address is taken.
pub async fn register(
    tx: &mut PgConnection,
    command: &RegisterCustomer,
    ctx: &CommandContext,
) -> Result<Accepted, CommandError> {
    // A customer registers themselves, under the id their token names; the back office
    // registers customers under new ids.
    let id = match ctx.caller {
        Caller::Customer(id) => {
            if store::customers::exists(tx, CustomerId(id)).await? {
                return Err(CommandError::AlreadyRegistered);
            }
            CustomerId(id)
        }
        Caller::Admin => CustomerId(Uuid::now_v7()),
    };
    let events = Customer::register(id, command);
    let customer = Customer::apply_all(None, &events)
        .ok_or_else(|| anyhow::anyhow!("registering {id} produced no customer"))?;
    store::customers::insert(tx, &customer, ctx.now)
        .await
        .on_constraint(store::customers::EMAIL_UNIQUE, || CommandError::EmailTaken)
        // Registered meanwhile by a concurrent request under the token's id.
        .on_constraint(store::customers::PRIMARY_KEY, || {
            CommandError::AlreadyRegistered
        })?;
    append(tx, id.0, 0, &events, ctx).await
}

/// Loads customer `id` (locking it), checks `If-Match`, lets `decide` produce the events, and
/// saves the result.
pub async fn change(
    tx: &mut PgConnection,
    id: CustomerId,
    expected: Option<&[i64]>,
    ctx: &CommandContext,
    decide: impl FnOnce(&Customer) -> Vec<DomainEvent>,
) -> Result<Accepted, CommandError> {
    let customer = store::customers::load_for_update(tx, id)
        .await?
        .filter(|_| ctx.caller.acts_for(id.0))
        .ok_or(CommandError::NotFound {
            aggregate: AggregateType::Customer,
            id: id.0,
        })?;
    check_expected(expected, customer.version)?;
    let ctx = &ctx.after_lock();
    let events = decide(&customer);
    let after = Customer::apply_all(Some(customer.clone()), &events)
        .ok_or_else(|| anyhow::anyhow!("customer {id} vanished while applying its events"))?;
    let updated = store::customers::update(tx, customer.version, &after, ctx.now)
        .await
        .on_constraint(store::customers::EMAIL_UNIQUE, || CommandError::EmailTaken)?;
    if !updated {
        return Err(CommandError::ConcurrentModification);
    }
    append(tx, id.0, customer.version, &events, ctx).await
}
