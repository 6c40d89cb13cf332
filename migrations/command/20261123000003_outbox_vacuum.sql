-- The outbox is a queue: every row is inserted and deleted within milliseconds. Vacuum it
-- after every thousand dead rows instead of after a fraction of the table, so index scans of
-- the relay do not wade through dead entries.
ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
                        autovacuum_vacuum_cost_delay = 0);
