//! Reading settings from environment variables.
//!
//! Every setting has a default for the local stack. A malformed value stops start-up with one
//! line naming the variable and what is wrong with it; secrets never appear in that line.

use std::fmt;
use std::str::FromStr;

/// A setting that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("configuration error in {name}: {reason}")]
pub struct ConfigError {
    /// The environment variable.
    pub name: String,
    /// What is wrong with its value.
    pub reason: String,
}

/// Reads `name` from the environment, or `default` when it is unset or empty.
pub fn var<T>(name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    Ok(var_opt(name)?.unwrap_or(default))
}

/// Reads `name` from the environment; `None` when it is unset or empty.
pub fn var_opt<T>(name: &str) -> Result<Option<T>, ConfigError>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    match std::env::var(name) {
        Ok(raw) if raw.trim().is_empty() => Ok(None),
        Ok(raw) => raw
            .trim()
            .parse()
            .map(Some)
            .map_err(|e: T::Err| ConfigError {
                name: name.to_owned(),
                reason: format!("{e} (got {:?})", redact_url(&raw)),
            }),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError {
            name: name.to_owned(),
            reason: "not valid UTF-8".into(),
        }),
    }
}

/// A PostgreSQL connection URL. Its password never reaches a log line: `Debug` and `Display`
/// show the URL with the password replaced by `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The full URL, password included, for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The same server with another database name, e.g. to create a database from the
    /// `postgres` maintenance database.
    pub fn with_database(&self, database: &str) -> DatabaseUrl {
        let (base, query) = match self.0.split_once('?') {
            Some((base, query)) => (base, Some(query)),
            None => (self.0.as_str(), None),
        };
        let authority_end = base.find("://").map_or(0, |i| i + 3);
        let server = match base[authority_end..].find('/') {
            Some(slash) => &base[..authority_end + slash],
            None => base,
        };
        let mut url = format!("{server}/{database}");
        if let Some(query) = query {
            url.push('?');
            url.push_str(query);
        }
        DatabaseUrl(url)
    }

    /// The database name in the URL's path, if any.
    pub fn database(&self) -> Option<&str> {
        let base = self.0.split('?').next().unwrap_or_default();
        let after_scheme = base.split_once("://").map_or(base, |(_, rest)| rest);
        after_scheme
            .split_once('/')
            .map(|(_, db)| db)
            .filter(|db| !db.is_empty())
    }
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(DatabaseUrl(s.to_owned()))
        } else {
            Err("expected a postgres:// URL".into())
        }
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// Replaces the passwords in a URL with `***`: the one of `scheme://user:password@host`, and the
/// value of every query parameter whose name ends in `password` (libpq's `password` and
/// `sslpassword`). Other text is unchanged.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut redacted = redact_userinfo(base);
    if let Some(query) = query {
        redacted.push('?');
        let parameters: Vec<String> = query
            .split('&')
            .map(|parameter| match parameter.split_once('=') {
                Some((name, _)) if name.to_ascii_lowercase().ends_with("password") => {
                    format!("{name}=***")
                }
                _ => parameter.to_owned(),
            })
            .collect();
        redacted.push_str(&parameters.join("&"));
    }
    redacted
}

fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority = rest.split('/').next().unwrap_or_default();
    match authority.rsplit_once('@') {
        Some((userinfo, _)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{}", &rest[userinfo.len() + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        let url: DatabaseUrl = "postgres://app:s3cret@db:5432/orders?sslmode=require"
            .parse()
            .unwrap();
        assert_eq!(
            url.to_string(),
            "postgres://app:***@db:5432/orders?sslmode=require"
        );
        assert!(!format!("{url:?}").contains("s3cret"));
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/x"),
            "postgres://postgres@127.0.0.1/x"
        );
    }

    #[test]
    fn passwords_in_query_parameters_are_redacted() {
        assert_eq!(
            redact_url("postgres://app@db/orders?sslmode=require&password=s3cret&sslpassword=k"),
            "postgres://app@db/orders?sslmode=require&password=***&sslpassword=***"
        );
        assert_eq!(
            redact_url("postgres://app:pw@db/orders?Password=x"),
            "postgres://app:***@db/orders?Password=***"
        );
    }

    #[test]
    fn swaps_the_database_keeping_server_and_options() {
        let url: DatabaseUrl = "postgres://app:pw@db:5432/orders?sslmode=require"
            .parse()
            .unwrap();
        assert_eq!(url.database(), Some("orders"));
        let admin = url.with_database("postgres");
        assert_eq!(
            admin.expose(),
            "postgres://app:pw@db:5432/postgres?sslmode=require"
        );
        let bare: DatabaseUrl = "postgres://127.0.0.1:5432".parse().unwrap();
        assert_eq!(bare.database(), None);
        assert_eq!(
            bare.with_database("t1").expose(),
            "postgres://127.0.0.1:5432/t1"
        );
    }

    #[test]
    fn only_postgres_urls_are_database_urls() {
        let err = "mysql://db/orders".parse::<DatabaseUrl>().unwrap_err();
        assert_eq!(err, "expected a postgres:// URL");
    }
}
