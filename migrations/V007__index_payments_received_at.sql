-- schemagate:set statement_timeout=1h
-- payments already holds data: build the index without blocking writes.  CONCURRENTLY cannot run
-- inside a transaction block, so this statement lives alone in its file (run without one).
CREATE INDEX CONCURRENTLY IF NOT EXISTS payments_received_at_idx ON payments (received_at);
