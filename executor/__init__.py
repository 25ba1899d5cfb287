"""schemagate run-time: bundle verification, history, locking and applying.

This package is what the Lambda deploys.  It depends on the standard library, psycopg2 and
(for the AWS adapter only) boto3.  It never imports the validator, pglast, sqlfluff or the CDK.
"""

__version__ = "0.1.0"
