import { describe, expect, inject, it } from "vitest";
import { isSerializationFailure, withTransaction } from "../src/index.js";
import { FIXTURE_SCHEMA, type FixtureDB } from "./fixture.js";
import { useFreshDatabase } from "./support.js";

describe("isSerializationFailure", () => {
  it("recognises 40001 and 40P01, also as a cause, and nothing else", () => {
    expect(isSerializationFailure(Object.assign(new Error("x"), { code: "40001" }))).toBe(true);
    expect(isSerializationFailure({ code: "40P01" })).toBe(true);
    expect(isSerializationFailure(new Error("wrapped", { cause: { code: "40001" } }))).toBe(true);
    expect(isSerializationFailure(Object.assign(new Error("x"), { code: "23505" }))).toBe(false);
    expect(isSerializationFailure(new Error("40001"))).toBe(false);
    expect(isSerializationFailure(undefined)).toBe(false);
  });
});

describe.each(inject("backends"))("withTransaction on %s", (backend) => {
  const db = useFreshDatabase(backend);
  const store = () => db().forSchema<FixtureDB>(FIXTURE_SCHEMA);
  const counter = async () =>
    (await store().selectFrom("counter").select("value").where("id", "=", "main").executeTakeFirstOrThrow()).value;

  it("commits on success and rolls back on error without retrying it", async () => {
    const before = await counter();
    await withTransaction(store(), (trx) =>
      trx.updateTable("counter").set((eb) => ({ value: eb("value", "+", 1n) })).execute(),
    );
    let attempts = 0;
    await expect(
      withTransaction(store(), async (trx) => {
        attempts++;
        await trx.updateTable("counter").set((eb) => ({ value: eb("value", "+", 100n) })).execute();
        throw new Error("business rule");
      }),
    ).rejects.toThrow("business rule");
    expect(attempts).toBe(1);
    expect(await counter()).toBe(before + 1n);
  });

  it.runIf(backend === "postgres")("retries a transaction aborted by a serialization failure", async () => {
    const before = await counter();
    const attempts = await raceTwoIncrements({ retries: 3 });
    // Both increments land; one of them was aborted once and re-run.
    expect(await counter()).toBe(before + 2n);
    expect(attempts).toBe(3);
  });

  it.runIf(backend === "postgres")("rethrows the serialization failure when retries run out", async () => {
    const outcome = await raceTwoIncrements({ retries: 0 }).catch((err: unknown) => err);
    expect(isSerializationFailure(outcome)).toBe(true);
  });

  /**
   * Two SERIALIZABLE transactions both read the counter, then both write it: PostgreSQL must abort
   * one (SQLSTATE 40001). The barrier makes the overlap certain on the first attempt only.
   */
  async function raceTwoIncrements(options: { retries: number }) {
    let attempts = 0;
    let arrived = 0;
    let release!: () => void;
    const bothRead = new Promise<void>((resolve) => (release = resolve));
    const increment = () =>
      withTransaction(
        store(),
        async (trx) => {
          const first = ++attempts <= 2;
          const { value } = await trx.selectFrom("counter").select("value").where("id", "=", "main").executeTakeFirstOrThrow();
          if (first) {
            if (++arrived === 2) release();
            await bothRead;
          }
          await trx.updateTable("counter").set({ value: value + 1n }).where("id", "=", "main").execute();
        },
        { ...options, isolationLevel: "serializable" },
      );
    // allSettled: both transactions finish before the test (and the database) moves on.
    const outcomes = await Promise.allSettled([increment(), increment()]);
    const failure = outcomes.find((o) => o.status === "rejected");
    if (failure) throw failure.reason;
    return attempts;
  }
});
