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
 * TEST_DATABASE_URL answers. When it does not, say so loudly rather than quietly testing less.
 * An explicit CLASPER_TEST_DB (as `pnpm test` sets, running the suite once per backend) narrows
 * the run to that backend, and fails outright if it is an unreachable PostgreSQL.
 */
export default async function setup(project: TestProject): Promise<void> {
  const backends = await chooseBackends();
  console.info(`[@clasper/db] storage suite backends: ${backends.join(", ")}`);
  await setupTemplate({
    name: TEMPLATE,
    migrate: migrateFixture,
    migrations: { [FIXTURE_SCHEMA]: fixtureMigrations },
    backends,
  });
  project.provide("backends", backends);
}

async function chooseBackends(): Promise<TestBackend[]> {
  const requested = process.env["CLASPER_TEST_DB"] ? testBackendFromEnv() : undefined;
  if (requested === "pglite") return ["pglite"];
  const probe = await probePostgres(testDatabaseUrl());
  if (probe.reachable) return requested === "postgres" ? ["postgres"] : ["pglite", "postgres"];
  if (requested === "postgres") {
    throw new Error(`CLASPER_TEST_DB=postgres but PostgreSQL is unreachable: ${probe.reason}`);
  }
  console.warn(
    `\n[@clasper/db] PostgreSQL unreachable (${probe.reason}).\n` +
      `[@clasper/db] Running the storage suite on PGlite ONLY. Start a server with scripts/ci-postgres.sh.\n`,
  );
  return ["pglite"];
}
