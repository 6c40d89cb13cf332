//! The query service: consumes order events from Kafka into denormalized PostgreSQL views, one
//! per screen, and serves them over REST.
//!
//! `main.rs` only loads [`config::Config`], initialises telemetry and runs
//! [`startup::Application`]; tests and the benchmark start the same application on port 0.

pub mod changes;
pub mod config;
pub mod consumer;
pub mod http;
pub mod projections;
pub mod startup;
pub mod tickets;
pub mod verify;

pub use config::Config;
pub use startup::Application;
