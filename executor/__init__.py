"""schemagate run-time: bundle verification, history, locking and applying.

This package is what the Lambda deploys.  It depends on the standard library and psycopg2; the AWS
adapter (``handler``, ``artifact``, ``credentials``, ``signing``, ``notify``, ``observability``)
adds boto3 and aws-lambda-powertools.  It never imports the validator, pglast, sqlfluff, click or
the CDK (``tests/test_executor_is_lean.py`` keeps it so).
"""

__version__ = "0.1.0"
