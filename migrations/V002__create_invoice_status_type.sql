-- The life cycle of an invoice.
CREATE TYPE invoice_status AS ENUM ('draft', 'open', 'paid', 'void');
