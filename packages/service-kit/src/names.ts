/** The five Connect services. The gateway is a separate HTTP front end, not one of these. */
export const SERVICE_NAMES = ["runtime", "trace", "governance", "registry", "workspace"] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

export function isServiceName(value: string): value is ServiceName {
  return (SERVICE_NAMES as readonly string[]).includes(value);
}

/** `CLASPER_TRACE_URL` etc.: where a peer is reached in distributed mode. */
export function peerUrlVariable(name: ServiceName): string {
  return `CLASPER_${name.toUpperCase()}_URL`;
}
