//! Turning loosely typed request fields into domain values while collecting every invalid
//! field, so one 422 lists all of them.

use platform::problem::FieldError;

use crate::domain::values::Invalid;

/// The field errors found so far.
#[derive(Debug, Default)]
pub struct Fields(pub Vec<FieldError>);

impl Fields {
    /// `parsed`'s value, or `None` after recording its error under `field`.
    pub fn check<T>(
        &mut self,
        field: impl FnOnce() -> String,
        parsed: Result<T, Invalid>,
    ) -> Option<T> {
        parsed
            .map_err(|Invalid(message)| self.0.push(FieldError::new(field(), message)))
            .ok()
    }

    /// The finished value when no field was invalid, otherwise every field error.
    pub fn finish<T>(self, value: Option<T>) -> Result<T, Vec<FieldError>> {
        match value {
            Some(value) if self.0.is_empty() => Ok(value),
            _ => Err(self.0),
        }
    }
}
