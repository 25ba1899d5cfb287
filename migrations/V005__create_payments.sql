-- Payments received against invoices.
CREATE TABLE payments (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    invoice_id    bigint NOT NULL REFERENCES invoices (id),
    amount_cents  bigint NOT NULL CHECK (amount_cents > 0),
    provider      text NOT NULL,
    provider_ref  text,
    received_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX payments_invoice_id_idx ON payments (invoice_id);
