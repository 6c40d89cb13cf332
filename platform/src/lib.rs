//! The ground both services stand on: configuration from the environment, telemetry, RFC 9457
//! problem responses, the HTTP edge (JSON extraction, limits, request ids), PostgreSQL and Kafka
//! connections, and shutdown on SIGTERM.
//!
//! Nothing here knows about orders or customers; the domain lives in the services.

pub mod auth;
pub mod causes;
pub mod cli;
pub mod config;
pub mod db;
pub mod http;
pub mod kafka;
pub mod metrics;
pub mod openapi;
pub mod params;
pub mod peer;
pub mod problem;
pub mod serve;
pub mod shutdown;
pub mod telemetry;
