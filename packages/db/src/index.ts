export { createDatabase } from "./create-database.js";
export { DEFAULT_DATA_DIR, type Database, type DatabaseKind, type DatabaseOptions } from "./database.js";
export { PLAN_PER_CALL } from "./prepared-pool.js";
export { migrateSchema, MigrationError, type Migration } from "./migrate.js";
export { isSerializationFailure, withTransaction, type TransactionOptions } from "./transaction.js";
