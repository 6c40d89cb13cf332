-- Write model of the command service: current state of each aggregate, the append-only event
-- log (the audit trail), and the outbox of events not yet acknowledged by Kafka.

CREATE TABLE orders (
    id            uuid PRIMARY KEY,
    customer_id   uuid        NOT NULL,
    status        text        NOT NULL CHECK (status IN ('pending', 'confirmed', 'shipped', 'delivered', 'cancelled')),
    currency      char(3)     NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    shipping_address jsonb,
    version       bigint      NOT NULL CHECK (version >= 1),
    placed_at     timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX orders_customer_id ON orders (customer_id);

CREATE TABLE order_items (
    order_id         uuid   NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_no          int    NOT NULL CHECK (line_no >= 0),
    sku              text   NOT NULL CHECK (length(sku) BETWEEN 1 AND 64),
    name             text   NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    quantity         int    NOT NULL CHECK (quantity BETWEEN 1 AND 10000),
    unit_price_cents bigint NOT NULL CHECK (unit_price_cents >= 0),
    PRIMARY KEY (order_id, sku)
);

-- Every event ever accepted, in commit-independent insertion order (`position`). Rows are never
-- updated or deleted. The unique (aggregate_id, aggregate_version) is the last line of defence
-- of optimistic concurrency: two commands can never both append version n of one aggregate.
CREATE TABLE event_log (
    position          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id          uuid        NOT NULL UNIQUE,
    event_type        text        NOT NULL,
    schema_version    int         NOT NULL CHECK (schema_version >= 1),
    aggregate_type    text        NOT NULL,
    aggregate_id      uuid        NOT NULL,
    aggregate_version bigint      NOT NULL CHECK (aggregate_version >= 1),
    partition_key     text        NOT NULL,
    occurred_at       timestamptz NOT NULL,
    correlation_id    text,
    causation_id      text,
    traceparent       text,
    data              jsonb       NOT NULL,
    CONSTRAINT event_log_one_event_per_version UNIQUE (aggregate_id, aggregate_version)
);

-- Events not yet acknowledged by the broker. A row is inserted in the same transaction as its
-- event and deleted by the relay only after Kafka acknowledged the message. Tracking this per
-- event (not as a high-water mark over `position`) is what keeps an event whose transaction
-- commits after a later position's from being skipped.
CREATE TABLE outbox (
    position bigint PRIMARY KEY REFERENCES event_log (position)
);
