import type { Migration } from "kysely";

/** Every migration of the workspace service, in order (none yet: its RPCs answer Unimplemented). */
export const migrations: Record<string, Migration> = {};
