-- Invoices belong to a customer; the table is new, so its indexes can be built inline.
CREATE TABLE invoices (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id  bigint NOT NULL REFERENCES customers (id),
    number       text NOT NULL,
    status       invoice_status NOT NULL DEFAULT 'draft',
    currency     text NOT NULL DEFAULT 'EUR',
    issued_at    timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT invoices_number_key UNIQUE (number),
    CONSTRAINT invoices_currency_check CHECK (currency ~ '^[A-Z]{3}$')
);

CREATE INDEX invoices_customer_id_idx ON invoices (customer_id);
