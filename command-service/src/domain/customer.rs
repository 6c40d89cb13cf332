//! The customer aggregate: registration, renaming and changing the email address.
//!
//! Email uniqueness across customers is a rule over all customers, not one; the database's
//! unique index enforces it and the command layer reports it.

use shared_events::DomainEvent;
use shared_events::customer::{CustomerEmailChanged, CustomerRegistered, CustomerRenamed};

use super::values::{CustomerId, EmailAddress, PersonName};

/// "Register a customer with this name and email."
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterCustomer {
    /// Full name.
    pub name: PersonName,
    /// Email address, unique across customers.
    pub email: EmailAddress,
}

/// The current state of one customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    /// Its id.
    pub id: CustomerId,
    /// Full name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// Number of events applied.
    pub version: i64,
}

impl Customer {
    /// Decides registering a new customer.
    pub fn register(id: CustomerId, command: &RegisterCustomer) -> Vec<DomainEvent> {
        vec![DomainEvent::CustomerRegistered(CustomerRegistered {
            customer_id: id.0,
            name: command.name.as_str().to_owned(),
            email: command.email.as_str().to_owned(),
        })]
    }

    /// Decides renaming. Always allowed.
    pub fn rename(&self, name: &PersonName) -> Vec<DomainEvent> {
        vec![DomainEvent::CustomerRenamed(CustomerRenamed {
            customer_id: self.id.0,
            name: name.as_str().to_owned(),
        })]
    }

    /// Decides changing the email address. Always allowed here; uniqueness is checked by the
    /// store.
    pub fn change_email(&self, email: &EmailAddress) -> Vec<DomainEvent> {
        vec![DomainEvent::CustomerEmailChanged(CustomerEmailChanged {
            customer_id: self.id.0,
            email: email.as_str().to_owned(),
        })]
    }

    /// The state after `events`, starting from `state` (`None` before registration). Events of
    /// other aggregates leave it unchanged.
    pub fn apply_all<'a>(
        mut state: Option<Customer>,
        events: impl IntoIterator<Item = &'a DomainEvent>,
    ) -> Option<Customer> {
        for event in events {
            state = match (state, event) {
                (None, DomainEvent::CustomerRegistered(e)) => Some(Customer {
                    id: CustomerId(e.customer_id),
                    name: e.name.clone(),
                    email: e.email.clone(),
                    version: 1,
                }),
                (Some(mut c), DomainEvent::CustomerRenamed(e)) if e.customer_id == c.id.0 => {
                    c.name = e.name.clone();
                    c.version += 1;
                    Some(c)
                }
                (Some(mut c), DomainEvent::CustomerEmailChanged(e)) if e.customer_id == c.id.0 => {
                    c.email = e.email.clone();
                    c.version += 1;
                    Some(c)
                }
                (state, _) => state,
            };
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn every_command_is_one_event_and_one_version() {
        let command = RegisterCustomer {
            name: PersonName::parse("Ada Lovelace").unwrap(),
            email: EmailAddress::parse("ada@example.com").unwrap(),
        };
        let mut history = Customer::register(CustomerId(Uuid::now_v7()), &command);
        let customer = Customer::apply_all(None, &history).unwrap();
        assert_eq!(
            (customer.name.as_str(), customer.version),
            ("Ada Lovelace", 1)
        );

        let renamed = customer.rename(&PersonName::parse("Ada King").unwrap());
        history.extend(renamed.clone());
        let customer = Customer::apply_all(Some(customer), &renamed).unwrap();
        let changed = customer.change_email(&EmailAddress::parse("ada@king.example").unwrap());
        history.extend(changed.clone());
        let customer = Customer::apply_all(Some(customer), &changed).unwrap();

        assert_eq!(
            (
                customer.name.as_str(),
                customer.email.as_str(),
                customer.version
            ),
            ("Ada King", "ada@king.example", 3)
        );
        assert_eq!(Customer::apply_all(None, &history), Some(customer));
    }
}
