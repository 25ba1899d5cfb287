"""The schemagate AWS CDK app: constructs (one module each), stacks that compose them, app.py."""
