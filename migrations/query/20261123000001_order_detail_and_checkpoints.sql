-- Read model of the query service: one denormalized table per screen, plus what the projector
-- has applied (per aggregate version and per Kafka partition offset), all updated in the same
-- transaction per batch.

-- Order detail screen. `body` is the complete JSON document served by GET /orders/{id}; it is
-- stored as `json` (text kept verbatim) so serving it needs no re-serialization. The other
-- columns exist for filtering and ordering.
CREATE TABLE order_detail (
    order_id    uuid PRIMARY KEY,
    customer_id uuid        NOT NULL,
    status      text        NOT NULL,
    placed_at   timestamptz NOT NULL,
    version     bigint      NOT NULL CHECK (version >= 1),
    body        json        NOT NULL
);

-- Highest version of each aggregate applied to the views. Events at or below it are duplicates.
CREATE TABLE applied_versions (
    aggregate_id   uuid PRIMARY KEY,
    aggregate_type text   NOT NULL,
    version        bigint NOT NULL CHECK (version >= 1)
);

-- Next offset to apply per partition. The source of truth for what was consumed: the broker's
-- committed offset is only a hint that may lag behind it.
CREATE TABLE consumer_offsets (
    topic       text        NOT NULL,
    partition   int         NOT NULL,
    next_offset bigint      NOT NULL CHECK (next_offset >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);

-- Messages that could not be decoded, parked with the reason so the stream keeps moving.
CREATE TABLE dead_letters (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic        text        NOT NULL,
    partition    int         NOT NULL,
    kafka_offset bigint      NOT NULL,
    message_key  bytea,
    payload      bytea,
    error        text        NOT NULL,
    parked_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (topic, partition, kafka_offset)
);
