import type { ConnectRouter } from "@connectrpc/connect";
import type { Migration } from "kysely";
import type { Logger } from "pino";
import type { Database } from "@clasper/db";
import type { Telemetry } from "@clasper/telemetry";
import type { ServiceName } from "./names.js";
import type { PeerClients } from "./peers.js";

export type Env = Readonly<Record<string, string | undefined>>;

/** What a service receives at construction. Nothing in a handler knows which mode it runs in. */
export interface ServiceDeps {
  /** Present for services that own a schema. */
  readonly db: Database | undefined;
  readonly peers: PeerClients;
  readonly logger: Logger;
  readonly env: Env;
  /**
   * The process's tracing; services that record execution spans (runtime) start them on its
   * tracer so span delivery ships them to the trace service. Absent in tools that only list
   * routes.
   */
  readonly telemetry?: Telemetry;
}

/** The contract every services/<name> package exports as its default. */
export interface ServiceModule {
  readonly name: ServiceName;
  /** The Postgres schema this service owns; undefined for stateless services. */
  readonly schema: string | undefined;
  readonly migrations: Record<string, Migration>;
  /** Wires stores, peer clients and handlers; registers routes; never listens. */
  build(deps: ServiceDeps): (router: ConnectRouter) => void;
}
