"""schemagate build-time validation: naming, order, parsing, linting, safety rules, rehearsal,
reports and the bundle writer.  Imports the executor's shared code, never the other way round."""
