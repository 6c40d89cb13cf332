//! The write model: aggregates, the commands they accept and the rules they enforce.
//!
//! Pure code: no database, no HTTP, no clock (callers pass `now`). Input arrives here already
//! parsed into the value types of [`values`], so an invalid SKU or quantity cannot reach a rule.

pub mod customer;
pub mod order;
pub mod values;
