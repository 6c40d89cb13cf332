//! `query-service verify`: the views of a real history match the event log, and every kind of
//! damage to them (a changed document, a doubled sale, a lost profile, a wrong version) and a
//! parked dead letter is reported, exactly and nothing else.

use chrono::NaiveDate;
use e2e::{TestApp, wait_for};
use query_service::verify::{Report, ViewReport, verify};
use serde_json::{Value, json};
use uuid::Uuid;

async fn ok(response: reqwest::Response) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{status}: {body}");
}

async fn check(app: &TestApp, allowed_dead_letters: u64) -> Report {
    verify(&app.command_db, &app.query_db, allowed_dead_letters)
        .await
        .unwrap()
}

/// Missing, unexpected and mismatched fields of a view.
fn counts(view: &ViewReport) -> (u64, u64, u64) {
    (view.missing, view.unexpected, view.mismatched_fields)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_passes_on_a_real_history_and_reports_exactly_what_was_damaged() {
    let app = TestApp::spawn().await;
    let (ada, bob) = (app.register_customer().await, app.register_customer().await);
    let shipped = app.place_order_for(ada).await;
    let refunded = app.place_order_for(ada).await;
    let dropped = app.place_order_for(bob).await;
    let open = app.place_order_for(bob).await;
    let order = |id: Uuid, action: &str| format!("/orders/{id}/{action}");
    let cable = json!({ "sku": "C-3", "name": "Cable", "quantity": 3, "unit_price_cents": 199 });
    ok(app.post(&order(shipped, "items"), &cable).await).await;
    ok(app.post(&order(shipped, "confirm"), &json!({})).await).await;
    let carrier = json!({ "carrier": "UPS", "tracking_number": "1Z999" });
    ok(app.post(&order(shipped, "ship"), &carrier).await).await;
    ok(app.post(&order(refunded, "confirm"), &json!({})).await).await;
    let reason = json!({ "reason": "found it cheaper" });
    ok(app.post(&order(refunded, "cancel"), &reason).await).await;
    ok(app.post(&order(dropped, "cancel"), &reason).await).await;
    let renamed = json!({ "name": "Ada King" });
    ok(app
        .post(&format!("/customers/{ada}/rename"), &renamed)
        .await)
    .await;
    app.wait_for_order(open).await;
    app.wait_until_views_caught_up().await;

    let report = check(&app, 0).await;
    assert!(report.passed, "{report}");
    assert_eq!(
        (report.events, report.skipped_events, report.broken_events),
        (13, 0, 0)
    );
    assert_eq!(
        (
            report.order_detail.actual_rows,
            report.customer_profile.actual_rows,
            report.applied_versions.actual_rows,
            report.unpublished_events
        ),
        (4, 2, 6, 0)
    );

    // Poison on the topic is parked: a problem, unless the operator allows for it.
    app.produce(&ada.to_string(), b"not an event").await;
    wait_for("the poison to be parked", || async {
        let parked: i64 =
            sqlx::query_scalar("SELECT count(*) FROM views.dead_letters WHERE status = 'parked'")
                .fetch_one(&app.query_db)
                .await
                .ok()?;
        (parked == 1).then_some(())
    })
    .await;
    let report = check(&app, 0).await;
    assert_eq!(
        (report.passed, report.problems(), report.dead_letters.open),
        (false, 1, 1),
        "{report}"
    );
    assert!(report.dead_letters.examples[0].error.contains("malformed"));
    assert!(check(&app, 1).await.passed, "the allowance covers it");

    // Damage each view once.
    let execute = |sql: &'static str, id: Uuid| {
        let pool = app.query_db.clone();
        async move { sqlx::query(sql).bind(id).execute(&pool).await.unwrap() }
    };
    execute(
        "UPDATE views.order_detail SET body = jsonb_set(body::jsonb, '{total_cents}', '999999')::json WHERE order_id = $1",
        shipped,
    )
    .await;
    execute(
        "DELETE FROM views.customer_profile WHERE customer_id = $1",
        bob,
    )
    .await;
    execute(
        "UPDATE views.applied_versions SET version = version + 1 WHERE aggregate_id = $1",
        refunded,
    )
    .await;
    let (day, currency): (NaiveDate, String) =
        sqlx::query_as("SELECT day, currency FROM views.daily_sales ORDER BY day LIMIT 1")
            .fetch_one(&app.query_db)
            .await
            .unwrap();
    sqlx::query(
        "UPDATE views.daily_sales SET gross_cents = gross_cents + 2500 WHERE day = $1 AND currency = $2",
    )
    .bind(day)
    .bind(&currency)
    .execute(&app.query_db)
    .await
    .unwrap();

    let report = check(&app, 1).await;
    assert_eq!((report.passed, report.problems()), (false, 4), "{report}");
    assert_eq!(counts(&report.order_detail), (0, 0, 1), "{report}");
    let total = &report.order_detail.examples[0];
    assert_eq!(
        (total.id.as_str(), total.field.as_deref()),
        (shipped.to_string().as_str(), Some("body.total_cents"))
    );
    assert_eq!(
        (&total.expected, &total.actual),
        (&json!(2 * 1250 + 500 + 3 * 199), &json!(999_999))
    );

    assert_eq!(counts(&report.daily_sales), (0, 0, 1), "{report}");
    let sales = &report.daily_sales.examples[0];
    assert_eq!(
        (sales.id.clone(), sales.field.as_deref()),
        (format!("{day} {currency}"), Some("gross_cents"))
    );
    assert_eq!(
        sales.actual.as_i64().unwrap() - sales.expected.as_i64().unwrap(),
        2500
    );

    assert_eq!(counts(&report.customer_profile), (1, 0, 0), "{report}");
    assert_eq!(report.customer_profile.examples[0].id, bob.to_string());

    assert_eq!(counts(&report.applied_versions), (0, 0, 1), "{report}");
    let version = &report.applied_versions.examples[0];
    assert_eq!(
        (version.id.clone(), &version.expected, &version.actual),
        (refunded.to_string(), &json!(3), &json!(4))
    );
    assert!(
        report.to_string().contains("FAILED: 4 problems"),
        "{report}"
    );
}
