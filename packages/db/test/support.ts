import { afterAll, beforeAll } from "vitest";
import { freshDatabase, type FreshDatabase, type TestBackend } from "../src/testing.js";
import { TEMPLATE } from "./fixture.js";

/** Registers beforeAll/afterAll for a fresh copy of the fixture template on `backend`. */
export function useFreshDatabase(backend: TestBackend): () => FreshDatabase {
  let db: FreshDatabase | undefined;
  beforeAll(async () => {
    db = await freshDatabase(TEMPLATE, { backend });
  });
  afterAll(async () => {
    await db?.drop();
  });
  return () => {
    if (!db) throw new Error("fresh database not ready: beforeAll has not run");
    return db;
  };
}
