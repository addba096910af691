// Matching a call against the rules: built once per policy, so a call costs
// two map look-ups, whatever the number of rules. A policy is never changed
// after it is built; a reload builds a new one and swaps the reference.
import { ANY_METHOD, HEALTH_RULE, HEALTH_SERVICE, type AuthzPolicy } from './policy-file.js';

const HEALTH_PATH_PREFIX = `/${HEALTH_SERVICE}/`;

/** What one identity may call: pattern → index of the first rule that allows it. */
interface Grants {
  exact: Map<string, number>;
  services: Map<string, number>;
  any: number;
}

export class PolicyMatcher {
  private readonly grants = new Map<string, Grants>();

  constructor(readonly policy: AuthzPolicy) {
    // File order decides which rule is named when several allow a call: the first.
    policy.rules.forEach((rule, index) => {
      for (const id of rule.identities) {
        let g = this.grants.get(id);
        if (!g) this.grants.set(id, (g = { exact: new Map(), services: new Map(), any: Infinity }));
        for (const m of rule.methods) {
          if (m === ANY_METHOD) g.any = Math.min(g.any, index);
          else if (m.endsWith('/*')) {
            const service = m.slice(1, -2);
            if (!g.services.has(service)) g.services.set(service, index);
          } else if (!g.exact.has(m)) g.exact.set(m, index);
        }
      }
    });
  }

  /** The name of the rule allowing `identity` to call `path`, or null when none does. */
  match(path: string, identity: string): string | null {
    // Only the health service itself, not a service whose name merely starts like it.
    if (path.startsWith(HEALTH_PATH_PREFIX)) return HEALTH_RULE;
    const g = this.grants.get(identity);
    if (!g) return null;
    // `/pkg.Service/*` stands for one method name: a path with a further slash is no method of it.
    const slash = path.indexOf('/', 1);
    const service = slash > 0 && path.indexOf('/', slash + 1) < 0 ? path.slice(1, slash) : '';
    const index = Math.min(
      g.exact.get(path) ?? Infinity,
      g.services.get(service) ?? Infinity,
      g.any,
    );
    return index === Infinity ? null : this.policy.rules[index]!.name;
  }
}
