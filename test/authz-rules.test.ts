// The per-method policy on its own: what a rules file may say, what is refused
// at load time (and why), and which rule a call is allowed by.
import { describe, expect, it } from 'vitest';
import { Authorizer } from '../src/server/authz.js';
import { PolicyError, parsePolicy, policyFromIdentities } from '../src/server/policy-file.js';
import { kitMethods } from '../src/server/policy-methods.js';
import { CLIENT_ID, PROBE_ID } from './helpers/pki.js';

const LABEL = 'AUTHZ_POLICY_FILE (p.json)';
const parse = (data: unknown) => parsePolicy(data, LABEL, kitMethods());
const rule = (methods: unknown[], extra: Record<string, unknown> = {}) => ({
  rules: [{ identities: [CLIENT_ID], methods, ...extra }],
});
const ECHO = '/echo.v1.EchoService/Echo';
const WHOAMI = '/echo.v1.EchoService/WhoAmI';

describe('a policy file of rules', () => {
  it('knows every method the server offers, reflection included', () => {
    expect([...kitMethods()].sort()).toEqual([
      '/echo.v1.EchoService/Chat',
      '/echo.v1.EchoService/ClientStream',
      ECHO,
      '/echo.v1.EchoService/ServerStream',
      WHOAMI,
      '/grpc.health.v1.Health/Check',
      '/grpc.health.v1.Health/List',
      '/grpc.health.v1.Health/Watch',
      '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo',
      '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo',
    ]);
  });

  it('accepts exact methods, whole services and "*", naming unnamed rules by their place', () => {
    const policy = parse({
      rules: [
        { name: 'echo-only', identities: [CLIENT_ID], methods: [ECHO] },
        { identities: [PROBE_ID], methods: ['/echo.v1.EchoService/*', '*'] },
      ],
    });
    expect(policy).toEqual({
      format: 'rules',
      rules: [
        { name: 'echo-only', identities: [CLIENT_ID], methods: [ECHO] },
        { name: 'rules[1]', identities: [PROBE_ID], methods: ['/echo.v1.EchoService/*', '*'] },
      ],
    });
    expect(parse({ rules: [] }).rules).toEqual([]);
  });

  it.each([
    [
      ['/echo.v1.EchoService/Ech*'],
      /rules\[0\]\.methods\[0\]: "\/echo\.v1\.EchoService\/Ech\*" is not a method pattern; write "\/pkg\.Service\/Method"/,
    ],
    [['echo.v1.EchoService/Echo'], /is not a method pattern/],
    [['/echo.v1.EchoService'], /is not a method pattern/],
    [['/echo.v1.*/Echo'], /is not a method pattern/],
    [['/*'], /is not a method pattern/],
    [
      ['/EchoService/Echo'],
      /this server offers no service EchoService; services: .*echo\.v1\.EchoService.* \(names include their package\)/,
    ],
    [
      ['/echo.v1.EchoService/Ecko'],
      /echo\.v1\.EchoService has no such method; its methods: .*\/echo\.v1\.EchoService\/Echo,/,
    ],
    [
      ['/grpc.health.v1.Health/Check'],
      /names the health service, which is open to every verified caller; remove it/,
    ],
    [[], /rules\[0\]\.methods must be a non-empty list of method patterns/],
  ])('refuses the methods %j, saying why and how to write it', (methods, reason) => {
    expect(() => parse(rule(methods))).toThrow(PolicyError);
    expect(() => parse(rule(methods))).toThrow(reason);
  });

  it.each([
    [
      { rules: [{ identities: ['grpc-client'], methods: [ECHO] }] },
      /rules\[0\]\.identities\[0\]: "grpc-client" is not a SPIFFE ID/,
    ],
    [
      { rules: [{ identities: [], methods: [ECHO] }] },
      /rules\[0\]\.identities must be a non-empty list of SPIFFE IDs/,
    ],
    [
      rule([ECHO], { method: [ECHO] }),
      /rules\[0\] has unknown field "method"; a rule has "name" \(optional\), "identities" and "methods"/,
    ],
    [rule([ECHO], { name: 'health' }), /rules\[0\]\.name "health" must be .* not "health"/],
    [rule([ECHO], { name: 'two words' }), /rules\[0\]\.name "two words" must be 1-63 letters/],
    [
      {
        rules: [
          { name: 'a', identities: [CLIENT_ID], methods: [ECHO] },
          { name: 'a', identities: [PROBE_ID], methods: [ECHO] },
        ],
      },
      /rules\[1\] is named "a" like rules\[0\]; give each rule its own name/,
    ],
    [
      { rules: [], allowedIdentities: [CLIENT_ID] },
      /must have exactly one of "rules" or "allowedIdentities"/,
    ],
    [{ rule: [] }, /has unknown field "rule": expected \{"rules"/],
    [{ rules: {} }, /rules must be a list/],
    [{ rules: ['x'] }, /rules\[0\] must be an object/],
  ])('refuses %j by name', (data, reason) => {
    expect(() => parse(data)).toThrow(new RegExp(`^${LABEL.replace(/[()]/g, '\\$&')}`));
    expect(() => parse(data)).toThrow(reason);
  });
});

describe('deciding a call', () => {
  const authz = new Authorizer(
    parse({
      rules: [
        { name: 'client-echo', identities: [CLIENT_ID], methods: [ECHO] },
        { name: 'client-all', identities: [CLIENT_ID], methods: ['/echo.v1.EchoService/*'] },
        { name: 'probe-whoami', identities: [PROBE_ID], methods: [WHOAMI] },
      ],
    }),
  );

  it('allows a method to the identity a rule names for it and no other, naming the first rule that allows it', () => {
    expect(authz.decide(ECHO, CLIENT_ID)).toEqual({
      allowed: true,
      identity: CLIENT_ID,
      rule: 'client-echo',
    });
    expect(authz.decide(WHOAMI, CLIENT_ID)).toMatchObject({ allowed: true, rule: 'client-all' });
    expect(authz.decide(WHOAMI, PROBE_ID)).toMatchObject({ allowed: true, rule: 'probe-whoami' });
    expect(authz.decide(ECHO, PROBE_ID)).toEqual({
      allowed: false,
      identity: PROBE_ID,
      reason: `identity ${PROBE_ID} is not allowed to call ${ECHO}`,
    });
  });

  it('names the first rule in file order when several allow the same call', () => {
    const twice = (first: string, second: string) =>
      new Authorizer(
        parse({
          rules: [
            { name: first, identities: [CLIENT_ID], methods: [ECHO] },
            { name: second, identities: [CLIENT_ID], methods: [ECHO, '*'] },
          ],
        }),
      );
    expect(twice('a', 'b').decide(ECHO, CLIENT_ID)).toMatchObject({ rule: 'a' });
    expect(twice('b', 'a').decide(ECHO, CLIENT_ID)).toMatchObject({ rule: 'b' });
  });

  it('denies by default: other services, other identities, and look-alike paths', () => {
    const reflection = '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo';
    expect(authz.decide(reflection, CLIENT_ID).allowed).toBe(false);
    expect(authz.decide(ECHO, 'spiffe://cluster.local/ns/other/sa/grpc-client').allowed).toBe(
      false,
    );
    expect(authz.decide('/echo.v1.EchoServiceX/Echo', CLIENT_ID).allowed).toBe(false);
    expect(authz.decide('/echo.v1.EchoService/Echo/', CLIENT_ID).allowed).toBe(false);
  });

  it('keeps health open to every verified caller under every policy, as the rule "health"', () => {
    const none = new Authorizer(parse({ rules: [] }));
    expect(none.decide('/grpc.health.v1.Health/Watch', PROBE_ID)).toMatchObject({
      allowed: true,
      rule: 'health',
    });
    expect(none.decide(ECHO, CLIENT_ID).allowed).toBe(false);
    expect(none.decide('/grpc.health.v1.Health/Check', null).allowed).toBe(false);
    // Only the health service itself, not a service whose name merely starts like it.
    expect(none.decide('/grpc.health.v1.HealthAdmin/Reset', PROBE_ID).allowed).toBe(false);
  });

  it('reads the older forms as one rule "allowedIdentities" for every method', () => {
    const legacy = parse({ allowedIdentities: [CLIENT_ID] });
    expect(legacy).toEqual(policyFromIdentities([CLIENT_ID], LABEL));
    const old = new Authorizer(legacy);
    expect(old.decide(ECHO, CLIENT_ID)).toMatchObject({ allowed: true, rule: 'allowedIdentities' });
    const reflection = '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo';
    expect(old.decide(reflection, CLIENT_ID).allowed).toBe(true);
    expect(old.decide(ECHO, PROBE_ID).allowed).toBe(false);
  });

  it('decides calls after a swap by the new policy only', () => {
    const swapped = new Authorizer(parse(rule([ECHO])));
    expect(swapped.decide(WHOAMI, CLIENT_ID).allowed).toBe(false);
    // Decided (and remembered) under the old policy first: the swap must forget it.
    expect(swapped.decide(ECHO, CLIENT_ID).allowed).toBe(true);
    swapped.replace(parse(rule([WHOAMI], { name: 'v2' })));
    expect(swapped.decide(WHOAMI, CLIENT_ID)).toMatchObject({ allowed: true, rule: 'v2' });
    expect(swapped.decide(ECHO, CLIENT_ID).allowed).toBe(false);
  });
});
