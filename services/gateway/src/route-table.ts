import { getOption, hasOption, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { fieldRulesSchema } from "@clasper/service-kit";
import { http as httpAnnotation, success_status as successStatusOption, type HttpRule } from "@clasper/proto";

export type HttpVerb = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/** One REST binding of one RPC, read from its google.api.http annotation. */
export interface RestRoute {
  readonly verb: HttpVerb;
  /** The annotation's template, e.g. /traces/{trace_id}. */
  readonly template: string;
  /** The same path in router syntax, e.g. /traces/:trace_id. */
  readonly routerPath: string;
  /** Names of request fields bound from path segments. */
  readonly pathFields: readonly string[];
  /** "*" = whole body, "" = no body (query string binds instead), else one request field. */
  readonly body: string;
  /** Status of a successful answer: 200, or what the RPC's success_status option says. */
  readonly successStatus: number;
  readonly service: DescService;
  readonly method: DescMethod;
}

function verbAndPath(rule: HttpRule): [HttpVerb, string] | undefined {
  switch (rule.pattern.case) {
    case "get":
      return ["GET", rule.pattern.value];
    case "post":
      return ["POST", rule.pattern.value];
    case "put":
      return ["PUT", rule.pattern.value];
    case "patch":
      return ["PATCH", rule.pattern.value];
    case "delete":
      return ["DELETE", rule.pattern.value];
    default:
      return undefined;
  }
}

function toRoute(rule: HttpRule, service: DescService, method: DescMethod): RestRoute {
  const found = verbAndPath(rule);
  if (!found) throw new Error(`${method.parent.typeName}/${method.name}: unsupported http rule ${rule.pattern.case}`);
  const [verb, template] = found;
  const pathFields: string[] = [];
  const routerPath = template.replace(/\{([a-z0-9_.]+)(=[^}]*)?\}/g, (_m, field: string) => {
    pathFields.push(field);
    return `:${field}`;
  });
  for (const field of pathFields) {
    if (!method.input.fields.some((f) => f.name === field)) {
      throw new Error(`${template}: path field ${field} is not a field of ${method.input.typeName}`);
    }
  }
  const successStatus = hasOption(method, successStatusOption) ? getOption(method, successStatusOption) : 200;
  return { verb, template, routerPath, pathFields, body: rule.body, successStatus, service, method };
}

/** Every REST route declared by the given services, primary bindings first. */
export function restRoutes(services: readonly DescService[]): RestRoute[] {
  const routes: RestRoute[] = [];
  for (const service of services) {
    for (const method of service.methods) {
      if (!hasOption(method, httpAnnotation)) continue;
      const rule = getOption(method, httpAnnotation);
      routes.push(toRoute(rule, service, method));
      for (const extra of rule.additionalBindings) routes.push(toRoute(extra, service, method));
    }
  }
  return routes;
}

/**
 * Whether each path parameter can be a value of its field: a segment its field's pattern refuses
 * (`/traces/diff` against `/traces/{trace_id}`) names no resource of that route, so a 405's
 * `Allow` header leaves the route's verb out. The route still answers such a path (400 naming the
 * field) when it is the only one for the verb.
 */
export function pathParamsFit(route: RestRoute, params: Readonly<Record<string, string | undefined>>): boolean {
  let patterns = pathPatterns.get(route);
  if (!patterns) {
    patterns = pathFieldPatterns(route);
    pathPatterns.set(route, patterns);
  }
  return patterns.every(([name, pattern]) => pattern.test(params[name] ?? ""));
}

const pathPatterns = new WeakMap<RestRoute, readonly (readonly [string, RegExp])[]>();

function pathFieldPatterns(route: RestRoute): (readonly [string, RegExp])[] {
  const out: (readonly [string, RegExp])[] = [];
  for (const name of route.pathFields) {
    const pattern = fieldRulesSchema(route.method.input.fields.find((f) => f.name === name)!)?.keywords["pattern"];
    if (typeof pattern !== "string") continue;
    try {
      out.push([name, new RegExp(pattern, "u")]);
    } catch {
      // an RE2-only pattern: the route may serve any value
    }
  }
  return out;
}
