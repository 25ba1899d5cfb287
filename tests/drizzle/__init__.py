"""The real drizzle-orm migrator, installed from npm for the Drizzle tests (see migrator.py)."""
