//! The consistency token: how a client of the command service asks the query service to wait
//! until its write is visible (read-your-writes).
//!
//! A token names one aggregate and the version a command left it at. Clients treat it as opaque
//! text; only the two services parse it.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// "The views include version `version` of aggregate `aggregate_id`."
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConsistencyToken {
    /// The aggregate the command changed.
    pub aggregate_id: Uuid,
    /// The version the command left it at.
    pub version: i64,
}

/// The text is not a token this build issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid consistency token")]
pub struct InvalidConsistencyToken;

const PREFIX: &str = "ct1.";

impl fmt::Display for ConsistencyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}.{}", self.aggregate_id.simple(), self.version)
    }
}

impl FromStr for ConsistencyToken {
    type Err = InvalidConsistencyToken;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s.strip_prefix(PREFIX).ok_or(InvalidConsistencyToken)?;
        let (id, version) = rest.split_once('.').ok_or(InvalidConsistencyToken)?;
        let aggregate_id = Uuid::try_parse(id).map_err(|_| InvalidConsistencyToken)?;
        let version: i64 = version.parse().map_err(|_| InvalidConsistencyToken)?;
        if version < 1 {
            return Err(InvalidConsistencyToken);
        }
        Ok(ConsistencyToken {
            aggregate_id,
            version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn display_then_parse_gives_the_same_token(id in any::<u128>(), version in 1..i64::MAX) {
            let token = ConsistencyToken { aggregate_id: Uuid::from_u128(id), version };
            prop_assert_eq!(token.to_string().parse::<ConsistencyToken>(), Ok(token));
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".*") {
            let _ = text.parse::<ConsistencyToken>();
        }
    }

    #[test]
    fn refuses_foreign_and_nonsense_tokens() {
        for bad in [
            "",
            "ct1.",
            "ct1.zzz.1",
            "ct2.0190a3c6f2c47c4a8f3a2b1c0d9e8f7a.1",
            "ct1.0190a3c6f2c47c4a8f3a2b1c0d9e8f7a.0",
            "ct1.0190a3c6f2c47c4a8f3a2b1c0d9e8f7a.-3",
        ] {
            assert_eq!(
                bad.parse::<ConsistencyToken>(),
                Err(InvalidConsistencyToken),
                "{bad}"
            );
        }
    }
}
