import { describe, expect, it } from "vitest";
import { createRedactor } from "../src/index.js";

// Inputs shaped to make a backtracking engine go quadratic or worse on each detector: long runs of
// the characters a pattern accepts, and near-misses repeated so every position starts a candidate.
const N = 100_000;
const rep = (s: string, total = N) => s.repeat(Math.ceil(total / s.length));

const ADVERSARIAL: Record<string, string[]> = {
  email: [rep("a"), rep("a@"), rep("a@a."), `${rep("a.")}@`, `x@${rep("a-")}`, `${rep("a", 64)}@${rep("b.", 200)}`],
  phone: [rep("1"), rep("1 "), rep("1-"), rep("+1 "), rep("(415) "), `+1${rep("1")}`, rep("+1 (2) 3")],
  credit_card: [rep("4111 "), rep("4-"), rep("41111111111111111 ")],
  iban: [rep("A"), `DE89${rep("A")}`, rep("DE89 "), rep("DE89 3704 0044 0532 0130 0X ")],
  us_ssn: [rep("123-45-"), rep("1-")],
  ip_address: [rep("1.1.1."), rep("1:"), rep("a:"), rep("::"), rep("ffff:1.2.3.4."), rep("1.")],
  jwt: [`ey${rep("A")}`, `eyJ${rep("A", N / 2)}.${rep("A", N / 2)}`, rep("eyJhbGciOiJub25lIn0."), rep("eyJ.")],
  private_key: [rep("-----BEGIN PRIVATE KEY-----"), `-----BEGIN PRIVATE KEY-----${rep("A")}`, `-----BEGIN PRIVATE KEY-----${rep("x y-")}`, rep("-"), rep("-----BEGIN RSA RSA RSA ")],
  provider_keys: [
    `sk-${rep("a1")}`,
    rep("sk-"),
    `sk-ant-${rep("a1")}`,
    rep("AKIA"),
    `ghp_${rep("a")}`,
    `github_pat_${rep("_")}`,
    `xoxb-${rep("1-")}`,
    rep("xoxb-1"),
    `https://hooks.slack.com/services/${rep("/")}`,
  ],
  whitespace: [rep("\n"), rep(" "), rep("\u00a0")],
};

describe("adversarial inputs (hang guard, not a benchmark)", () => {
  const redactor = createRedactor({ custom: [{ name: "ticket", pattern: "(a+)+b" }] });

  it("scans every adversarial input with every detector in under 5 s in total", () => {
    const started = performance.now();
    const slowest: [string, number][] = [];
    for (const [family, inputs] of Object.entries(ADVERSARIAL)) {
      for (const input of inputs) {
        const t = performance.now();
        redactor.redactText(input);
        slowest.push([`${family}: ${JSON.stringify(input.slice(0, 24))}…`, performance.now() - t]);
      }
    }
    const elapsed = performance.now() - started;
    slowest.sort((a, b) => b[1] - a[1]);
    console.log(`adversarial suite: ${elapsed.toFixed(0)} ms; slowest: ${slowest.slice(0, 3).map(([k, ms]) => `${k} ${ms.toFixed(0)} ms`).join(", ")}`);
    expect(elapsed).toBeLessThan(5_000);
  });

  it("never scans past maxInputChars", () => {
    const small = createRedactor({ maxInputChars: 1_000 });
    const input = `${"x".repeat(990)} alice@example.com ${"y".repeat(5_000)}`;
    const { text, findings } = small.redactText(input);
    // The email straddles the cut, so only "alice" is scanned: it must not be reported past 1000.
    expect(findings.every((f) => f.end <= 1_000)).toBe(true);
    expect(text).toBe(`${input.slice(0, 1_000)}[TRUNCATED ${input.length - 1_000} CHARS]`);
  });

  it("does not split a surrogate pair when truncating", () => {
    const small = createRedactor({ maxInputChars: 4 });
    expect(small.redactText("abc😀def").text).toBe("abc[TRUNCATED 5 CHARS]");
  });
});
