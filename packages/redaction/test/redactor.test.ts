import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createRedactor, RedactionConfigError, validateCustomRule } from "../src/index.js";

const SALT = "tenant-a-salt-0123456789";
const hmac12 = (salt: string, value: string) => createHmac("sha256", salt).update(value).digest("hex").slice(0, 12);

describe("strategies", () => {
  const text = "Mail bob@example.com, card 4111 1111 1111 1111.";

  it("mask replaces each value with its type tag", () => {
    expect(createRedactor().redactText(text).text).toBe("Mail [EMAIL], card [CREDIT_CARD].");
  });

  it("hash tags the value with a salted HMAC prefix", () => {
    expect(createRedactor({ strategy: "hash", salt: SALT }).redactText(text).text).toBe(
      `Mail [EMAIL:${hmac12(SALT, "bob@example.com")}], card [CREDIT_CARD:${hmac12(SALT, "4111 1111 1111 1111")}].`,
    );
  });

  it("drop removes the value", () => {
    expect(createRedactor({ strategy: "drop" }).redactText(text).text).toBe("Mail , card .");
  });

  it("reports findings with offsets into the input", () => {
    const { findings } = createRedactor().redactText(text);
    expect(findings).toEqual([
      { type: "email", start: 5, end: 20 },
      { type: "credit_card", start: 27, end: 46 },
    ]);
  });

  it("requires a salt for hashing", () => {
    expect(() => createRedactor({ strategy: "hash" })).toThrow(RedactionConfigError);
    expect(() => createRedactor({ custom: [{ name: "ticket", pattern: "T-[0-9]{4}", strategy: "hash" }] })).toThrow(/salt is required/);
  });

  it("rejects an unknown strategy and a bad maxInputChars", () => {
    expect(() => createRedactor({ strategy: "blur" as "mask" })).toThrow(/strategy must be one of/);
    expect(() => createRedactor({ maxInputChars: 0 })).toThrow(/maxInputChars/);
  });
});

describe("summarize", () => {
  it("keeps the first two and last two characters of a finding, by code point", () => {
    const redactor = createRedactor({ strategy: "summarize" });
    expect(redactor.redactText("mail carol@example.com now").text).toBe("mail ca..om now");
    expect(redactor.redactText("call 415-555-0132").text).toBe("call 41..32");
    const custom = createRedactor({ custom: [{ name: "emoji_id", pattern: "ID-\\S+", strategy: "summarize" }] });
    expect(custom.redactText("ID-ab😀😀").text).toBe("ID..😀😀");
  });

  it("masks a custom rule's match unless the rule itself asks for summarize", () => {
    const redactor = createRedactor({
      strategy: "summarize",
      custom: [{ name: "password", pattern: "password=\\S+" }, { name: "order", pattern: "ORD-[0-9]+", strategy: "summarize" }],
    });
    expect(redactor.redactText("password=hunter22 ORD-123456").text).toBe("[PASSWORD] OR..56");
  });

  it("masks a finding of four characters or fewer, and every credential", () => {
    const redactor = createRedactor({ strategy: "summarize", custom: [{ name: "pin", pattern: "PIN[0-9]" }] });
    expect(redactor.redactText("code PIN7").text).toBe("code [PIN]");
    const key = "sk-ant-api03-" + "a1B2c3D4".repeat(10);
    expect(redactor.redactText(`key ${key}`).text).toBe("key [ANTHROPIC_KEY]");
  });
});

describe("hash stability", () => {
  const value = "Contact carol@example.com";
  it("is stable for one salt, so equal values correlate within a tenant", () => {
    const a = createRedactor({ strategy: "hash", salt: SALT }).redactText(value).text;
    const b = createRedactor({ strategy: "hash", salt: SALT }).redactText(value).text;
    expect(a).toBe(b);
    expect(a).toMatch(/^Contact \[EMAIL:[0-9a-f]{12}\]$/);
  });
  it("differs between salts, so tenants cannot correlate each other's values", () => {
    const a = createRedactor({ strategy: "hash", salt: SALT }).redactText(value).text;
    const b = createRedactor({ strategy: "hash", salt: "tenant-b-salt-9876543210" }).redactText(value).text;
    expect(a).not.toBe(b);
  });
  it("differs between values", () => {
    const r = createRedactor({ strategy: "hash", salt: SALT });
    expect(r.redactText("a@example.com").text).not.toBe(r.redactText("b@example.com").text);
  });
});

describe("overlap resolution", () => {
  const r = createRedactor();

  it("keeps the longer finding: an email whose domain looks like an IP is one email", () => {
    expect(r.redactText("ops@10.0.0.1.nip.io").findings).toEqual([{ type: "email", start: 0, end: 19 }]);
  });

  it("keeps the IPv6 address rather than its embedded IPv4 tail", () => {
    expect(r.redactText("peer ::ffff:192.0.2.1 up").text).toBe("peer [IP_ADDRESS] up");
  });

  it("lets a credential win over the email-like URL userinfo around it", () => {
    const token = "ghp_16C7e42F292c6912E7710c838347Ae178B4a";
    expect(r.redactText(`https://${token}@github.com/org/repo`).text).toBe("https://[GITHUB_TOKEN]@github.com/org/repo");
  });

  it("replaces many adjacent findings of different lengths without corrupting offsets", () => {
    const text = "a@example.com,8.8.8.8;123-45-6789 (415) 555-0123|x@y.io";
    const out = r.redactText(text);
    expect(out.text).toBe("[EMAIL],[IP_ADDRESS];[US_SSN] [PHONE]|[EMAIL]");
    // Each finding still points at the original value.
    expect(out.findings.map((f) => text.slice(f.start, f.end))).toEqual(["a@example.com", "8.8.8.8", "123-45-6789", "(415) 555-0123", "x@y.io"]);
  });

  it("keeps a PEM block whole even when its body contains email- or key-like text", () => {
    const pem = "-----BEGIN PRIVATE KEY-----\nroot@example.com AKIAIOSFODNN7EXAMPLE\n-----END PRIVATE KEY-----";
    expect(r.redactText(`key: ${pem} done`).text).toBe("key: [PRIVATE_KEY] done");
  });
});

describe("private keys cut short", () => {
  it("redacts a block that lost its END line as far as its body looks like PEM", () => {
    const cut = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oOoTcI4r4mXj\nAwEHoUQDQgAE";
    expect(createRedactor().redactText(`${cut}`).text).toBe("[PRIVATE_KEY]");
  });
});

describe("redactValue", () => {
  const r = createRedactor();

  it("redacts strings deep in objects and arrays and returns the types found", () => {
    const input = {
      messages: [{ role: "user", content: "I am dave@example.com" }],
      tool: { args: { ssn: "123-45-6789", n: 3, ok: true, none: null } },
    };
    const { value, types } = r.redactValue(input);
    expect(value).toEqual({
      messages: [{ role: "user", content: "I am [EMAIL]" }],
      tool: { args: { ssn: "[US_SSN]", n: 3, ok: true, none: null } },
    });
    expect(types).toEqual(["email", "us_ssn"]);
    expect(input.messages[0]!.content).toBe("I am dave@example.com"); // input untouched
  });

  it("treats __proto__ and constructor keys as data and does not pollute prototypes", () => {
    const input = JSON.parse('{"__proto__":{"polluted":"eve@example.com"},"constructor":{"prototype":{"polluted":"yes"}},"a":[{"__proto__":{"x":1}}]}');
    const { value } = r.redactValue(input) as { value: Record<string, unknown> };
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.keys(value)).toEqual(["__proto__", "constructor", "a"]);
    expect(Object.getOwnPropertyDescriptor(value, "__proto__")?.value).toEqual({ polluted: "[EMAIL]" });
    expect((value as { polluted?: unknown }).polluted).toBeUndefined();
    expect(JSON.parse(JSON.stringify(value))).toEqual(
      JSON.parse('{"__proto__":{"polluted":"[EMAIL]"},"constructor":{"prototype":{"polluted":"yes"}},"a":[{"__proto__":{"x":1}}]}'),
    );
  });

  it("does not run accessors found in the payload", () => {
    let ran = false;
    const input = { get secret() { ran = true; return "x"; }, plain: "a@example.com" };
    expect(r.redactValue(input).value).toEqual({ plain: "[EMAIL]" });
    expect(ran).toBe(false);
  });

  it("redacts a card number sent as a JSON number", () => {
    expect(r.redactValue({ card: 4111111111111111, qty: 2 }).value).toEqual({ card: "[CREDIT_CARD]", qty: 2 });
  });

  it("replaces cycles and over-deep nesting instead of overflowing", () => {
    const cyclic: Record<string, unknown> = { a: "a@example.com" };
    cyclic.self = cyclic;
    expect(r.redactValue(cyclic).value).toEqual({ a: "[EMAIL]", self: "[CIRCULAR]" });
    let deep: unknown = "z@example.com";
    for (let i = 0; i < 1_000; i++) deep = [deep];
    expect(JSON.stringify(r.redactValue(deep).value)).toContain("[MAX_DEPTH]");
    expect(JSON.stringify(r.redactValue(deep).value)).not.toContain("z@example.com");
  });

  it("passes primitives through and redacts a bare string", () => {
    expect(r.redactValue(42).value).toBe(42);
    expect(r.redactValue(null).value).toBeNull();
    expect(r.redactValue("8.8.8.8")).toEqual({ value: "[IP_ADDRESS]", types: ["ip_address"] });
  });
});

describe("custom rules", () => {
  it("applies a valid rule with its own strategy and replacement", () => {
    const r = createRedactor({
      salt: SALT,
      custom: [
        { name: "employee_id", pattern: "EMP-[0-9]{6}", replacement: "<employee>" },
        { name: "ticket", pattern: "(?i)tkt_[a-z0-9]{8}", strategy: "hash" },
      ],
    });
    const out = r.redactText("EMP-123456 filed TKT_ab12cd34 for a@example.com");
    expect(out.text).toBe(`<employee> filed [TICKET:${hmac12(SALT, "TKT_ab12cd34")}] for [EMAIL]`);
    expect(out.findings.map((f) => f.type)).toEqual(["employee_id", "ticket", "email"]);
  });

  it("masks with [NAME] when no replacement is given", () => {
    expect(createRedactor({ custom: [{ name: "project_code", pattern: "PRJ[0-9]{3}" }] }).redactText("PRJ042").text).toBe("[PROJECT_CODE]");
  });

  it("returns undefined for a valid rule", () => {
    expect(validateCustomRule({ name: "order", pattern: "ORD-[0-9]+" })).toBeUndefined();
  });

  it.each([
    [{ name: "bad", pattern: "[" }, /invalid RE2 pattern/],
    [{ name: "backref", pattern: "(a)\\1" }, /backreferences are not supported/],
    [{ name: "named_backref", pattern: "(?P<x>a)\\k<x>" }, /backreferences are not supported/],
    [{ name: "lookahead", pattern: "foo(?=bar)" }, /lookahead and lookbehind/],
    [{ name: "empty_match", pattern: "a*" }, /matches the empty string/],
    [{ name: "Bad Name", pattern: "x" }, /name must be/],
    [{ name: "email", pattern: "x" }, /built-in detector/],
    [{ name: "huge", pattern: "a{1001}" }, /invalid RE2 pattern/],
    [{ name: "long", pattern: "a".repeat(2_000) }, /longer than 1024/],
    [{ name: "strat", pattern: "x", strategy: "blur" as "mask" }, /strategy must be one of/],
  ])("rejects %j with a reason", (rule, reason) => {
    expect(validateCustomRule(rule)).toMatch(reason);
  });

  it("makes createRedactor throw a RedactionConfigError naming the rule", () => {
    try {
      createRedactor({ custom: [{ name: "ok", pattern: "x+" }, { name: "broken", pattern: "(a)\\1" }] });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(RedactionConfigError);
      expect((err as RedactionConfigError).rule).toBe("broken");
      expect((err as Error).message).toMatch(/^custom rule "broken": backreferences/);
    }
  });

  it("rejects duplicate rule names", () => {
    expect(() => createRedactor({ custom: [{ name: "dup", pattern: "x" }, { name: "dup", pattern: "y" }] })).toThrow(/duplicate/);
  });

  it("runs a catastrophic-for-backtracking pattern in linear time", () => {
    const r = createRedactor({ detectors: [], custom: [{ name: "evil", pattern: "(a+)+b" }] });
    const started = performance.now();
    expect(r.redactText("a".repeat(100_000)).findings).toEqual([]);
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});
