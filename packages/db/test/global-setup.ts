import type { TestProject } from "vitest/node";
import {
  probePostgres,
  setupTemplate,
  testBackendFromEnv,
  testDatabaseUrl,
  type TestBackend,
} from "../src/testing.js";
import { FIXTURE_SCHEMA, fixtureMigrations, migrateFixture, TEMPLATE } from "./fixture.js";

declare module "vitest" {
  export interface ProvidedContext {
    backends: TestBackend[];
  }
}

/**
 * The storage suite runs on every backend it can reach: PGlite always, PostgreSQL when
 * TEST_DATABASE_URL answers. When it does not, say so loudly (and fail outright if
 * CLASPER_TEST_DB=postgres asked for it) rather than quietly testing less.
 */
export default async function setup(project: TestProject): Promise<void> {
  const backends: TestBackend[] = ["pglite"];
  const probe = await probePostgres(testDatabaseUrl());
  if (probe.reachable) {
    backends.push("postgres");
  } else if (testBackendFromEnv() === "postgres") {
    throw new Error(`CLASPER_TEST_DB=postgres but PostgreSQL is unreachable: ${probe.reason}`);
  } else {
    console.warn(
      `\n[@clasper/db] PostgreSQL unreachable (${probe.reason}).\n` +
        `[@clasper/db] Running the storage suite on PGlite ONLY. Start a server with scripts/ci-postgres.sh.\n`,
    );
  }
  console.info(`[@clasper/db] storage suite backends: ${backends.join(", ")}`);
  await setupTemplate({
    name: TEMPLATE,
    migrate: migrateFixture,
    migrations: { [FIXTURE_SCHEMA]: fixtureMigrations },
    backends,
  });
  project.provide("backends", backends);
}
