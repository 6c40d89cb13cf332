//! The command service: validates task-based commands against the write model, commits state
//! and events in one PostgreSQL transaction (the event log is the outbox), and relays the events
//! to Kafka.
//!
//! `main.rs` only loads [`config::Config`], initialises telemetry and runs
//! [`startup::Application`]; tests and the benchmark start the same application on port 0.

pub mod commands;
pub mod config;
pub mod domain;
pub mod http;
pub mod relay;
pub mod startup;
pub mod store;

pub use config::Config;
pub use startup::Application;
