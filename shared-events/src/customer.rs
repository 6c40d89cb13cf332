//! Events emitted by the customer aggregate. Their partition key is the customer id, like the
//! customer's orders, so a consumer sees a customer's events and their orders' events in one
//! order.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `CustomerRegistered` v1: a new customer exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CustomerRegistered {
    /// The new customer's id.
    pub customer_id: Uuid,
    /// Full name as given (1–200 characters).
    pub name: String,
    /// Email address as given; unique across customers, compared case-insensitively.
    pub email: String,
}

/// `CustomerRenamed` v1: the customer's name changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CustomerRenamed {
    /// The customer.
    pub customer_id: Uuid,
    /// The new name.
    pub name: String,
}

/// `CustomerEmailChanged` v1: the customer's email address changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CustomerEmailChanged {
    /// The customer.
    pub customer_id: Uuid,
    /// The new address.
    pub email: String,
}
