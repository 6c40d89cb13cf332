//! Value types that are valid by construction: their constructors are the only way in, and each
//! says in words what it refused.

use std::fmt;

use uuid::Uuid;

/// Why a raw value was refused; the HTTP layer attaches the field path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn invalid(message: impl Into<String>) -> Invalid {
    Invalid(message.into())
}

/// One line of bounded text as a regular expression (for the API's documents): no control
/// characters, and at least one character that is not white space, which is what
/// [`bounded_text`] accepts once it has trimmed the surrounding space.
macro_rules! one_line {
    () => {
        r"[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*"
    };
}

/// White space that trimming removes, as a regular expression character class.
macro_rules! space {
    () => {
        r"[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    };
}

/// What [`bounded_text`] accepts, as a regular expression (its length is a separate bound).
pub const TEXT_PATTERN: &str = concat!("^", one_line!(), "$");

/// What [`ShippingAddress::parse_street`] accepts: lines of bounded text separated by newlines.
pub const STREET_PATTERN: &str = concat!(
    "^",
    space!(),
    "*",
    one_line!(),
    r"(\r?\n",
    one_line!(),
    ")*",
    space!(),
    "*$"
);

/// Text of `min..=max` characters without control characters, trimmed of surrounding space.
fn bounded_text(raw: &str, min: usize, max: usize) -> Result<String, Invalid> {
    let text = raw.trim();
    let chars = text.chars().count();
    if chars < min || chars > max {
        return Err(invalid(format!("must be {min} to {max} characters long")));
    }
    if text.chars().any(char::is_control) {
        return Err(invalid("must not contain control characters"));
    }
    Ok(text.to_owned())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub Uuid);

        impl $name {
            /// Parses the textual (hyphenated or simple) form of a UUID.
            pub fn parse(raw: &str) -> Result<Self, Invalid> {
                Uuid::try_parse(raw.trim()).map($name).map_err(|_| invalid("must be a UUID"))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// Identifies an order.
    OrderId
);
id_type!(
    /// Identifies a customer; also the Kafka key of all their events.
    CustomerId
);

/// A stock keeping unit: 1–64 of `A–Z a–z 0–9 . _ -`, so it is safe in a URL path segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sku(String);

impl Sku {
    /// Longest SKU accepted.
    pub const MAX_LEN: usize = 64;

    /// Parses a SKU.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if raw.is_empty() || raw.len() > Self::MAX_LEN || !raw.chars().all(ok_char) {
            return Err(invalid(format!(
                "must be 1 to {} characters of A-Z, a-z, 0-9, '.', '_' or '-'",
                Self::MAX_LEN
            )));
        }
        Ok(Sku(raw.to_owned()))
    }

    /// The SKU as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A product name as shown to the customer: 1–200 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductName(String);

impl ProductName {
    /// Longest product name, in characters.
    pub const MAX_CHARS: usize = 200;

    /// Parses a product name.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        bounded_text(raw, 1, Self::MAX_CHARS).map(ProductName)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A number of units of one SKU: 1–10 000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity(u32);

impl Quantity {
    /// Largest quantity of one line.
    pub const MAX: u32 = 10_000;

    /// Parses a quantity.
    pub fn parse(raw: i64) -> Result<Self, Invalid> {
        match u32::try_from(raw) {
            Ok(q) if (1..=Self::MAX).contains(&q) => Ok(Quantity(q)),
            _ => Err(invalid(format!("must be between 1 and {}", Self::MAX))),
        }
    }

    /// The number of units.
    pub fn get(self) -> u32 {
        self.0
    }
}

/// A unit price in minor units of the order's currency: 0 to 10¹⁰ (a hundred million in major
/// units), so that no order total can overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct UnitPrice(i64);

impl UnitPrice {
    /// Highest unit price accepted, in minor units.
    pub const MAX_CENTS: i64 = 10_000_000_000;

    /// Parses a price in minor units.
    pub fn parse(cents: i64) -> Result<Self, Invalid> {
        if (0..=Self::MAX_CENTS).contains(&cents) {
            Ok(UnitPrice(cents))
        } else {
            Err(invalid(format!(
                "must be between 0 and {}",
                Self::MAX_CENTS
            )))
        }
    }

    /// The price in minor units.
    pub fn cents(self) -> i64 {
        self.0
    }
}

/// An ISO 4217 currency code in active use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(&'static str);

impl Currency {
    /// Parses a three-letter code, case-insensitively.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let upper = raw.trim().to_ascii_uppercase();
        ISO_4217
            .iter()
            .find(|code| **code == upper)
            .map(|code| Currency(code))
            .ok_or_else(|| invalid("must be an ISO 4217 currency code such as EUR or USD"))
    }

    /// The code, upper case.
    pub fn code(self) -> &'static str {
        self.0
    }
}

/// Active ISO 4217 codes (list of 2024), without funds, metals and testing codes.
pub const ISO_4217: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD",
    "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD",
    "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ",
    "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD",
    "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR",
    "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR",
    "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN",
    "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR",
    "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB",
    "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS",
    "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

/// A person's full name: 1–200 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    /// Longest name, in characters.
    pub const MAX_CHARS: usize = 200;

    /// Parses a name.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        bounded_text(raw, 1, Self::MAX_CHARS).map(PersonName)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address: `local@domain`, at most 254 characters, a local part of at most 64, a
/// domain of dot-separated labels of letters, digits and hyphens with at least one dot. Stored
/// as given (trimmed); uniqueness is case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Longest address, in bytes (RFC 5321's path limit less the angle brackets).
    pub const MAX_LEN: usize = 254;

    /// Parses an address.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let email = raw.trim();
        let refuse = || invalid("must be an email address such as ada@example.com");
        let (local, domain) = email.rsplit_once('@').ok_or_else(refuse)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        let domain_ok = domain.contains('.') && domain.split('.').all(label_ok);
        if email.len() > Self::MAX_LEN || !local_ok || !domain_ok {
            return Err(refuse());
        }
        Ok(EmailAddress(email.to_owned()))
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free text of a command (a carrier, a tracking number, a cancellation reason): trimmed, no
/// control characters, 1 to `max` characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(String);

impl Text {
    /// Parses text of at most `max` characters.
    pub fn parse(raw: &str, max: usize) -> Result<Self, Invalid> {
        bounded_text(raw, 1, max).map(Text)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A postal address to ship to. Every part is bounded text; the country is ISO 3166-1 alpha-2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippingAddress {
    /// Recipient, 1–200 characters.
    pub name: String,
    /// Street lines, 1–500 characters (newlines allowed between lines).
    pub street: String,
    /// City, 1–100 characters.
    pub city: String,
    /// Postal code, 1–20 characters.
    pub postal_code: String,
    /// Two upper-case letters.
    pub country: String,
}

/// Parsers for the parts of a [`ShippingAddress`], one per field so errors name the field.
impl ShippingAddress {
    /// Longest recipient name, in characters.
    pub const NAME_MAX_CHARS: usize = 200;
    /// Longest street (all its lines), in characters.
    pub const STREET_MAX_CHARS: usize = 500;
    /// Longest city, in characters.
    pub const CITY_MAX_CHARS: usize = 100;
    /// Longest postal code, in characters.
    pub const POSTAL_CODE_MAX_CHARS: usize = 20;

    /// Parses the recipient's name.
    pub fn parse_name(raw: &str) -> Result<String, Invalid> {
        bounded_text(raw, 1, Self::NAME_MAX_CHARS)
    }

    /// Parses the street lines; newlines separate lines and are the only control characters
    /// allowed.
    pub fn parse_street(raw: &str) -> Result<String, Invalid> {
        let lines: Result<Vec<String>, Invalid> = raw
            .trim()
            .lines()
            .map(|line| bounded_text(line, 1, Self::STREET_MAX_CHARS))
            .collect();
        let max = Self::STREET_MAX_CHARS;
        let street = lines
            .map_err(|_| {
                invalid(format!(
                    "must be 1 to {max} characters per line, without control characters"
                ))
            })?
            .join("\n");
        if street.is_empty() || street.chars().count() > max {
            return Err(invalid(format!("must be 1 to {max} characters long")));
        }
        Ok(street)
    }

    /// Parses the city.
    pub fn parse_city(raw: &str) -> Result<String, Invalid> {
        bounded_text(raw, 1, Self::CITY_MAX_CHARS)
    }

    /// Parses the postal code.
    pub fn parse_postal_code(raw: &str) -> Result<String, Invalid> {
        bounded_text(raw, 1, Self::POSTAL_CODE_MAX_CHARS)
    }

    /// Parses an ISO 3166-1 alpha-2 country code, case-insensitively.
    pub fn parse_country(raw: &str) -> Result<String, Invalid> {
        let code = raw.trim().to_ascii_uppercase();
        if code.len() == 2 && code.chars().all(|c| c.is_ascii_uppercase()) {
            Ok(code)
        } else {
            Err(invalid(
                "must be a two-letter ISO 3166-1 country code such as DE",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_bounded() {
        assert!(Quantity::parse(0).is_err());
        assert!(Quantity::parse(-1).is_err());
        assert!(Quantity::parse(10_001).is_err());
        assert!(Quantity::parse(i64::MAX).is_err());
        assert_eq!(Quantity::parse(10_000).map(Quantity::get), Ok(10_000));
    }

    #[test]
    fn skus_are_url_safe() {
        assert!(Sku::parse("A-1").is_ok());
        assert!(Sku::parse("").is_err());
        assert!(Sku::parse("a/b").is_err());
        assert!(Sku::parse("a b").is_err());
        assert!(Sku::parse(&"x".repeat(65)).is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            ProductName::parse("  Widget ").map(|n| n.as_str().to_owned()),
            Ok("Widget".into())
        );
        assert!(ProductName::parse("   ").is_err());
        assert!(ProductName::parse("a\u{0}b").is_err());
        assert!(ProductName::parse(&"é".repeat(200)).is_ok());
        assert!(ProductName::parse(&"é".repeat(201)).is_err());
    }

    #[test]
    fn currencies_are_iso_4217() {
        assert_eq!(Currency::parse("eur").map(Currency::code), Ok("EUR"));
        assert!(Currency::parse("EURO").is_err());
        assert!(Currency::parse("XXX").is_err());
    }

    #[test]
    fn prices_are_bounded() {
        assert!(UnitPrice::parse(-1).is_err());
        assert!(UnitPrice::parse(0).is_ok());
        assert!(UnitPrice::parse(UnitPrice::MAX_CENTS + 1).is_err());
    }

    #[test]
    fn email_addresses_are_checked() {
        for good in [
            "ada@example.com",
            "a.b+tag@mail.example.co.uk",
            "  X_Y@Ex-Ample.org ",
        ] {
            assert!(EmailAddress::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "ada@exa_mple.com",
            "ada@-x.com",
            ".a@x.com",
            "a..b@x.com",
            "ada@x..com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad}");
        }
        assert!(EmailAddress::parse(&format!("{}@x.com", "a".repeat(65))).is_err());
    }

    #[test]
    fn addresses_keep_street_lines() {
        assert_eq!(
            ShippingAddress::parse_street("Main St 1\nBack house"),
            Ok("Main St 1\nBack house".into())
        );
        assert!(ShippingAddress::parse_street("\n").is_err());
        assert!(ShippingAddress::parse_country("de").is_ok());
        assert!(ShippingAddress::parse_country("DEU").is_err());
    }
}
