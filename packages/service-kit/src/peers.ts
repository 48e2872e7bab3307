import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import {
  GovernanceService,
  RegistryService,
  RuntimeService,
  TraceService,
  WorkspaceService,
} from "@clasper/proto";
import { SERVICE_NAMES, type ServiceName } from "./names.js";

export const SERVICE_DESCRIPTORS = {
  runtime: RuntimeService,
  trace: TraceService,
  governance: GovernanceService,
  registry: RegistryService,
  workspace: WorkspaceService,
} as const;

export type PeerClients = { readonly [K in ServiceName]: Client<(typeof SERVICE_DESCRIPTORS)[K]> };

/**
 * A transport that looks its target up at call time. In one process the services are built
 * before every peer transport exists (runtime needs trace, trace needs governance, ...), so peers
 * bind late instead of forcing an order.
 */
export function lateBoundTransport(resolve: () => Transport): Transport {
  return {
    unary: (...args) => resolve().unary(...args),
    stream: (...args) => resolve().stream(...args),
  };
}

export function createPeerClients(transportFor: (name: ServiceName) => Transport): PeerClients {
  const clients = Object.fromEntries(
    SERVICE_NAMES.map((name) => [name, createClient(SERVICE_DESCRIPTORS[name], transportFor(name))]),
  );
  return clients as unknown as PeerClients;
}

/** Connect protocol, binary, over HTTP/2 cleartext: how services reach each other when distributed. */
export function remoteTransport(baseUrl: string, interceptors: Interceptor[]): Transport {
  return createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true, interceptors });
}
