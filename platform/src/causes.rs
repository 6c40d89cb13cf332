//! An error and its causes on one line, for logs and for what an operator reads later (a dead
//! letter's error, a failed rebuild).

use std::error::Error;
use std::fmt;

/// Displays an error's chain as `outer: cause: …`, like anyhow's `{:#}`, but leaves out a cause
/// whose text its wrapper already ends with: sqlx's `error returned from database: <message>`
/// is otherwise followed by the database's `<message>` a second time.
#[derive(Debug)]
pub struct Causes<'a>(pub &'a (dyn Error + Send + Sync + 'static));

impl<'a> From<&'a anyhow::Error> for Causes<'a> {
    fn from(error: &'a anyhow::Error) -> Self {
        Causes(error.as_ref())
    }
}

impl fmt::Display for Causes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut said = self.0.to_string();
        f.write_str(&said)?;
        let mut cause = self.0.source();
        while let Some(error) = cause {
            let text = error.to_string();
            if !said.ends_with(&text) {
                write!(f, ": {text}")?;
                said = text;
            }
            cause = error.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Database;
    impl fmt::Display for Database {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("violates check constraint \"c\"")
        }
    }
    impl Error for Database {}

    /// Like `sqlx::Error::Database`: quotes its source and returns it.
    #[derive(Debug)]
    struct Quoting(Database);
    impl fmt::Display for Quoting {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "error returned from database: {}", self.0)
        }
    }
    impl Error for Quoting {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_its_wrapper_quoted_is_said_once() {
        let error = anyhow::Error::new(Quoting(Database)).context("save order details");
        assert_eq!(
            format!("{error:#}"),
            "save order details: error returned from database: violates check constraint \"c\": \
             violates check constraint \"c\""
        );
        assert_eq!(
            Causes::from(&error).to_string(),
            "save order details: error returned from database: violates check constraint \"c\""
        );
    }

    #[test]
    fn other_chains_read_as_anyhow_says_them() {
        let error = anyhow::anyhow!("connection reset")
            .context("read the offsets")
            .context("apply a batch");
        assert_eq!(
            Causes::from(&error).to_string(),
            "apply a batch: read the offsets: connection reset"
        );
        assert_eq!(Causes::from(&error).to_string(), format!("{error:#}"));
    }
}
