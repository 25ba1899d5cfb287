-- A nullable column without a default: a catalog-only change, no table rewrite.
ALTER TABLE invoices ADD COLUMN due_at timestamptz;
