import { randomBytes, randomUUID } from "node:crypto";
import { ConnectError, createClient, createRouterTransport, type Client, type ConnectRouter } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import { afterAll, beforeAll } from "vitest";
import {
  buildPrincipal,
  CONTEXT_HEADER,
  createContextSigner,
  createContextVerifier,
  serverAuthInterceptor,
  type ContextSigner,
  type ContextVerifier,
  type Principal,
  type Role,
} from "@clasper/auth";
import { freshDatabase, type FreshDatabase } from "@clasper/db/testing";
import { GovernanceService } from "@clasper/proto";
import { validationInterceptor } from "@clasper/service-kit";
import { BudgetBatcher } from "../src/budget-batcher.js";
import { DEFAULT_BUDGET } from "../src/budget-check.js";
import { createDecisionTokens, type DecisionTokens } from "../src/decision-token.js";
import { AuditHandlers } from "../src/handlers/audit.js";
import { BudgetHandlers } from "../src/handlers/budgets.js";
import { DecisionHandlers } from "../src/handlers/decisions.js";
import { PolicyHandlers } from "../src/handlers/policies.js";
import { PreflightHandlers } from "../src/handlers/preflight.js";
import { RedactionRulesHandlers } from "../src/handlers/redaction-rules.js";
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
 * The policies-area handlers (with the audit log they write, budgets and redaction rules) on a fresh database behind serverAuthInterceptor and the validation
 * interceptor (in-memory tier): what the gateway's callers reach, minus the socket.
 */
export async function policiesHarness(): Promise<PoliciesHarness> {
  const database = await freshDatabase("governance");
  const db = database.forSchema<GovernanceDatabase>(GOVERNANCE_SCHEMA);
  const tokens = createDecisionTokens(randomBytes(32), 600);
  const budgets = new BudgetBatcher(db);
  const router = routes(
    new PolicyHandlers(db),
    new DecisionHandlers(db, tokens),
    new PreflightHandlers({ db, budgets, tokens, decisionTtlSeconds: 3600, budgetDefaults: DEFAULT_BUDGET }),
    new AuditHandlers(db),
    new BudgetHandlers(db, DEFAULT_BUDGET, budgets),
    new RedactionRulesHandlers(db),
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
      return signedClient(router, principal, { signer, verifier });
    },
    drop: () => database.drop(),
  };
}

/**
 * A Connect client of `router` through the real auth and validation interceptors (in-memory
 * tier), every call carrying `principal` in a context token signed by `keys.signer`.
 */
export function signedClient(
  router: (router: ConnectRouter) => void,
  principal: Principal,
  keys: { signer: ContextSigner; verifier: ContextVerifier },
): Client<typeof GovernanceService> {
  const transport = createRouterTransport(router, {
    router: { interceptors: [serverAuthInterceptor({ verifier: keys.verifier }), validationInterceptor()] },
    transport: {
      interceptors: [
        (next) => async (req) => {
          req.header.set(CONTEXT_HEADER, await keys.signer.sign({ principal, requestId: randomUUID() }));
          return next(req);
        },
      ],
    },
  });
  return createClient(GovernanceService, transport);
}

/**
 * Registers a policiesHarness for the calling test file (built in `beforeAll`, dropped in
 * `afterAll`) and returns a stand-in that forwards to it once built.
 */
export function usePoliciesHarness(): PoliciesHarness {
  let harness: PoliciesHarness | undefined;
  beforeAll(async () => {
    harness = await policiesHarness();
  });
  afterAll(async () => {
    await harness?.drop();
  });
  const built = (): PoliciesHarness => {
    if (!harness) throw new Error("the policies harness is used before beforeAll built it");
    return harness;
  };
  return {
    get database() {
      return built().database;
    },
    get db() {
      return built().db;
    },
    get tokens() {
      return built().tokens;
    },
    client: (caller) => built().client(caller),
    drop: () => built().drop(),
  };
}

/** The ConnectError `promise` rejects with; throws when it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<ConnectError> {
  try {
    await promise;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected a rejection");
}
