"""require-concurrent-index-creation: CREATE INDEX on an existing table without CONCURRENTLY."""

from __future__ import annotations

from pglast import ast
from pglast.visitors import Ancestor

from validator.safety.nodes import filled, manual, qualified, relname
from validator.safety.rule import Example, Rule, RuleDocs


class RequireConcurrentIndexCreation(Rule):
    id = "require-concurrent-index-creation"
    category = "locking"
    squawk = "require-concurrent-index-creation"
    summary = "Build indexes on existing tables with CREATE INDEX CONCURRENTLY."
    docs = RuleDocs(
        why="A plain CREATE INDEX blocks every INSERT, UPDATE and DELETE on the table until the whole "
        "index is built, which on a large table is minutes to hours of failed writes.",
        lock="SHARE on the table (reads continue, all writes wait).",
        anti_pattern="CREATE INDEX orders_customer_idx ON orders (customer_id);",
        best_practice="-- in its own non-transactional migration\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_idx ON orders (customer_id);",
        manual=manual("sql-createindex", "SQL-CREATEINDEX-CONCURRENTLY"),
    )
    examples = (
        Example("CREATE INDEX orders_customer_idx ON orders (customer_id);", True),
        Example(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_idx ON orders (customer_id);", False
        ),
        Example(
            "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint);\n"
            "CREATE INDEX orders_customer_idx ON orders (customer_id);",
            False,
            title="a table created earlier in the same file is new and empty",
        ),
    )
    cases = (
        Example('-- CreateIndex\nCREATE UNIQUE INDEX "User_email_key" ON "User"("email");', True),
        Example("CREATE INDEX index_orders_on_customer_id ON public.orders USING btree (customer_id);", True),
        Example("CREATE INDEX orders_open_idx ON orders (created_at) WHERE status = 'open';", True),
        Example(
            "CREATE INDEX documents_body_fts ON documents USING gin (to_tsvector('english', body));", True
        ),
        Example(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_open_idx ON orders (created_at)\n"
            "    WHERE status = 'open';",
            False,
        ),
        Example(
            "CREATE TABLE events (id bigint, created_at timestamptz) PARTITION BY RANGE (created_at);\n"
            "CREATE INDEX events_created_at_idx ON events (created_at);",
            False,
            title="a partitioned table created in the same file",
        ),
        Example(
            "CREATE INDEX events_created_at_idx ON ONLY events (created_at);",
            False,
            title="ON ONLY a partitioned parent: an empty index, each partition's is built concurrently",
        ),
        Example(
            {
                "V1__events.sql": "CREATE TABLE audit (id bigint, at timestamptz);",
                "V2__index.sql": "CREATE INDEX audit_at_idx ON ONLY audit (at);",
            },
            True,
            title="ONLY on a plain table builds the whole index",
        ),
        Example(
            "DO $$\nBEGIN\n    IF NOT EXISTS (SELECT FROM pg_indexes WHERE indexname = "
            "'orders_status_idx') THEN\n"
            "        CREATE INDEX orders_status_idx ON orders (status);\n    END IF;\nEND $$;",
            True,
            title="inside a DO block the index is built the same way",
        ),
    )

    def visit_IndexStmt(self, ancestors: Ancestor, node: ast.IndexStmt) -> None:
        if node.concurrent or self.ctx.is_new_table(node.relation):
            return
        relation = filled(node.relation, "IndexStmt.relation")
        table = relname(relation)
        catalog = self.ctx.catalog
        if not relation.inh and (table in catalog.partitioned or table not in catalog.columns):
            return  # ON ONLY a partitioned table: an empty, invalid parent index, built per partition later
        self.report(
            node.relation,
            f"Building index {node.idxname or '(unnamed)'} on {qualified(node.relation)} "
            "blocks all writes to the table until the index is complete.",
            "Use CREATE INDEX CONCURRENTLY in a migration of its own (it cannot run in a "
            "transaction); on a partitioned table create it ON ONLY the parent, build each "
            "partition's index concurrently and ATTACH it.",
        )
