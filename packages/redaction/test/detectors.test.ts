import { describe, expect, it } from "vitest";
import { detectorsFor, scan } from "../src/detectors/index.js";
import { createRedactor, DETECTOR_NAMES, type DetectorName } from "../src/index.js";
import { generateCorpus } from "./corpus.js";

const redactor = createRedactor();
/** The exact substrings found, with their types. */
const found = (text: string) => redactor.redactText(text).findings.map((f) => [f.type, text.slice(f.start, f.end)]);

const CASES: Record<DetectorName, { hit: string[]; miss: string[] }> = {
  email: {
    hit: ["jane.roe@example.com", "ops+alerts@mail.corp-example.co.uk", "JOHN_DOE@EXAMPLE.ORG"],
    miss: ["user@localhost", "icon@2x.png", "lodash@4.17.21", "@someone", "foo@bar"],
  },
  phone: {
    hit: ["+14155550123", "(415) 555-0123", "415-555-0123", "415.555.0123", "+44 20 7946 0958", "+44 (0)20 7946 0958", "+1 (212) 555-0147", "1-800-555-0199", "+49 30 52784045"],
    miss: ["4155550123", "123-456-7890", "+1 123 456 7890", "555-0123", "2024-01-15", "1.2.3", "+44 12", "1700000000000"],
  },
  credit_card: {
    hit: ["4111111111111111", "4111 1111 1111 1111", "5555-5555-5555-4444", "3782 822463 10005", "6011111111111117", "3530111333300000", "2223003122003222"],
    miss: ["4111111111111112", "1234567812345670", "4111 1111 1111", "41 11 11 11 11 11 11 11", "4111-1111 1111-1111"],
  },
  iban: {
    hit: ["DE89370400440532013000", "DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "FR1420041010050500013M02606", "NO9386011117947"],
    miss: ["DE88370400440532013000", "GB82WEST1234569876543", "XX89370400440532013000", "DE89370400440532013000X"],
  },
  us_ssn: {
    hit: ["123-45-6789", "078-05-1120", "899-99-9999"],
    miss: ["000-12-3456", "666-12-3456", "900-12-3456", "999-12-3456", "123-00-6789", "123-45-0000", "123-45-67890", "1234-56-7890"],
  },
  ip_address: {
    hit: ["192.168.1.10", "8.8.8.8", "255.255.255.255", "2001:db8::1", "fe80::1ff:fe23:4567:890a", "::ffff:192.0.2.1", "2001:0db8:85a3:0000:0000:8a2e:0370:7334"],
    miss: ["256.1.1.1", "1.2.3", "v1.2.3.4", "1.3.6.1.4.1.311", "10:30:45", "00:1A:2B:3C:4D:5E", "std::vector", "::"],
  },
  jwt: {
    hit: [
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
      `${Buffer.from('{"alg":"none"}').toString("base64url")}.${Buffer.from('{"sub":"1"}').toString("base64url")}.`,
    ],
    miss: [`${Buffer.from('{"typ":"JWT"}').toString("base64url")}.eyJhIjoxfQ.c2lnbmF0dXJl`, "abc.def.ghi", "eyJhbGciOiJIUzI1NiJ9"],
  },
  private_key: {
    hit: [
      "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA1c7+9z\nAbCd==\n-----END RSA PRIVATE KEY-----",
      "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n-----END PRIVATE KEY-----",
      "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
      "-----BEGIN ENCRYPTED PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nMIIFHzBJBgkq\n-----END ENCRYPTED PRIVATE KEY-----",
    ],
    miss: ["-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq\n-----END PUBLIC KEY-----", "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----"],
  },
  openai_key: {
    hit: ["sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z_A7bC0dE3fG6", "sk-Abcdefghij1234567890T3BlbkFJAbcdefghij1234567890", "sk-svcacct-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2"],
    miss: ["sk-learn", "sk-this-is-not-a-real-key-value", "sk-abc123", "task-Abcdefghij1234567890abcd"],
  },
  anthropic_key: {
    hit: ["sk-ant-api03-Xy7_Zk2Qw9Lm4Np6Rt8Vb1Cd3Fg5Hj0Kl-MnOpQrStUvWx12345678AA"],
    miss: ["sk-ant-short1", "sk-ant-onlylettersnodigits-in-this-one"],
  },
  aws_access_key: {
    hit: ["AKIAIOSFODNN7EXAMPLE", "ASIAY34FZKBOKMUTVV7A"],
    miss: ["AKIAIOSFODNN7EXAMPL", "AKIAIOSFODNN7EXAMPLEX", "akiaiosfodnn7example", "AGPAIOSFODNN7EXAMPLE"],
  },
  github_token: {
    hit: ["ghp_16C7e42F292c6912E7710c838347Ae178B4a", "gho_16C7e42F292c6912E7710c838347Ae178B4a", "github_pat_11ABCDEFG0123456789abc_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz01234567"],
    miss: ["ghp_short", "ghx_16C7e42F292c6912E7710c838347Ae178B4a"],
  },
  slack_token: {
    hit: ["xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "xoxp-1234567890-1234567890-abcdef", "xoxa-2-1234567890-abcdefghij", "xoxr-1234567890-abcdef", "xoxs-1234567890-abcdef", "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"],
    miss: ["xoxb-token", "xoxz-1234567890-abcdef", "https://hooks.example.com/services/T000/B000/XXXX"],
  },
};

describe.each(Object.entries(CASES))("%s", (type, { hit, miss }) => {
  it.each(hit)("finds %s in prose and JSON", (value) => {
    expect(found(`Note: ${value} was shared.`)).toEqual([[type, value]]);
    expect(found(JSON.stringify({ v: value }))).toEqual([[type, JSON.stringify(value).slice(1, -1)]]);
  });
  it.each(miss)("ignores %s", (value) => {
    expect(found(`Note: ${value} was shared.`).filter(([t]) => t === type)).toEqual([]);
  });
});

describe("detector selection", () => {
  it("runs only the requested detectors", () => {
    const onlyEmail = createRedactor({ detectors: ["email"] });
    expect(onlyEmail.redactText("a@example.com 123-45-6789").text).toBe("[EMAIL] 123-45-6789");
  });
  it("rejects unknown detector names", () => {
    expect(() => createRedactor({ detectors: ["passport" as DetectorName] })).toThrow(/unknown detectors: passport/);
  });
});

describe("detector anchors", () => {
  // A detector skips text without its anchor, so an anchor missing from some match loses values.
  it("occur in every value the detectors accept, in the corpus and the cases above", () => {
    const { positives, negatives } = generateCorpus();
    const texts = [...positives, ...negatives].map((s) => s.text);
    for (const { hit, miss } of Object.values(CASES)) texts.push(...hit, ...miss);
    const lacking: string[] = [];
    let accepted = 0;
    for (const detector of detectorsFor(DETECTOR_NAMES)) {
      expect(detector.anchor.global || detector.anchor.sticky, `${detector.name} anchor keeps no lastIndex`).toBe(false);
      const unanchored = { ...detector, anchor: /(?:)/ };
      for (const text of texts) {
        for (const { start, end } of scan(unanchored, text)) {
          accepted++;
          const value = text.slice(start, end);
          if (!detector.anchor.test(value)) lacking.push(`${detector.name}: ${JSON.stringify(value)}`);
        }
      }
    }
    expect(accepted).toBeGreaterThan(300);
    expect(lacking).toEqual([]);
  });
});
