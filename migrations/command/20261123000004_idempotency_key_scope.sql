-- Idempotency keys are scoped to the caller: a customer's key is stored as
-- "<customer id>/<key>" (an admin's as sent), so two customers choosing the same key never
-- see each other's recorded responses. The longer stored form needs a longer bound.
ALTER TABLE idempotency_keys
    DROP CONSTRAINT idempotency_keys_key_check,
    ADD CONSTRAINT idempotency_keys_key_check CHECK (length(key) BETWEEN 1 AND 300);
