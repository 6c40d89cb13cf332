//! The list screens read from the order rows' summary columns: a customer's orders, the
//! back-office search and the shipping dashboard. Keyset pagination only (no OFFSET): a page
//! starts strictly after the last row of the previous one, so rows inserted meanwhile never
//! shift or repeat what a client already saw.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Utc};
use serde::Serialize;
use shared_events::order::{OrderStatus, ShippingAddress};

use super::order_detail::OrderDetail;
use uuid::Uuid;

/// Where a page ends: the sort key of its last row. Clients treat it as opaque text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cursor {
    /// The time the list is sorted by (placed or confirmed).
    pub at: DateTime<Utc>,
    /// The order id that breaks ties.
    pub id: Uuid,
}

/// The text is not a cursor this service issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid cursor")]
pub struct InvalidCursor;

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "k1.{}.{}", self.at.timestamp_micros(), self.id.simple())
    }
}

impl FromStr for Cursor {
    type Err = InvalidCursor;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s.strip_prefix("k1.").ok_or(InvalidCursor)?;
        let (micros, id) = rest.split_once('.').ok_or(InvalidCursor)?;
        let at = micros
            .parse()
            .ok()
            .and_then(DateTime::from_timestamp_micros)
            .filter(|t| (1..=9999).contains(&t.year()))
            .ok_or(InvalidCursor)?;
        let id = Uuid::try_parse(id).map_err(|_| InvalidCursor)?;
        Ok(Cursor { at, id })
    }
}

// Stored with each order row (`order_detail.summary`, written by the projector) and
// concatenated into pages.
/// One order in a list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrderSummary {
    /// The order.
    pub order_id: Uuid,
    /// Its customer.
    pub customer_id: Uuid,
    /// The customer's current name.
    pub customer_name: Option<String>,
    /// Where it is in its lifecycle.
    pub status: OrderStatus,
    /// ISO 4217 code.
    pub currency: String,
    /// Sum of quantities.
    pub item_count: i64,
    /// Order total, minor units.
    pub total_cents: i64,
    /// When it was placed.
    pub placed_at: DateTime<Utc>,
    /// When its last event happened.
    pub updated_at: DateTime<Utc>,
    /// The order's version.
    pub version: i64,
}

// The shape of `JsonPage::into_body` for the order lists.
/// A page of orders and where the next one starts.
#[derive(Debug, utoipa::ToSchema)]
pub struct OrderPage {
    /// Newest first.
    pub items: Vec<OrderSummary>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

impl From<&OrderDetail> for OrderSummary {
    fn from(detail: &OrderDetail) -> Self {
        OrderSummary {
            order_id: detail.order_id,
            customer_id: detail.customer_id,
            customer_name: detail.customer_name.clone(),
            status: detail.status,
            currency: detail.currency.clone(),
            item_count: i64::try_from(detail.item_count).unwrap_or(i64::MAX),
            total_cents: detail.total_cents,
            placed_at: detail.created_at,
            updated_at: detail.updated_at,
            version: detail.version,
        }
    }
}

/// A page of a list as JSON, the concatenation of its items' stored JSON: rows decoded into
/// Rust values one by one and serialized again cost the query service more than twice the CPU
/// of the order detail, which copies a stored document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPage {
    /// The page's items: JSON objects separated by commas, without the brackets.
    pub items: String,
    /// Where the next page starts; `None` on the last.
    pub next: Option<Cursor>,
}

impl JsonPage {
    /// `{"items":[...],"next_cursor":"..."}`, `next_cursor` `null` on the last page.
    pub fn into_body(self) -> String {
        let next = self
            .next
            .map_or_else(|| "null".to_owned(), |c| format!("\"{c}\""));
        format!("{{\"items\":[{}],\"next_cursor\":{next}}}", self.items)
    }
}

/// The statement of a page of a list. `$rows` yields `$limit + 1` rows in the list's order, each
/// with its stored JSON (`item`), sort key (`at`, `id`) and place (`n`). One row comes back: the
/// first `$limit` items joined by commas, whether another row follows, and the sort key of the
/// last item shown (the cursor, when another follows).
macro_rules! page_of {
    ($limit:literal, $rows:literal) => {
        concat!(
            "SELECT coalesce(string_agg(item::text, ',' ORDER BY n) FILTER (WHERE n <= ",
            $limit,
            "), ''),
                    count(*) > ",
            $limit,
            ", max(at) FILTER (WHERE n = ",
            $limit,
            "),
                    (array_agg(id) FILTER (WHERE n = ",
            $limit,
            "))[1]
             FROM (",
            $rows,
            ") page"
        )
    };
}

/// A row of [`page_of`]: the items, whether more follow, the last item's sort key.
type PageRow = (String, bool, Option<DateTime<Utc>>, Option<Uuid>);

fn json_page((items, more, at, id): PageRow) -> JsonPage {
    JsonPage {
        items,
        next: at
            .zip(id)
            .filter(|_| more)
            .map(|(at, id)| Cursor { at, id }),
    }
}

/// Filters of the back-office search; `None` means "any".
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// Only this customer's orders.
    pub customer_id: Option<Uuid>,
    /// Only orders in this status.
    pub status: Option<OrderStatus>,
    /// Placed at or after.
    pub placed_after: Option<DateTime<Utc>>,
    /// Placed before.
    pub placed_before: Option<DateTime<Utc>>,
}

/// A page of one customer's orders, newest first: `GET /customers/{id}/orders`, and the
/// back-office search when it names a customer. `None` filters are "any".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CustomerOrders {
    /// Whose orders.
    pub customer_id: Uuid,
    /// Only orders in this status.
    pub status: Option<OrderStatus>,
    /// Placed at or after.
    pub placed_after: Option<DateTime<Utc>>,
    /// Placed before.
    pub placed_before: Option<DateTime<Utc>>,
    /// Where the previous page ended.
    pub after: Option<Cursor>,
    /// Items on the page.
    pub limit: i64,
}

/// The pages `pages` ask for, in their order, in one statement: each is a lateral page of its
/// customer's rows (the customer index, newest first).
pub async fn customer_orders(
    db: impl sqlx::PgExecutor<'_>,
    pages: &[CustomerOrders],
) -> Result<Vec<JsonPage>, sqlx::Error> {
    let rows: Vec<PageRow> = sqlx::query_as(concat!(
        "SELECT page.* FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[],
                                   $5::timestamptz[], $6::uuid[], $7::bigint[])
             WITH ORDINALITY
                 AS q(customer_id, status, placed_after, placed_before, cursor_at, cursor_id, lim, k)
         CROSS JOIN LATERAL (",
        page_of!(
            "q.lim",
            "SELECT summary AS item, placed_at AS at, order_id AS id,
                    row_number() OVER (ORDER BY placed_at DESC, order_id DESC) AS n
             FROM order_detail
             WHERE customer_id = q.customer_id AND (q.status IS NULL OR status = q.status)
               AND (q.placed_after IS NULL OR placed_at >= q.placed_after)
               AND (q.placed_before IS NULL OR placed_at < q.placed_before)
               AND (q.cursor_at IS NULL OR (placed_at, order_id) < (q.cursor_at, q.cursor_id))
             ORDER BY placed_at DESC, order_id DESC
             LIMIT q.lim + 1"
        ),
        ") page ORDER BY q.k"
    ))
    .bind(pages.iter().map(|p| p.customer_id).collect::<Vec<_>>())
    .bind(
        pages
            .iter()
            .map(|p| p.status.map(OrderStatus::as_str))
            .collect::<Vec<_>>(),
    )
    .bind(pages.iter().map(|p| p.placed_after).collect::<Vec<_>>())
    .bind(pages.iter().map(|p| p.placed_before).collect::<Vec<_>>())
    .bind(pages.iter().map(|p| p.after.map(|c| c.at)).collect::<Vec<_>>())
    .bind(pages.iter().map(|p| p.after.map(|c| c.id)).collect::<Vec<_>>())
    .bind(pages.iter().map(|p| p.limit).collect::<Vec<_>>())
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(json_page).collect())
}

/// A page of the orders matching `search`, newest first. (A search that names a customer is
/// cheaper as [`customer_orders`].)
pub async fn search(
    db: impl sqlx::PgExecutor<'_>,
    search: &Search,
    after: Option<Cursor>,
    limit: i64,
) -> Result<JsonPage, sqlx::Error> {
    sqlx::query_as(page_of!(
        "$1",
        "SELECT summary AS item, placed_at AS at, order_id AS id,
                row_number() OVER (ORDER BY placed_at DESC, order_id DESC) AS n
         FROM order_detail
         WHERE ($2::uuid IS NULL OR customer_id = $2) AND ($3::text IS NULL OR status = $3)
           AND ($4::timestamptz IS NULL OR placed_at >= $4) AND ($5::timestamptz IS NULL OR placed_at < $5)
           AND ($6::timestamptz IS NULL OR (placed_at, order_id) < ($6, $7))
         ORDER BY placed_at DESC, order_id DESC
         LIMIT $1 + 1"
    ))
    .bind(limit)
    .bind(search.customer_id)
    .bind(search.status)
    .bind(search.placed_after)
    .bind(search.placed_before)
    .bind(after.map(|c| c.at))
    .bind(after.map(|c| c.id))
    .fetch_one(db)
    .await
    .map(json_page)
}

/// A confirmed order waiting to be shipped.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AwaitingShipment {
    /// The order.
    pub order_id: Uuid,
    /// Its customer.
    pub customer_id: Uuid,
    /// The customer's current name.
    pub customer_name: Option<String>,
    /// When it was confirmed.
    pub confirmed_at: DateTime<Utc>,
    /// Seconds since confirmation, when the page was read.
    #[sqlx(skip)]
    pub age_seconds: i64,
    /// Sum of quantities.
    pub item_count: i64,
    /// Order total, minor units.
    pub total_cents: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Where to ship it.
    // Decoded as the typed address: cheaper to read and to write again than a JSON value.
    #[schema(value_type = Option<ShippingAddress>)]
    pub shipping_address: Option<sqlx::types::Json<ShippingAddress>>,
    /// The order's version: send it in the ship command's `If-Match`, so that an order changed
    /// by someone else meanwhile is refused (412) rather than shipped as it was not shown.
    pub version: i64,
}

/// Confirmed orders, longest waiting first.
pub async fn awaiting_shipment(
    db: impl sqlx::PgExecutor<'_>,
    after: Option<Cursor>,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Vec<AwaitingShipment>, sqlx::Error> {
    let mut rows: Vec<AwaitingShipment> = sqlx::query_as(
        "SELECT order_id, customer_id, customer_name, confirmed_at, item_count, total_cents, currency,
                CASE json_typeof(body -> 'shipping_address') WHEN 'object' THEN body -> 'shipping_address' END
                    AS shipping_address, version
         FROM order_detail
         WHERE status = 'confirmed' AND ($1::timestamptz IS NULL OR (confirmed_at, order_id) > ($1, $2))
         ORDER BY confirmed_at, order_id
         LIMIT $3",
    )
    .bind(after.map(|c| c.at))
    .bind(after.map(|c| c.id))
    .bind(limit)
    .fetch_all(db)
    .await?;
    for row in &mut rows {
        row.age_seconds = (now - row.confirmed_at).num_seconds().max(0);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_its_items_and_the_cursor_after_them() {
        let cursor = Cursor {
            at: DateTime::from_timestamp_micros(2).unwrap(),
            id: Uuid::from_u128(2),
        };
        let page = JsonPage {
            items: r#"{"n":1},{"n":2}"#.into(),
            next: Some(cursor),
        };
        let body: serde_json::Value = serde_json::from_str(&page.into_body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({ "items": [{ "n": 1 }, { "n": 2 }], "next_cursor": cursor.to_string() })
        );
        let last = JsonPage {
            items: String::new(),
            next: None,
        };
        assert_eq!(last.into_body(), r#"{"items":[],"next_cursor":null}"#);
    }

    #[test]
    fn cursors_round_trip_and_refuse_foreign_text() {
        let cursor = Cursor {
            at: DateTime::from_timestamp_micros(1_763_900_000_123_456).unwrap(),
            id: Uuid::now_v7(),
        };
        assert_eq!(cursor.to_string().parse::<Cursor>(), Ok(cursor));
        for bad in [
            "",
            "k1.",
            "k1.x.y",
            "k2.1.0190a3c6f2c47c4a8f3a2b1c0d9e8f7a",
            "k1.99999999999999999999.0190a3c6f2c47c4a8f3a2b1c0d9e8f7a",
        ] {
            assert_eq!(bad.parse::<Cursor>(), Err(InvalidCursor), "{bad}");
        }
    }
}
