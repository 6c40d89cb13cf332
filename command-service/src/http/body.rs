//! Request bodies become domain values in one way: serde reads the JSON loosely (strings, wide
//! integers), then [`Body::parse`] turns each field into its domain type through the domain's
//! own constructors, recording every invalid field, so one 422 names all of them.

use platform::problem::{FieldErrors, Problem};
use serde::de::DeserializeOwned;

use super::request::CommandInput;

/// A command's request body.
pub trait Body: DeserializeOwned {
    /// What the body means to the domain.
    type Value;

    /// The value, or `None` when a field was invalid (recorded in `fields`).
    fn parse(self, fields: &mut FieldErrors) -> Option<Self::Value>;
}

impl CommandInput {
    /// The body as its domain value: 400 when it is not JSON of the body's shape, 422 naming
    /// every invalid field.
    pub fn parse<B: Body>(&self) -> Result<B::Value, Problem> {
        let body: B = self.json()?;
        let mut fields = FieldErrors::default();
        let value = body.parse(&mut fields);
        fields.finish(value)
    }
}
