-- VALIDATE takes only a SHARE UPDATE EXCLUSIVE lock: reads and writes continue while it scans.
ALTER TABLE payments VALIDATE CONSTRAINT payments_refund_of_payment_id_fkey;
