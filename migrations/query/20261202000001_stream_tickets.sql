-- Stream tickets (issue #14): how a browser's EventSource, which cannot send Authorization, opens
-- a live view. A ticket opens one stream path as the caller it was issued to, until it expires.
-- Kept in `public` (not a view: a rebuild must not drop them) and in the database rather than a
-- replica's memory, so any replica redeems what another issued. Only the SHA-256 of a ticket is
-- stored: this table opens nothing if it leaks.
CREATE TABLE stream_tickets (
    fingerprint bytea       PRIMARY KEY CHECK (octet_length(fingerprint) = 32),
    stream      text        NOT NULL,
    -- NULL: an admin.
    customer_id uuid,
    -- What the caller's requests count against (the token's subject).
    subject     text        NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX stream_tickets_expiry ON stream_tickets (expires_at);
