-- Line items of an invoice; amounts in the invoice currency's minor unit (cents).
CREATE TABLE invoice_lines (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    invoice_id        bigint NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    description       text NOT NULL,
    quantity          bigint NOT NULL CHECK (quantity > 0),
    unit_price_cents  bigint NOT NULL CHECK (unit_price_cents >= 0),
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX invoice_lines_invoice_id_idx ON invoice_lines (invoice_id);
