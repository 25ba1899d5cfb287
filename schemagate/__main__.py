from schemagate.cli import entry

entry()
