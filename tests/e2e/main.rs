//! End-to-end tests of the order platform against real PostgreSQL and a real Kafka broker.
//! One test binary for the whole workspace (each extra binary is another link on 2 cores).

// A failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

mod auth;
mod bad_input;
mod concurrency;
mod contracts;
mod customers;
mod dead_letters;
mod dropped;
mod edge;
mod failover;
mod health;
mod idempotency;
mod lifecycle;
mod ordering;
mod orders;
mod projector;
mod read_your_writes;
mod rebuild;
mod relay;
mod secrets;
mod streams;
mod strict_reads;
mod verify;
mod views;
