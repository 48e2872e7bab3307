import { context, createContextKey, ROOT_CONTEXT } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";

const probeKey = createContextKey("clasper.telemetry.context-manager-probe");

/**
 * Without a context manager, context.with() is a no-op: the active span would never reach the
 * handler, the log mixin or outgoing calls. The API has no getter for the global manager and
 * logs an error on a second registration, so we probe: only a working manager makes a value set
 * by context.with() visible inside the callback.
 */
export function ensureContextManager(): void {
  const active = context.with(ROOT_CONTEXT.setValue(probeKey, true), () => context.active().getValue(probeKey));
  if (active === true) return;
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
}
