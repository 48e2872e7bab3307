import type { Logger } from "pino";

/**
 * SIGTERM/SIGINT: stop accepting, drain in-flight calls (the stop function's job), exit 0.
 * A second signal during the drain exits at once with 1.
 */
export function exitOnSignals(stop: () => Promise<void>, logger: Logger): void {
  let draining = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (draining) {
      logger.warn({ signal }, "second signal during shutdown; exiting now");
      process.exit(1);
    }
    draining = true;
    logger.info({ signal }, "shutting down: draining in-flight requests");
    stop().then(
      () => {
        logger.info("shutdown complete");
        logger.flush?.();
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}
