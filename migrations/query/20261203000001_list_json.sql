-- The order lists' items as stored JSON (issue #15): a page of 20 orders decoded row by row into
-- Rust values and serialized again cost the query service 2.4 times the CPU of the order detail,
-- which copies a stored document. The projector now writes each order's list item beside its
-- detail document, and a list page is their concatenation. Existing rows get theirs here, their
-- times as the document has them.
ALTER TABLE views.order_detail ADD COLUMN summary json;
UPDATE views.order_detail o SET summary = (
    SELECT row_to_json(r) FROM (
        SELECT o.order_id, o.customer_id, o.customer_name, o.status, o.currency, o.item_count,
               o.total_cents, o.body -> 'created_at' AS placed_at, o.body -> 'updated_at' AS updated_at,
               o.version
    ) r
);
ALTER TABLE views.order_detail ALTER COLUMN summary SET NOT NULL;
