//! The query string of a request, parsed parameter by parameter into domain values with
//! field-level errors (one 422 naming every invalid parameter) instead of serde's one-line
//! rejections. Handlers take [`QueryParams`] as an extractor; a service adds the parameters of
//! its own vocabulary with an extension trait.
//!
//! The query string stays a map read by name rather than a serde struct: a struct would answer
//! a repeated parameter with serde's 400 and lose the field-level messages. Parameters an
//! operation does not declare are refused by the edge ([`crate::http::edge`]).

use std::collections::HashMap;
use std::ops::RangeInclusive;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use uuid::Uuid;

use crate::problem::{FieldErrors, Problem};

/// The query string of one request, with every invalid parameter recorded as it is parsed.
#[derive(Debug, Default)]
pub struct QueryParams {
    query: HashMap<String, String>,
    errors: FieldErrors,
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = QueryRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(query) = Query::from_request_parts(parts, state).await?;
        Ok(QueryParams {
            query,
            errors: FieldErrors::default(),
        })
    }
}

impl QueryParams {
    /// The parameters of `query` (for tests and callers that hold the map already).
    pub fn from_map(query: HashMap<String, String>) -> Self {
        QueryParams {
            query,
            errors: FieldErrors::default(),
        }
    }

    /// `name` parsed by `parse`; `None` when absent or invalid (recorded).
    pub fn field<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let raw = self.query.get(name)?;
        self.errors.check(|| name.to_owned(), parse(raw))
    }

    /// Like [`QueryParams::field`], but an empty value (a form's "any") counts as absent.
    pub fn non_empty<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        if self.query.get(name).is_some_and(String::is_empty) {
            return None;
        }
        self.field(name, parse)
    }

    /// An integer in `range`.
    pub fn integer(&mut self, name: &str, range: RangeInclusive<i64>) -> Option<i64> {
        self.field(name, |raw| {
            let (min, max) = (range.start(), range.end());
            raw.parse::<i64>()
                .ok()
                .filter(|value| range.contains(value))
                .ok_or_else(|| format!("must be an integer from {min} to {max}"))
        })
    }

    /// One word of a vocabulary (`all`, written by `name_of`); empty is none.
    pub fn one_of<T: Copy>(
        &mut self,
        name: &str,
        all: &[T],
        name_of: fn(T) -> &'static str,
    ) -> Option<T> {
        self.non_empty(name, |raw| {
            all.iter()
                .copied()
                .find(|value| name_of(*value) == raw)
                .ok_or_else(|| {
                    let names: Vec<&str> = all.iter().map(|value| name_of(*value)).collect();
                    format!("must be one of {}", names.join(", "))
                })
        })
    }

    /// A UUID.
    pub fn uuid(&mut self, name: &str) -> Option<Uuid> {
        self.field(name, |raw| {
            Uuid::try_parse(raw).map_err(|_| "must be a UUID".to_owned())
        })
    }

    /// Records an error that involves several parameters.
    pub fn refuse(&mut self, name: &str, message: &str) {
        self.errors.refuse(name, message);
    }

    /// `Ok` when every parameter was valid, otherwise a 422 listing them.
    pub fn finish(self) -> Result<(), Problem> {
        self.errors.finish(Some(()))
    }
}
