-- Refunds point at the payment they reverse.  The foreign key is added NOT VALID (no scan of
-- existing rows under the lock); V009 validates it separately.
ALTER TABLE payments ADD COLUMN refund_of_payment_id bigint;

ALTER TABLE payments
    ADD CONSTRAINT payments_refund_of_payment_id_fkey
    FOREIGN KEY (refund_of_payment_id) REFERENCES payments (id) NOT VALID;
