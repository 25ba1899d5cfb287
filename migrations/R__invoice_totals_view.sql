-- Re-applied whenever it changes: invoice totals and the amount still open.
CREATE OR REPLACE VIEW invoice_totals AS
SELECT
    i.id AS invoice_id,
    i.customer_id,
    i.status,
    i.currency,
    coalesce(l.total_cents, 0) AS total_cents,
    coalesce(p.paid_cents, 0) AS paid_cents,
    coalesce(l.total_cents, 0) - coalesce(p.paid_cents, 0) AS open_cents
FROM invoices AS i
LEFT JOIN (
    SELECT invoice_id, sum(quantity * unit_price_cents) AS total_cents
    FROM invoice_lines
    GROUP BY invoice_id
) AS l ON l.invoice_id = i.id
LEFT JOIN (
    SELECT invoice_id, sum(amount_cents) AS paid_cents
    FROM payments
    GROUP BY invoice_id
) AS p ON p.invoice_id = i.id;
