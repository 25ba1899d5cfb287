"""schemagate command line: a thin layer over ``validator`` and ``executor``."""
