// Labelled corpus for measuring recall and precision. Deterministic: one seeded PRNG drives every
// choice, so a run that changes the figures changed the code, not the data. Check digits (Luhn,
// IBAN mod-97) are computed here independently of the libraries the detectors use.
import { uniformFloat64 } from "pure-rand/distribution/uniformFloat64";
import { xoroshiro128plus } from "pure-rand/generator/xoroshiro128plus";

export interface Expected {
  type: string;
  start: number;
  end: number;
}

export interface Sample {
  /** Generator family, for reading failures. */
  family: string;
  text: string;
  expected: Expected[];
}

type Rng = () => number;

/** A seeded PRNG: the corpus is the same on every run for the same seed. */
function seeded(seed: number): Rng {
  const generator = xoroshiro128plus(seed);
  return () => uniformFloat64(generator);
}

const DIGITS = "0123456789";
const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER = "abcdefghijklmnopqrstuvwxyz";
const ALNUM = UPPER + LOWER + DIGITS;
const B64URL = `${ALNUM}-_`;
const B64 = `${ALNUM}+/`;
const HEX = "0123456789abcdef";

class Gen {
  constructor(readonly rng: Rng) {}
  int(min: number, max: number): number {
    return min + Math.floor(this.rng() * (max - min + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)]!;
  }
  chars(alphabet: string, n: number): string {
    let s = "";
    for (let i = 0; i < n; i++) s += alphabet[this.int(0, alphabet.length - 1)];
    return s;
  }
  /** Random key material always mixes letters and digits; force both so a draw is realistic. */
  secret(alphabet: string, n: number): string {
    const s = this.chars(alphabet, n - 2);
    return `${this.pick([...UPPER])}${s.slice(0, n >> 1)}${this.int(0, 9)}${s.slice(n >> 1)}`;
  }
}

// ---------------------------------------------------------------- check digits

export function luhnCheckDigit(payload: string): number {
  let sum = 0;
  for (let i = 0; i < payload.length; i++) {
    let d = Number(payload[payload.length - 1 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return (10 - (sum % 10)) % 10;
}

function ibanCheckDigits(country: string, bban: string): string {
  const rearranged = `${bban}${country}00`.replace(/[A-Z]/g, (c) => String(c.charCodeAt(0) - 55));
  const check = 98n - (BigInt(rearranged) % 97n);
  return check.toString().padStart(2, "0");
}

// ---------------------------------------------------------------- value generators

const FIRST = ["john", "maria", "wei", "aisha", "lukas", "sofia", "omar", "yuki", "priya", "diego", "anna", "li"];
const LAST = ["doe", "garcia", "chen", "khan", "muller", "rossi", "haddad", "tanaka", "patel", "silva", "smith"];
const DOMAINS = [
  "example.com",
  "mail.example.co.uk",
  "corp-example.io",
  "gmail.com",
  "outlook.de",
  "uni-heidelberg.de",
  "sub.dept.example.org",
  "startup.ai",
  "example.travel",
];

function email(g: Gen): string {
  const local = g.pick([
    () => `${g.pick(FIRST)}.${g.pick(LAST)}`,
    () => `${g.pick(FIRST)}${g.int(1, 99)}`,
    () => `${g.pick(FIRST)}_${g.pick(LAST)}`,
    () => `${g.pick(FIRST)}+${g.pick(["news", "billing", "test"])}`,
    () => `${g.pick(FIRST)[0]}${g.pick(LAST)}`,
  ])();
  const address = `${local}@${g.pick(DOMAINS)}`;
  return g.int(0, 9) === 0 ? address.toUpperCase() : address;
}

const US_AREAS = [201, 202, 206, 212, 213, 303, 305, 312, 404, 415, 503, 512, 617, 646, 702, 713, 718, 808, 917];

function usPhone(g: Gen): string {
  const a = String(g.pick(US_AREAS));
  let e = String(g.int(200, 999));
  while (e.endsWith("11")) e = String(g.int(200, 999));
  const l = g.chars(DIGITS, 4);
  return g.pick([
    `(${a}) ${e}-${l}`,
    `${a}-${e}-${l}`,
    `${a}.${e}.${l}`,
    `${a} ${e} ${l}`,
    `+1${a}${e}${l}`,
    `+1 ${a} ${e} ${l}`,
    `+1 (${a}) ${e}-${l}`,
    `+1-${a}-${e}-${l}`,
    `1-${a}-${e}-${l}`,
  ]);
}

function intlPhone(g: Gen): string {
  const d = (n: number) => g.chars(DIGITS, n);
  return g.pick([
    () => `+44 20 7946 0${d(3)}`,
    () => `+44 (0)20 7946 0${d(3)}`,
    () => `+442079460${d(3)}`,
    () => `+49 30 ${g.int(2, 9)}${d(7)}`,
    () => `+49 89 ${g.int(2, 9)}${d(6)}`,
    () => `+33 1 ${d(2)} ${d(2)} ${d(2)} ${d(2)}`,
    // Metropolitan mobile ranges only: +33 69x includes overseas ranges that are not French numbers.
    () => `+33 6 ${g.pick(["0", "1", "2", "4", "5", "6", "7", "8"])}${d(1)} ${d(2)} ${d(2)} ${d(2)}`,
    () => `+81 3-${g.int(3, 6)}${d(3)}-${d(4)}`,
    () => `+61 2 9${d(3)} ${d(4)}`,
    // Allocated mobile blocks (04[0-36]x); e.g. 0445 is not a mobile range.
    () => `+61 4${g.pick(["0", "1", "2", "3", "6"])}${d(1)} ${d(3)} ${d(3)}`,
    () => `+91 9${d(4)} ${d(5)}`,
    () => `+55 11 9${g.int(6, 9)}${d(3)}-${d(4)}`,
    () => `+34 91 ${d(3)} ${d(2)} ${d(2)}`,
  ])();
}

function phone(g: Gen): string {
  return g.int(0, 1) === 0 ? usPhone(g) : intlPhone(g);
}

const CARD_PREFIXES: readonly [string, number][] = [
  ["4", 16],
  ["4", 13],
  ["51", 16],
  ["53", 16],
  ["55", 16],
  ["2221", 16],
  ["2720", 16],
  ["34", 15],
  ["37", 15],
  ["6011", 16],
  ["65", 16],
  ["3530", 16],
  ["3589", 16],
  ["36", 14],
  ["62", 16],
];

export function cardDigits(g: Gen, valid = true): string {
  const [prefix, length] = g.pick(CARD_PREFIXES);
  const payload = prefix + g.chars(DIGITS, length - prefix.length - 1);
  const check = luhnCheckDigit(payload);
  return payload + String(valid ? check : (check + g.int(1, 9)) % 10);
}

function formatCard(g: Gen, digits: string): string {
  const sep = g.pick(["", " ", "-"]);
  if (sep === "") return digits;
  if (digits.length === 15) return [digits.slice(0, 4), digits.slice(4, 10), digits.slice(10)].join(sep);
  if (digits.length === 14) return [digits.slice(0, 4), digits.slice(4, 10), digits.slice(10)].join(sep);
  return digits.match(/.{1,4}/g)!.join(sep);
}

const IBAN_FORMATS: readonly [string, (g: Gen) => string][] = [
  ["DE", (g) => g.chars(DIGITS, 18)],
  ["GB", (g) => g.chars(UPPER, 4) + g.chars(DIGITS, 14)],
  ["AT", (g) => g.chars(DIGITS, 16)],
  ["CH", (g) => g.chars(DIGITS, 5) + g.chars(UPPER + DIGITS, 12)],
  ["IE", (g) => g.chars(UPPER, 4) + g.chars(DIGITS, 14)],
  ["NL", (g) => g.chars(UPPER, 4) + g.chars(DIGITS, 10)],
  ["LU", (g) => g.chars(DIGITS, 3) + g.chars(UPPER + DIGITS, 13)],
  ["DK", (g) => g.chars(DIGITS, 14)],
  ["SE", (g) => g.chars(DIGITS, 20)],
];
// Published examples for countries whose BBAN carries a national check digit as well.
const IBAN_EXAMPLES = ["FR1420041010050500013M02606", "ES9121000418450200051332", "BE68539007547034", "PL61109010140000071219812874", "NO9386011117947"];

export function ibanElectronic(g: Gen, valid = true): string {
  if (valid && g.int(0, 5) === 0) return g.pick(IBAN_EXAMPLES);
  const [country, bban] = g.pick(IBAN_FORMATS);
  const body = bban(g);
  const check = ibanCheckDigits(country, body);
  const wrong = String((Number(check) + g.int(1, 50)) % 97).padStart(2, "0");
  return `${country}${valid ? check : wrong === check ? "00" : wrong}${body}`;
}

function formatIban(g: Gen, electronic: string): string {
  return g.int(0, 1) === 0 ? electronic : electronic.match(/.{1,4}/g)!.join(" ");
}

function ssn(g: Gen): string {
  let area = g.int(1, 899);
  if (area === 666) area = 667;
  return `${String(area).padStart(3, "0")}-${String(g.int(1, 99)).padStart(2, "0")}-${String(g.int(1, 9999)).padStart(4, "0")}`;
}

function ipv4(g: Gen): string {
  return [g.pick([10, 172, 192, 8, 34, 52, 203, 81]), g.int(0, 255), g.int(0, 255), g.int(1, 254)].join(".");
}

function ipv6(g: Gen): string {
  const group = () => g.chars(HEX, g.int(1, 4));
  return g.pick([
    () => Array.from({ length: 8 }, group).join(":"),
    () => `2001:db8::${group()}:${group()}`,
    () => `fe80::${group()}:${group()}:${group()}:${group()}`,
    () => `2a00:1450:${group()}:${group()}::${group()}`,
    () => `::ffff:${ipv4(g)}`,
    () => `2001:DB8:${group().toUpperCase()}::${group().toUpperCase()}`,
  ])();
}

const b64url = (s: string) => Buffer.from(s).toString("base64url");

function jwt(g: Gen): string {
  const alg = g.pick(["HS256", "RS256", "ES256", "EdDSA", "none"]);
  const header = g.int(0, 1) === 0 ? { alg, typ: "JWT" } : { typ: "JWT", alg, kid: g.chars(HEX, 8) };
  const payload = { sub: g.chars(DIGITS, 10), name: g.pick(FIRST), iat: 1_700_000_000 + g.int(0, 9_999_999), scope: "read write" };
  const signature = alg === "none" ? "" : g.chars(B64URL, alg === "RS256" ? 342 : 43);
  return `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}.${signature}`;
}

function privateKey(g: Gen): string {
  const kind = g.pick(["RSA ", "EC ", "OPENSSH ", "ENCRYPTED ", "", "DSA "]);
  const lines = Array.from({ length: g.int(4, 25) }, () => g.chars(B64, 64));
  lines.push(`${g.chars(B64, g.int(4, 60))}==`);
  const headers = kind === "RSA " && g.int(0, 2) === 0 ? `Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,${g.chars(HEX, 32).toUpperCase()}\n\n` : "";
  return `-----BEGIN ${kind}PRIVATE KEY-----\n${headers}${lines.join("\n")}\n-----END ${kind}PRIVATE KEY-----`;
}

function openaiKey(g: Gen): string {
  return g.pick([
    () => `sk-${g.secret(ALNUM, 48)}`,
    () => `sk-proj-${g.secret(B64URL, 156)}`,
    () => `sk-svcacct-${g.secret(B64URL, 120)}`,
    () => `sk-${g.secret(ALNUM, 20)}T3BlbkFJ${g.secret(ALNUM, 20)}`,
  ])();
}

function anthropicKey(g: Gen): string {
  return `sk-ant-${g.pick(["api03", "admin01"])}-${g.secret(B64URL, 93)}AA`;
}

function awsKey(g: Gen): string {
  return `${g.pick(["AKIA", "ASIA"])}${g.chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)}`;
}

function githubToken(g: Gen): string {
  return g.int(0, 3) === 0
    ? `github_pat_${g.secret(ALNUM, 22)}_${g.secret(ALNUM, 59)}`
    : `${g.pick(["ghp", "gho", "ghu", "ghs", "ghr"])}_${g.secret(ALNUM, 36)}`;
}

function slackToken(g: Gen): string {
  return g.pick([
    () => `xoxb-${g.chars(DIGITS, 12)}-${g.chars(DIGITS, 13)}-${g.chars(ALNUM, 24)}`,
    () => `xoxp-${g.chars(DIGITS, 12)}-${g.chars(DIGITS, 12)}-${g.chars(DIGITS, 13)}-${g.chars(HEX, 32)}`,
    () => `xoxa-2-${g.chars(DIGITS, 12)}-${g.chars(DIGITS, 13)}-${g.chars(HEX, 64)}`,
    () => `${g.pick(["xoxr", "xoxs"])}-${g.chars(DIGITS, 10)}-${g.chars(ALNUM, 40)}`,
    () => `https://hooks.slack.com/services/T${g.chars(UPPER + DIGITS, 8)}/B${g.chars(UPPER + DIGITS, 10)}/${g.chars(ALNUM, 24)}`,
  ])();
}

export const POSITIVE_GENERATORS: Record<string, (g: Gen) => string> = {
  email,
  phone,
  credit_card: (g) => formatCard(g, cardDigits(g)),
  iban: (g) => formatIban(g, ibanElectronic(g)),
  us_ssn: ssn,
  ip_address: (g) => (g.int(0, 1) === 0 ? ipv4(g) : ipv6(g)),
  jwt,
  private_key: privateKey,
  openai_key: openaiKey,
  anthropic_key: anthropicKey,
  aws_access_key: awsKey,
  github_token: githubToken,
  slack_token: slackToken,
};

// ---------------------------------------------------------------- negatives (no PII at all)

const NEGATIVE_GENERATORS: Record<string, (g: Gen) => string> = {
  order_id: (g) => g.pick([`ORD-${g.chars(DIGITS, 8)}`, `order #${g.int(1, 9)}${g.chars(DIGITS, 9)}`, `INV-2024-${g.chars(DIGITS, 6)}`, `ticket ${g.chars(DIGITS, 12)}`]),
  uuid: (g) => `${g.chars(HEX, 8)}-${g.chars(HEX, 4)}-4${g.chars(HEX, 3)}-a${g.chars(HEX, 3)}-${g.chars(HEX, 12)}`,
  git_sha: (g) => g.pick([g.chars(HEX, 40), g.chars(HEX, 7), `commit ${g.chars(HEX, 12)}`]),
  version: (g) => g.pick([`v${g.int(0, 20)}.${g.int(0, 20)}.${g.int(0, 99)}`, `${g.int(0, 9)}.${g.int(0, 30)}.${g.int(0, 9)}`, `2.0.0-beta.${g.int(1, 9)}`, `node ${g.int(18, 24)}.${g.int(0, 20)}.${g.int(0, 9)}`, `v10.0.${g.int(10000, 30000)}.${g.int(1, 999)}`]),
  timestamp: (g) => {
    const d = `2024-${String(g.int(1, 12)).padStart(2, "0")}-${String(g.int(1, 28)).padStart(2, "0")}`;
    const t = `${String(g.int(0, 23)).padStart(2, "0")}:${String(g.int(0, 59)).padStart(2, "0")}:${String(g.int(0, 59)).padStart(2, "0")}`;
    return g.pick([`${d}T${t}Z`, `${d} ${t}.${g.chars(DIGITS, 3)}`, `${1_700_000_000 + g.int(0, 99_999_999)}`, `${1_700_000_000_000 + g.int(0, 999_999_999)}`, t, `${d}T${t}+02:00`]);
  },
  invalid_luhn: (g) => formatCard(g, cardDigits(g, false)),
  unknown_issuer: (g) => {
    // Luhn-valid, but no card network issues numbers starting with these digits.
    const payload = g.pick(["1", "7", "8", "9", "0"]) + g.chars(DIGITS, 14);
    return payload + String(luhnCheckDigit(payload));
  },
  invalid_iban: (g) => formatIban(g, ibanElectronic(g, false)),
  invalid_ssn: (g) =>
    g.pick([
      `000-${g.chars(DIGITS, 2)}-${g.int(1000, 9999)}`,
      `666-${g.int(10, 99)}-${g.int(1000, 9999)}`,
      `${g.int(900, 999)}-${g.int(10, 99)}-${g.int(1000, 9999)}`,
      `${g.int(100, 665)}-00-${g.int(1000, 9999)}`,
      `${g.int(100, 665)}-${g.int(10, 99)}-0000`,
    ]),
  base64: (g) => g.pick([Buffer.from(g.chars(ALNUM + " ", g.int(12, 60))).toString("base64"), g.chars(B64URL, 40), `${b64url('{"typ":"JWT"}')}.${b64url('{"a":1}')}.${g.chars(B64URL, 43)}`, `${g.chars(B64URL, 20)}.${g.chars(B64URL, 30)}.${g.chars(B64URL, 43)}`]),
  price: (g) => g.pick([`$${g.int(1, 9)},${g.chars(DIGITS, 3)}.${g.chars(DIGITS, 2)}`, `€ ${g.int(1, 999)}.${g.chars(DIGITS, 2)}`, `USD ${g.int(1000, 9999)}.${g.chars(DIGITS, 2)}`, `${g.int(1, 99)}.${g.chars(DIGITS, 2)} EUR`]),
  invalid_phone: (g) =>
    g.pick([
      `123-456-${g.chars(DIGITS, 4)}`,
      `(012) 345-${g.chars(DIGITS, 4)}`,
      `555-${g.chars(DIGITS, 4)}`,
      `+1 123 456 ${g.chars(DIGITS, 4)}`,
      `+999 ${g.chars(DIGITS, 4)} ${g.chars(DIGITS, 4)}`,
      `+44 12`,
      `${g.chars(DIGITS, 3)}-${g.chars(DIGITS, 3)}-${g.chars(DIGITS, 5)}`,
    ]),
  invalid_ip: (g) => g.pick([`${g.int(256, 999)}.1.1.1`, `10.0.${g.int(0, 255)}`, `10.0.0.${g.int(256, 999)}`, `1.3.6.1.4.1.${g.int(1, 99999)}`, `00:1A:2B:${g.chars("0123456789ABCDEF", 2)}:4D:5E`]),
  lookalike_secret: (g) =>
    g.pick([
      "sk-learn",
      "task-manager-service-v2",
      "sk-this-is-not-a-real-key-value",
      `sk-${g.chars(ALNUM, 10)}`,
      `AKIA${g.chars(UPPER, 12)}`,
      `akia${g.chars(LOWER, 16)}`,
      `ghp_${g.chars(ALNUM, 10)}`,
      "xoxb-token",
      "https://hooks.example.com/services/abc",
      `-----BEGIN PUBLIC KEY-----\n${g.chars(B64, 64)}\n-----END PUBLIC KEY-----`,
      `-----BEGIN CERTIFICATE-----\n${g.chars(B64, 64)}\n-----END CERTIFICATE-----`,
    ]),
  lookalike_email: (g) => g.pick(["user@localhost", "@someone", "foo@bar", `npm i lodash@4.17.${g.int(1, 21)}`, "user at example dot com", `${g.pick(FIRST)}@`, "@types/node@20.19.0"]),
};

// ---------------------------------------------------------------- embedding

type Piece = string | { type: string; value: string };

/** Prose and JSON contexts a trace payload carries; {} marks the value. */
const CONTEXTS: readonly ((v: string) => Piece[])[] = [
  (v) => ["Please contact me at ", v, " if anything changes."],
  (v) => ["User: my details are ", v, ", thanks"],
  (v) => [v],
  (v) => ["logged value=", v, " in request"],
  (v) => ["Error: lookup failed for ", v, "."],
  (v) => ["- item: ", v, "\n- next item"],
  (v) => ["The assistant replied (see ", v, ") and moved on"],
  (v) => ["Line one\n", v, "\nLine three"],
  (v) => ["<td>", v, "</td>"],
  (v) => ["Key: '", v, "'"],
  (v) => ['{"tool":"lookup","args":{"query":"', v, '","limit":5}}'],
  (v) => ['[{"role":"user","content":"use ', v, ' please"}]'],
];

function build(family: string, pieces: Piece[]): Sample {
  let text = "";
  const expected: Expected[] = [];
  for (const p of pieces) {
    if (typeof p === "string") {
      text += p;
    } else {
      expected.push({ type: p.type, start: text.length, end: text.length + p.value.length });
      text += p.value;
    }
  }
  return { family, text, expected };
}

/** Inside a JSON string literal the value appears escaped, so the expected span is the escaped text. */
function embed(g: Gen, family: string, value: string, type: string | undefined): Sample {
  const context = g.pick(CONTEXTS);
  const isJson = context("").some((p) => typeof p === "string" && p.includes('"'));
  const written = isJson ? JSON.stringify(value).slice(1, -1) : value;
  const pieces = context("\u0000").map((p) => (p === "\u0000" ? (type ? { type, value: written } : written) : p));
  return build(family, pieces);
}

export function generateCorpus(seed = 0x5eed_c1a5): { positives: Sample[]; negatives: Sample[] } {
  const g = new Gen(seeded(seed));
  const positives: Sample[] = [];
  for (const [type, make] of Object.entries(POSITIVE_GENERATORS)) {
    for (let i = 0; i < 30; i++) positives.push(embed(g, type, make(g), type));
  }
  // Several values in one message, the way real prompts mix them.
  for (let i = 0; i < 30; i++) {
    const [a, b] = [g.pick(Object.keys(POSITIVE_GENERATORS)), g.pick(Object.keys(POSITIVE_GENERATORS))];
    const neg = g.pick(Object.keys(NEGATIVE_GENERATORS));
    positives.push(
      build("mixed", [
        "From ",
        { type: a, value: POSITIVE_GENERATORS[a]!(g) },
        ` (ref ${NEGATIVE_GENERATORS[neg]!(g)}) forwarded `,
        { type: b, value: POSITIVE_GENERATORS[b]!(g) },
        " to the agent.",
      ]),
    );
  }
  positives.push(...HANDWRITTEN_POSITIVES);
  const negatives: Sample[] = [];
  for (const [family, make] of Object.entries(NEGATIVE_GENERATORS)) {
    for (let i = 0; i < 22; i++) negatives.push(embed(g, family, make(g), undefined));
  }
  negatives.push(...HANDWRITTEN_NEGATIVES.map((text) => ({ family: "handwritten", text, expected: [] })));
  return { positives, negatives };
}

// ---------------------------------------------------------------- handwritten

const HANDWRITTEN_POSITIVES: Sample[] = [
  build("handwritten", ["Reach me at ", { type: "email", value: "jane.roe@example.com" }, " or ", { type: "phone", value: "(415) 555-0123" }, "."]),
  build("handwritten", ["UK office: ", { type: "phone", value: "+44 20 7946 0958" }, ", US: ", { type: "phone", value: "+14155550123" }]),
  build("handwritten", ["Charge ", { type: "credit_card", value: "4111 1111 1111 1111" }, " exp 12/27 cvc 123"]),
  build("handwritten", ["Order 1234 ", { type: "credit_card", value: "5555555555554444" }, " shipped"]),
  build("handwritten", ["Wire to ", { type: "iban", value: "DE89 3704 0044 0532 0130 00" }, " EUR 1,200.00"]),
  build("handwritten", ["IBAN:", { type: "iban", value: "GB82WEST12345698765432" }]),
  build("handwritten", ['{"ssn":"', { type: "us_ssn", value: "078-05-1120" }, '","dob":"1970-01-01"}']),
  build("handwritten", ["client ", { type: "ip_address", value: "203.0.113.7" }, ":8443 via [", { type: "ip_address", value: "2001:db8::1" }, "]:443"]),
  build("handwritten", ["Authorization: Bearer ", { type: "jwt", value: "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c" }]),
  build("handwritten", ["export OPENAI_API_KEY=", { type: "openai_key", value: "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z_A7bC0dE3fG6" }]),
  build("handwritten", ["ANTHROPIC_API_KEY=", { type: "anthropic_key", value: "sk-ant-api03-Xy7_Zk2Qw9Lm4Np6Rt8Vb1Cd3Fg5Hj0Kl-MnOpQrStUvWx12345678AA" }]),
  build("handwritten", ["aws_access_key_id = ", { type: "aws_access_key", value: "AKIAIOSFODNN7EXAMPLE" }]),
  build("handwritten", ["git clone https://", { type: "github_token", value: "ghp_16C7e42F292c6912E7710c838347Ae178B4a" }, "@github.com/org/repo"]),
  build("handwritten", ["POST ", { type: "slack_token", value: "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX" }]),
  build("handwritten", ["call ", { type: "phone", value: "1-800-555-0199" }, " or ", { type: "phone", value: "+1 (212) 555-0147" }]),
  build("handwritten", [{ type: "email", value: "sales@mail.example.com" }, " replied; cc ", { type: "email", value: "ops+alerts@corp-example.io" }]),
  build("handwritten", ["Card on file: ", { type: "credit_card", value: "3782 822463 10005" }, " (Amex)"]),
  build("handwritten", ["SSNs ", { type: "us_ssn", value: "123-45-6789" }, " and ", { type: "us_ssn", value: "665-99-0001" }]),
];

const HANDWRITTEN_NEGATIVES = [
  "Build 2024.03.15 released at 10:30:00 UTC, see RFC 3339.",
  "Total: $4,111.11 for 3 items (SKU 4111-1111).",
  "Latitude 37.7749, longitude -122.4194.",
  "Use std::vector<int> and Foo::bar() here.",
  "Meeting moved to 15/03/2024 at 14:00.",
  "Page 1 of 1234567890 results took 1234 ms.",
  "The color is #ff00ff and the size is 12px.",
  "Ticket ABC-1234-5678 was closed.",
  "Run `npm i @scope/pkg@1.2.3` and restart.",
  "Reply to this thread with your thoughts.",
  "ISBN 978-3-16-148410-0 is on the shelf.",
  "The 2024-03-15 report lists 1,234,567 rows.",
  "Upload icon@2x.png and logo@3x.webp to the CDN.",
  "Pull image sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 first.",
  "Docker maps 8080:80, aspect ratio 16:9, shift 10:30-11:45.",
  "PR #4111 merged; call 911 or 112 in an emergency; room 415-B.",
  "Call +1 (555) 010-0000 is not a real line.",
  "Amounts: +1234.56, -0.5, +12.5%.",
  "Trace id 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7.",
  "Headers: traceparent 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
];
