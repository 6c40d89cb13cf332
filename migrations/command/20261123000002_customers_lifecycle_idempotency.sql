-- The complete write model (issue #3): customers, the order lifecycle's facts, and the
-- idempotency records of commands.

CREATE TABLE customers (
    id            uuid PRIMARY KEY,
    name          text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    email         text        NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    version       bigint      NOT NULL CHECK (version >= 1),
    registered_at timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
-- Email addresses are unique across customers, compared case-insensitively. The command layer
-- turns a violation of this index into a 409.
CREATE UNIQUE INDEX customers_email_unique ON customers (lower(email));

-- Orders placed from now on must belong to a registered customer. NOT VALID: orders written
-- before customers existed (foundation release) are left as they are.
ALTER TABLE orders
    ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;

ALTER TABLE orders
    ADD COLUMN carrier             text,
    ADD COLUMN tracking_number     text,
    ADD COLUMN cancellation_reason text;

-- One row per Idempotency-Key that completed a command: the request it came with (to refuse the
-- key with another request) and the response to replay, byte for byte. Written in the same
-- transaction as the command's state and events, so a key is recorded exactly when its command
-- committed.
CREATE TABLE idempotency_keys (
    key         text        PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 255),
    request     bytea       NOT NULL,
    status      smallint    NOT NULL,
    headers     jsonb       NOT NULL,
    body        bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
