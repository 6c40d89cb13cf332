-- The read models of issue #4. Every table the projector writes lives in schema `views`, so a
-- rebuild can fill a copy of the schema from the start of the topic and swap it in atomically
-- (see query-service/src/consumer/rebuild.rs). Dead letters stay in `public`: they are about the
-- stream, not a view.

CREATE SCHEMA views;
ALTER TABLE public.order_detail SET SCHEMA views;
ALTER TABLE public.applied_versions SET SCHEMA views;
ALTER TABLE public.consumer_offsets SET SCHEMA views;

-- The order row also carries the summary the list screens show (customer's orders, back-office
-- search, shipping dashboard), so those read columns and never the JSON document.
ALTER TABLE views.order_detail
    ADD COLUMN customer_name    text,
    ADD COLUMN customer_email   text,
    ADD COLUMN customer_version bigint      NOT NULL DEFAULT 0,
    ADD COLUMN currency         text        NOT NULL DEFAULT 'EUR' CHECK (currency ~ '^[A-Z]{3}$'),
    ADD COLUMN item_count       bigint      NOT NULL DEFAULT 0 CHECK (item_count >= 0),
    ADD COLUMN total_cents      bigint      NOT NULL DEFAULT 0 CHECK (total_cents >= 0),
    ADD COLUMN confirmed_at     timestamptz,
    ADD COLUMN updated_at       timestamptz NOT NULL DEFAULT now();
ALTER TABLE views.order_detail
    ADD CONSTRAINT order_detail_status CHECK (status IN ('pending', 'confirmed', 'shipped', 'delivered', 'cancelled'));

-- Customer's orders, newest first (keyset on placed_at, order_id).
CREATE INDEX order_detail_by_customer ON views.order_detail (customer_id, placed_at DESC, order_id DESC);
-- Back-office search, newest first, optionally by status.
CREATE INDEX order_detail_by_time ON views.order_detail (placed_at DESC, order_id DESC);
CREATE INDEX order_detail_by_status ON views.order_detail (status, placed_at DESC, order_id DESC);
-- Shipping dashboard: confirmed orders, oldest confirmation first.
CREATE INDEX order_detail_awaiting_shipment ON views.order_detail (confirmed_at, order_id) WHERE status = 'confirmed';

-- Customer profile screen. Name and email come from customer events; the order figures are
-- recomputed from the customer's order rows whenever one of their orders changes, so they are
-- right whatever order customer and order events arrive in.
CREATE TABLE views.customer_profile (
    customer_id     uuid PRIMARY KEY,
    name            text,
    email           text,
    version         bigint      NOT NULL DEFAULT 0 CHECK (version >= 0),
    order_count     bigint      NOT NULL DEFAULT 0,
    open_orders     bigint      NOT NULL DEFAULT 0,
    lifetime_value  jsonb       NOT NULL DEFAULT '[]',
    last_order_at   timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Daily sales report, per UTC day and currency. Incremented per event; exactly-once application
-- (per-aggregate versions) keeps the sums right.
CREATE TABLE views.daily_sales (
    day              date   NOT NULL,
    currency         text   NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    orders_placed    bigint NOT NULL DEFAULT 0,
    orders_confirmed bigint NOT NULL DEFAULT 0,
    orders_cancelled bigint NOT NULL DEFAULT 0,
    gross_cents      bigint NOT NULL DEFAULT 0,
    cancelled_cents  bigint NOT NULL DEFAULT 0,
    items_sold       bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, currency)
);

-- When each partition's last applied event happened, for lag in seconds.
ALTER TABLE views.consumer_offsets ADD COLUMN last_event_at timestamptz;

-- Dead letters: what they are about (when the envelope could be read), and their fate.
ALTER TABLE public.dead_letters
    ADD COLUMN event_type   text,
    ADD COLUMN aggregate_id uuid,
    ADD COLUMN aggregate_version bigint,
    ADD COLUMN status       text NOT NULL DEFAULT 'parked' CHECK (status IN ('parked', 'retried', 'discarded')),
    ADD COLUMN attempts     int  NOT NULL DEFAULT 1,
    ADD COLUMN resolved_at  timestamptz;
CREATE INDEX dead_letters_parked ON public.dead_letters (id) WHERE status = 'parked';
CREATE INDEX dead_letters_by_aggregate ON public.dead_letters (aggregate_id, aggregate_version) WHERE status = 'parked';

-- Rebuilds of the views: one at a time; progress for the admin endpoint on every replica.
CREATE TABLE public.projection_rebuilds (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    status      text        NOT NULL CHECK (status IN ('running', 'swapped', 'failed')),
    started_at  timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    progress    jsonb       NOT NULL DEFAULT '{}',
    error       text
);
