CALL archive_in_batches(500);
