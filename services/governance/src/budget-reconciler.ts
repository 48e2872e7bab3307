import type { Kysely } from "kysely";
import type { Logger } from "pino";
import { releaseExpiredReservations, tenantsWithExpiredReservations } from "./store/budgets.js";
import type { GovernanceDatabase } from "./store/schema.js";

export const DEFAULT_RECONCILE_INTERVAL_MS = 30_000;

/** kysely after destroy(), pg after pool.end(), PGlite after close(). */
const DATABASE_CLOSED = /driver has already been destroyed|after calling end on the pool|pglite is closed/i;

export interface BudgetReconcilerOptions {
  intervalMs?: number;
  logger?: Pick<Logger, "warn" | "info">;
  /** Injectable clock (tests). */
  now?: () => Date;
}

export interface BudgetReconciler {
  /** One pass: releases every expired open reservation; resolves to how many were released. */
  runOnce(): Promise<number>;
  stop(): void;
}

/**
 * Returns the holds of reservations whose execution never settled or released them (crashed
 * runtime, lost network) once their TTL has passed. Each tenant is one atomic statement under its
 * budget row lock, so any number of replicas may run this at once without double-releasing.
 * Reserve also releases its own tenant's expired reservations, so the reconciler only matters for
 * tenants that stop reserving. The timer is unref'd: it never keeps a process alive.
 */
export function startBudgetReconciler(db: Kysely<GovernanceDatabase>, options: BudgetReconcilerOptions = {}): BudgetReconciler {
  const now = options.now ?? (() => new Date());
  let running: Promise<number> | undefined;
  let stopped = false;

  const pass = async (): Promise<number> => {
    const at = now();
    let released = 0;
    for (const tenantId of await tenantsWithExpiredReservations(db, at)) {
      released += (await releaseExpiredReservations(db, tenantId, at)).count;
    }
    return released;
  };
  const runOnce = () =>
    (running ??= pass().finally(() => {
      running = undefined;
    }));

  const timer = setInterval(() => {
    if (stopped) return;
    runOnce().then(
      (count) => {
        if (count > 0) options.logger?.info({ released: count }, "released expired budget reservations");
      },
      (err: unknown) => {
        // The service has no shutdown hook for background work: once its database is closed,
        // the reconciler stops itself instead of logging a failure every interval.
        if (DATABASE_CLOSED.test(err instanceof Error ? err.message : String(err))) stop();
        else if (!stopped) options.logger?.warn({ err }, "budget reconciler pass failed; retrying next interval");
      },
    );
  }, options.intervalMs ?? DEFAULT_RECONCILE_INTERVAL_MS);
  timer.unref();

  function stop(): void {
    stopped = true;
    clearInterval(timer);
  }
  return { runOnce, stop };
}
