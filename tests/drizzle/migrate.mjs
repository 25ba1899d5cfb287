// Runs drizzle-orm's own PostgreSQL migrator (drizzle-orm/node-postgres/migrator, with `pg`) on a
// migrations folder, exactly as an application calls it:
//
//   DRIZZLE_MODULES=<dir with node_modules> node migrate.mjs <database url> <migrations folder> \
//       [migrationsTable] [migrationsSchema]
//
// drizzle-orm and pg are installed outside the repository (tests/drizzle/migrator.py does it), so they
// are loaded with a require() rooted at that directory.
import { createRequire } from "node:module";
import path from "node:path";

const modules = process.env.DRIZZLE_MODULES;
if (!modules) {
  console.error("DRIZZLE_MODULES must name the directory npm installed drizzle-orm and pg into");
  process.exit(2);
}
const require = createRequire(path.join(modules, "package.json"));
const pg = require("pg");
const { drizzle } = require("drizzle-orm/node-postgres");
const { migrate } = require("drizzle-orm/node-postgres/migrator");

const [url, migrationsFolder, migrationsTable, migrationsSchema] = process.argv.slice(2);
const client = new pg.Client({ connectionString: url });
await client.connect();
try {
  const config = { migrationsFolder };
  if (migrationsTable) config.migrationsTable = migrationsTable;
  if (migrationsSchema) config.migrationsSchema = migrationsSchema;
  await migrate(drizzle(client), config);
} catch (error) {
  console.error(`drizzle-orm migrate failed: ${error.message}`);
  process.exitCode = 1;
} finally {
  await client.end();
}
