// The authorization policy as the operator writes it: a file of rules, or the
// older one-rule forms (a file `{"allowedIdentities": [...]}`, or
// AUTHZ_ALLOWED_IDENTITIES). Everything is checked as a whole where it enters,
// at start-up and on every reload alike, and refused by name with the fix:
// a policy that would silently match nobody is a policy that denies by surprise.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { KitError } from '../shared/errors.js';
import { USAGE } from '../shared/exit-codes.js';
import { SPIFFE_ID } from '../tls/identity.js';

/** The health service: open to every verified caller, never named in a rule. */
export const HEALTH_SERVICE = 'grpc.health.v1.Health';
/** The rule name the access line gives a health call. */
export const HEALTH_RULE = 'health';
/** The name of the one rule the older forms make. */
export const LEGACY_RULE = 'allowedIdentities';
/** A method pattern standing for every method of every service (health is open anyway). */
export const ANY_METHOD = '*';

export interface PolicyRule {
  /** As written, or `rules[i]` (its place in the file) when unnamed. */
  name: string;
  identities: string[];
  /** `/pkg.Service/Method`, `/pkg.Service/*` or `*`. */
  methods: string[];
}

export interface AuthzPolicy {
  /** Which form it was written in: the start-up summary shows the older one as it was. */
  format: 'rules' | 'allowedIdentities';
  rules: PolicyRule[];
}

/** A policy file that cannot be used; at start-up that is a setting to fix (exit 2). */
export class PolicyError extends KitError {
  override name = 'PolicyError';
  readonly exitCode = USAGE;
}

const FORMAT =
  'expected {"rules": [{"name": "…", "identities": ["spiffe://…"], "methods": ["/pkg.Service/Method", "/pkg.Service/*"]}]} or {"allowedIdentities": ["spiffe://…"]}';
const EXACT = /^\/([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\/([A-Za-z_][A-Za-z0-9_]*)$/;
const SERVICE = /^\/([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\/\*$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Refuses an identity that is not a SPIFFE ID: identities come only from URI
 * SANs (identity.ts), so a CN or a typo in the policy would silently match nobody.
 */
function checkIdentity(id: unknown, where: string): string {
  if (typeof id !== 'string' || !SPIFFE_ID.test(id)) {
    throw new PolicyError(
      `${where}: ${JSON.stringify(id)} is not a SPIFFE ID (spiffe://trust-domain/path); identities come only from the certificate's URI SAN, never its CN`,
    );
  }
  return id;
}

/**
 * A method pattern: exact, a whole service, or `*`. Anything else (a partial
 * wildcard, a missing leading slash, a method the server does not offer) is
 * refused: it would match something other than what it seems to say, or nothing.
 */
function checkMethod(m: unknown, where: string, known: ReadonlySet<string> | null): string {
  if (typeof m !== 'string') throw new PolicyError(`${where}: must be a string`);
  const quoted = JSON.stringify(m);
  if (m === ANY_METHOD) return m;
  const exact = EXACT.exec(m);
  const service = exact?.[1] ?? SERVICE.exec(m)?.[1];
  if (service === undefined) {
    throw new PolicyError(
      `${where}: ${quoted} is not a method pattern; write "/pkg.Service/Method" for one method, "/pkg.Service/*" for every method of a service, or "*" for every method (a "*" stands only for a whole method name)`,
    );
  }
  if (service === HEALTH_SERVICE) {
    throw new PolicyError(
      `${where}: ${quoted} names the health service, which is open to every verified caller; remove it from the rule`,
    );
  }
  if (known !== null) {
    const services = new Set([...known].map((p) => p.split('/')[1]));
    if (!services.has(service)) {
      throw new PolicyError(
        `${where}: ${quoted}: this server offers no service ${service}; services: ${[...services].sort().join(', ')} (names include their package)`,
      );
    }
    if (exact && !known.has(m)) {
      const methods = [...known].filter((p) => p.startsWith(`/${service}/`)).sort();
      throw new PolicyError(
        `${where}: ${quoted}: ${service} has no such method; its methods: ${methods.join(', ')}`,
      );
    }
  }
  return m;
}

function nonEmptyList(v: unknown, where: string, what: string): unknown[] {
  if (!Array.isArray(v) || v.length === 0) {
    throw new PolicyError(`${where} must be a non-empty list of ${what}; ${FORMAT}`);
  }
  return v;
}

function parseRule(
  raw: unknown,
  i: number,
  label: string,
  known: ReadonlySet<string> | null,
): PolicyRule {
  const at = `${label}: rules[${i}]`;
  if (!isObject(raw)) throw new PolicyError(`${at} must be an object; ${FORMAT}`);
  const unknown = Object.keys(raw).filter((k) => !['name', 'identities', 'methods'].includes(k));
  if (unknown.length > 0) {
    throw new PolicyError(
      `${at} has unknown field ${JSON.stringify(unknown[0])}; a rule has "name" (optional), "identities" and "methods"`,
    );
  }
  let name = `rules[${i}]`;
  if (raw.name !== undefined) {
    if (typeof raw.name !== 'string' || !NAME.test(raw.name) || raw.name === HEALTH_RULE) {
      throw new PolicyError(
        `${at}.name ${JSON.stringify(raw.name)} must be 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit, and not "${HEALTH_RULE}" (the access line's name for health calls)`,
      );
    }
    name = raw.name;
  }
  const identities = nonEmptyList(raw.identities, `${at}.identities`, 'SPIFFE IDs').map((id, j) =>
    checkIdentity(id, `${at}.identities[${j}]`),
  );
  const methods = nonEmptyList(raw.methods, `${at}.methods`, 'method patterns').map((m, j) =>
    checkMethod(m, `${at}.methods[${j}]`, known),
  );
  return { name, identities, methods };
}

/**
 * Checks a parsed policy file whole. `label` names the setting and the file;
 * `known` is every method path the server offers (null: syntax only).
 */
export function parsePolicy(
  data: unknown,
  label: string,
  known: ReadonlySet<string> | null,
): AuthzPolicy {
  if (!isObject(data)) throw new PolicyError(`${label}: ${FORMAT}`);
  const keys = Object.keys(data);
  const unknown = keys.filter((k) => k !== 'rules' && k !== 'allowedIdentities');
  if (unknown.length > 0) {
    throw new PolicyError(`${label} has unknown field ${JSON.stringify(unknown[0])}: ${FORMAT}`);
  }
  if (keys.length !== 1) {
    throw new PolicyError(
      `${label} must have exactly one of "rules" or "allowedIdentities" (the older one-rule form); ${FORMAT}`,
    );
  }
  if ('allowedIdentities' in data) {
    const ids = data.allowedIdentities;
    if (!Array.isArray(ids) || !ids.every((i) => typeof i === 'string' && i.trim() !== '')) {
      throw new PolicyError(
        `${label}: allowedIdentities must be a list of non-empty strings; ${FORMAT}`,
      );
    }
    return policyFromIdentities(ids as string[], label);
  }
  if (!Array.isArray(data.rules))
    throw new PolicyError(`${label}: rules must be a list; ${FORMAT}`);
  const rules = data.rules.map((r, i) => parseRule(r, i, label, known));
  const seen = new Map<string, number>();
  rules.forEach((r, i) => {
    const first = seen.get(r.name);
    if (first !== undefined) {
      throw new PolicyError(
        `${label}: rules[${i}] is named ${JSON.stringify(r.name)} like rules[${first}]; give each rule its own name, so the access line says which one allowed a call`,
      );
    }
    seen.set(r.name, i);
  });
  return { format: 'rules', rules };
}

/** The older form: these identities may call every method but health's (which is open). */
export function policyFromIdentities(ids: readonly string[], label: string): AuthzPolicy {
  const identities = ids.map((id) => checkIdentity(id, label));
  return {
    format: 'allowedIdentities',
    rules: [{ name: LEGACY_RULE, identities, methods: [ANY_METHOD] }],
  };
}

function parseText(raw: string, path: string, known: ReadonlySet<string> | null): AuthzPolicy {
  const label = `AUTHZ_POLICY_FILE (${path})`;
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch (err) {
    throw new PolicyError(`${label} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  return parsePolicy(data, label, known);
}

const unreadable = (path: string, err: unknown) =>
  new PolicyError(`AUTHZ_POLICY_FILE (${path}) cannot be read: ${(err as Error).message}`);

/** At start-up; `raw` is what the reloader compares later versions with. */
export function loadPolicyFile(
  path: string,
  known: ReadonlySet<string> | null = null,
): { policy: AuthzPolicy; raw: string } {
  let raw: string;
  try {
    raw = readFileSync(path, 'utf8');
  } catch (err) {
    throw unreadable(path, err);
  }
  return { policy: parseText(raw, path, known), raw };
}

/** On a reload: the same checks, without blocking the calls being served. */
export async function readPolicyFile(
  path: string,
  known: ReadonlySet<string> | null,
): Promise<{ policy: AuthzPolicy; raw: string }> {
  let raw: string;
  try {
    raw = await readFile(path, 'utf8');
  } catch (err) {
    throw unreadable(path, err);
  }
  return { policy: parseText(raw, path, known), raw };
}

/** For the start-up summary and reload lines: the policy as written, never more. */
export function describePolicy(policy: AuthzPolicy): Record<string, unknown> {
  return policy.format === 'allowedIdentities'
    ? { allowedIdentities: policy.rules[0]?.identities ?? [] }
    : { rules: policy.rules };
}
