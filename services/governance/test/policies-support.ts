import { randomBytes, randomUUID } from "node:crypto";
import { createClient, createRouterTransport, type Client } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import { buildPrincipal, CONTEXT_HEADER, createContextSigner, createContextVerifier, serverAuthInterceptor, type Role } from "@clasper/auth";
import { freshDatabase, type FreshDatabase } from "@clasper/db/testing";
import { GovernanceService } from "@clasper/proto";
import { validationInterceptor } from "@clasper/service-kit";
import { DEFAULT_BUDGET } from "../src/budget-check.js";
import { createDecisionTokens, type DecisionTokens } from "../src/decision-token.js";
import { DecisionHandlers } from "../src/handlers/decisions.js";
import { PolicyHandlers } from "../src/handlers/policies.js";
import { PreflightHandlers } from "../src/handlers/preflight.js";
import { routes } from "../src/routes.js";
import type { GovernanceDatabase } from "../src/store/schema.js";
import { GOVERNANCE_SCHEMA } from "../src/server.js";

const SECRET = "policies-test-internal-secret-0123456789abcdef";

export interface Caller {
  tenantId?: string;
  userId?: string;
  roles?: Role[];
  workspaceId?: string;
}

export interface PoliciesHarness {
  database: FreshDatabase;
  db: Kysely<GovernanceDatabase>;
  tokens: DecisionTokens;
  /** A Connect client calling through the real auth and validation interceptors as `caller`. */
  client(caller?: Caller): Client<typeof GovernanceService>;
  drop(): Promise<void>;
}

/**
 * The policies-area handlers on a fresh database behind serverAuthInterceptor and the validation
 * interceptor (in-memory tier): what the gateway's callers reach, minus the socket.
 */
export async function policiesHarness(): Promise<PoliciesHarness> {
  const database = await freshDatabase("governance");
  const db = database.forSchema<GovernanceDatabase>(GOVERNANCE_SCHEMA);
  const tokens = createDecisionTokens(randomBytes(32), 600);
  const router = routes(
    new PolicyHandlers(db),
    new DecisionHandlers(db, tokens),
    new PreflightHandlers({ db, tokens, decisionTtlSeconds: 3600, budgetDefaults: DEFAULT_BUDGET }),
  );
  const signer = createContextSigner(SECRET);
  const verifier = createContextVerifier(SECRET);
  return {
    database,
    db,
    tokens,
    client(caller = {}) {
      const principal = buildPrincipal({
        kind: "user",
        tenantId: caller.tenantId ?? "tenant-a",
        userId: caller.userId ?? "user-1",
        roles: caller.roles ?? ["admin"],
        workspaceId: caller.workspaceId,
      });
      const transport = createRouterTransport(router, {
        router: { interceptors: [serverAuthInterceptor({ verifier }), validationInterceptor()] },
        transport: {
          interceptors: [
            (next) => async (req) => {
              req.header.set(CONTEXT_HEADER, await signer.sign({ principal, requestId: randomUUID() }));
              return next(req);
            },
          ],
        },
      });
      return createClient(GovernanceService, transport);
    },
    drop: () => database.drop(),
  };
}
