import type { Interceptor } from "@connectrpc/connect";
import type { DescMessage } from "@bufbuild/protobuf";
import { pathToString } from "@bufbuild/protobuf/reflect";
import { createValidator, type Validator } from "@bufbuild/protovalidate";
import { invalidField } from "@clasper/core";

/**
 * Enforces the protovalidate rules written in the .proto files on every request, and reports the
 * first violation as our ErrorInfo (field path + reason) so every caller, not only the gateway,
 * gets the same "which field, why" answer. @connectrpc/validate only attaches buf.validate
 * Violations, which the gateway would have to re-interpret.
 */
export function validationInterceptor(validator: Validator = createValidator()): Interceptor {
  const check = (schema: DescMessage, message: Parameters<Validator["validate"]>[1]) => {
    const result = validator.validate(schema, message);
    if (result.kind === "valid") return;
    if (result.kind === "invalid") {
      const first = result.error.violations[0];
      if (first) {
        const field = pathToString(first.field);
        throw invalidField(field === "" ? "(request)" : field, first.message);
      }
    }
    throw result.error;
  };
  return (next) => (req) => {
    if (!req.stream) {
      check(req.method.input, req.message);
      return next(req);
    }
    const source = req.message;
    return next({
      ...req,
      message: (async function* () {
        for await (const message of source) {
          check(req.method.input, message);
          yield message;
        }
      })(),
    });
  };
}
