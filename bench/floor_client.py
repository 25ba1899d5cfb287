"""The floor of schemagate's protocol, for ``bench/apply.py``: a Python process that imports
psycopg2, connects, and sends each file as schemagate's one message does (``BEGIN``, the file, a
history row, ``COMMIT``: one simple query), and nothing else: no checks, no lock, no checksums, no
output.  What schemagate costs beyond this is its own client work; what this costs beyond psql is
the interpreter, the driver and the history row.

    python bench/floor_client.py URL FILE...
"""

from __future__ import annotations

import sys

import psycopg2

HISTORY = "bench_floor_history"  # bench/apply.py leaves this table out of the schema comparison


def main(url: str, files: list[str]) -> int:
    conn = psycopg2.connect(url)
    conn.autocommit = True  # the messages carry their own BEGIN and COMMIT
    cur = conn.cursor()
    cur.execute(
        f"CREATE TABLE {HISTORY} (rank int PRIMARY KEY, script text NOT NULL, applied_on timestamptz)"
    )
    for rank, path in enumerate(files, start=1):
        with open(path, encoding="utf-8") as f:
            sql = f.read()
        row = cur.mogrify(f"INSERT INTO {HISTORY} VALUES (%s, %s, now());", (rank, path)).decode()
        cur.execute(f"BEGIN;\n{sql}\n;\n{row}\nCOMMIT;")
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
