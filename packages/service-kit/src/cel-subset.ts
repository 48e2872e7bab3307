import { isFieldSet, ScalarType, type DescField, type DescMessage, type Message } from "@bufbuild/protobuf";

/*
 * The message-level CEL rules of our contracts are cross-field checks ("label_value requires
 * label_key", "min_cost_micros must not exceed max_cost_micros"). protovalidate's CEL
 * interpreter spends 100-200 µs of CPU a request on them inside the busy server (5 µs in a tight
 * loop), more than the listing they guard costs to render. This compiles the small subset those
 * rules are written in to plain property reads, for validation.ts's acceptance check:
 *   this.<field> of a singular, non-oneof string, signed integer or enum field;
 *   has(this.<field>) of any field; string ('...', "...") and decimal integer literals;
 *   == and != on two strings or two integers; <, <=, >, >= on two integers;
 *   !, &&, || and parentheses, with CEL's precedence.
 * An expression outside the subset throws NotInSubset, and its message type keeps protovalidate.
 */

export class NotInSubset extends Error {}

type Kind = "bool" | "int" | "string";
type Value = boolean | bigint | string;
interface Node {
  kind: Kind;
  value: (message: Record<string, unknown>) => Value;
}

const TOKEN = /\s*(\|\||&&|==|!=|<=|>=|[<>!().]|'[^'\\\n]*'|"[^"\\\n]*"|\d+|[A-Za-z_][A-Za-z0-9_]*)/y;
const RELATIONS = new Set(["==", "!=", "<", "<=", ">", ">="]);
const SIGNED_INTEGERS = new Set([ScalarType.INT32, ScalarType.SINT32, ScalarType.SFIXED32, ScalarType.INT64, ScalarType.SINT64, ScalarType.SFIXED64]);
const INT64_MAX = 2n ** 63n - 1n;

function tokenize(expression: string): string[] {
  const tokens: string[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < expression.length) {
    const at = TOKEN.lastIndex;
    const match = TOKEN.exec(expression);
    if (!match) {
      if (expression.slice(at).trim() === "") break;
      throw new NotInSubset(`unexpected "${expression.slice(at, at + 10)}"`);
    }
    tokens.push(match[1]!);
  }
  return tokens;
}

/** The value CEL reads from `this.<field>`: an unset field reads as its zero value. */
function fieldValue(field: DescField): Node {
  const local = field.localName;
  if (field.oneof !== undefined) throw new NotInSubset(`${field.name} is in a oneof`);
  if (field.fieldKind === "enum" || (field.fieldKind === "scalar" && SIGNED_INTEGERS.has(field.scalar) && !field.longAsString)) {
    return { kind: "int", value: (m) => BigInt((m[local] as number | bigint | undefined) ?? 0) };
  }
  if (field.fieldKind === "scalar" && field.scalar === ScalarType.STRING) {
    return { kind: "string", value: (m) => (m[local] as string | undefined) ?? "" };
  }
  throw new NotInSubset(`${field.name} is not a string, signed integer or enum`);
}

function ofKind(kind: Kind, node: Node): Node {
  if (node.kind !== kind) throw new NotInSubset(`expected a ${kind}, got a ${node.kind}`);
  return node;
}

function compare(op: string, left: Node, right: Node): Node {
  if (left.kind !== right.kind || left.kind === "bool" || (left.kind === "string" && op !== "==" && op !== "!=")) {
    throw new NotInSubset(`${left.kind} ${op} ${right.kind}`);
  }
  const a = left.value;
  const b = right.value;
  switch (op) {
    case "==":
      return { kind: "bool", value: (m) => a(m) === b(m) };
    case "!=":
      return { kind: "bool", value: (m) => a(m) !== b(m) };
    case "<":
      return { kind: "bool", value: (m) => a(m) < b(m) };
    case "<=":
      return { kind: "bool", value: (m) => a(m) <= b(m) };
    case ">":
      return { kind: "bool", value: (m) => a(m) > b(m) };
    default:
      return { kind: "bool", value: (m) => a(m) >= b(m) };
  }
}

function parser(desc: DescMessage, tokens: readonly string[]) {
  let at = 0;
  const peek = () => tokens[at];
  const take = (expected?: string): string => {
    const token = tokens[at++];
    if (token === undefined || (expected !== undefined && token !== expected)) throw new NotInSubset(`expected ${expected ?? "more"} at token ${at}`);
    return token;
  };
  const fieldOfThis = (): DescField => {
    take("this");
    take(".");
    const name = take();
    const field = desc.fields.find((f) => f.name === name);
    if (!field) throw new NotInSubset(`${desc.typeName} has no field ${name}`);
    if (peek() === ".") throw new NotInSubset("nested field access");
    return field;
  };

  function primary(): Node {
    const token = peek();
    if (token === "(") {
      take("(");
      const inner = or();
      take(")");
      return inner;
    }
    if (token === "has") {
      take("has");
      take("(");
      const field = fieldOfThis();
      take(")");
      return { kind: "bool", value: (m) => isFieldSet(m as Message, field) };
    }
    if (token === "this") return fieldValue(fieldOfThis());
    const literal = take();
    if (/^['"]/.test(literal)) {
      const text = literal.slice(1, -1);
      return { kind: "string", value: () => text };
    }
    if (/^(0|[1-9]\d*)$/.test(literal) && BigInt(literal) <= INT64_MAX) {
      const number = BigInt(literal);
      return { kind: "int", value: () => number };
    }
    throw new NotInSubset(`unsupported "${literal}"`);
  }

  function unary(): Node {
    if (peek() !== "!") return primary();
    take("!");
    const operand = ofKind("bool", unary()).value;
    return { kind: "bool", value: (m) => !operand(m) };
  }

  function relation(): Node {
    const left = unary();
    const op = peek();
    if (op === undefined || !RELATIONS.has(op)) return left;
    take();
    const node = compare(op, left, unary());
    if (RELATIONS.has(peek() ?? "")) throw new NotInSubset("chained relation");
    return node;
  }

  /** `operand (op operand)*`, left to right: && over relations, || over &&-chains. */
  function logical(op: "&&" | "||", operand: () => Node): Node {
    let node = operand();
    while (peek() === op) {
      take();
      const [a, b] = [ofKind("bool", node).value, ofKind("bool", operand()).value];
      node = { kind: "bool", value: op === "&&" ? (m) => a(m) === true && b(m) === true : (m) => a(m) === true || b(m) === true };
    }
    return node;
  }

  function or(): Node {
    return logical("||", () => logical("&&", relation));
  }

  return () => {
    const node = ofKind("bool", or());
    if (at !== tokens.length) throw new NotInSubset(`unexpected "${tokens[at]}"`);
    return node;
  };
}

/** True exactly when the CEL rule `expression` holds for a message of `desc`; throws NotInSubset outside the subset. */
export function compileCelSubset(desc: DescMessage, expression: string): (message: Record<string, unknown>) => boolean {
  const value = parser(desc, tokenize(expression))().value;
  return (m) => value(m) === true;
}
