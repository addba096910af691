// Strict schema validation of Kubernetes objects with kubernetes-models (Kubernetes
// 1.33 OpenAPI schemas, compiled to validators by ajv).
//
// Its validate() checks types, formats and required fields but, like the OpenAPI
// schemas themselves, lets unknown fields through: `imagePullPolicyy: Always` passes,
// and the API server would silently drop it. Here every object is handed to the
// validator behind a Proxy that records which fields the validator reads. A compiled
// schema reads each property it declares (and every key of a map), so a field the
// validator never read is one the schema does not know: reported as unknown.
import * as core from 'kubernetes-models/v1';
import * as apps from 'kubernetes-models/apps/v1';
import * as networking from 'kubernetes-models/networking.k8s.io/v1';
import * as policy from 'kubernetes-models/policy/v1';

export interface SchemaProblem {
  /** JSON pointer inside the object, e.g. /spec/template/spec/containers/0/imagePullPolicyy */
  path: string;
  message: string;
}

interface ModelClass {
  apiVersion?: string;
  kind?: string;
  prototype: { validate(this: unknown): void };
}

/**
 * The API groups a manifest of this kit may use, all GA on Kubernetes 1.30. Another
 * apiVersion is an error until it is added here (so a removed beta API cannot slip in).
 */
const GROUPS: Record<string, Record<string, unknown>> = {
  v1: core,
  'apps/v1': apps,
  'policy/v1': policy,
  'networking.k8s.io/v1': networking,
};

function modelFor(apiVersion: string, kind: string): ModelClass | string {
  const group = GROUPS[apiVersion];
  if (!group) return `apiVersion ${apiVersion} is not one of ${Object.keys(GROUPS).join(', ')}`;
  const model = group[kind] as ModelClass | undefined;
  // Only top-level kinds carry their own apiVersion and kind (Container, say, does not).
  if (model?.kind !== kind || model.apiVersion !== apiVersion) {
    return `${apiVersion} has no kind ${kind}`;
  }
  return model;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Wraps `root` so that every property read, at any depth, is recorded per object. */
function recordReads(root: object): { proxy: object; reads: Map<object, Set<string>> } {
  const reads = new Map<object, Set<string>>();
  const proxies = new WeakMap<object, object>();
  const wrap = (target: object): object => {
    const known = proxies.get(target);
    if (known) return known;
    const seen = new Set<string>();
    reads.set(target, seen);
    const proxy = new Proxy(target, {
      get(t, prop, receiver) {
        const value: unknown = Reflect.get(t, prop, receiver);
        if (typeof prop !== 'string') return value;
        seen.add(prop);
        return typeof value === 'object' && value !== null && Object.hasOwn(t, prop)
          ? wrap(value)
          : value;
      },
      has(t, prop) {
        if (typeof prop === 'string') seen.add(prop);
        return Reflect.has(t, prop);
      },
    });
    proxies.set(target, proxy);
    return proxy;
  };
  return { proxy: wrap(root), reads };
}

function unknownFields(
  node: unknown,
  path: string,
  reads: Map<object, Set<string>>,
  out: SchemaProblem[],
): void {
  if (Array.isArray(node)) {
    node.forEach((item, i) => unknownFields(item, `${path}/${i}`, reads, out));
    return;
  }
  if (!isRecord(node)) return;
  const seen = reads.get(node);
  if (!seen) return; // never reached: its parent is already reported
  for (const [key, value] of Object.entries(node)) {
    if (seen.has(key)) unknownFields(value, `${path}/${key}`, reads, out);
    else out.push({ path: `${path}/${key}`, message: `unknown field "${key}"` });
  }
}

/** Every schema problem of one object: type, format and required-field errors, and unknown fields. */
export function validateStrict(object: unknown): SchemaProblem[] {
  if (!isRecord(object) || typeof object.apiVersion !== 'string' || typeof object.kind !== 'string')
    return [{ path: '', message: 'not a Kubernetes object: apiVersion and kind are required' }];
  const model = modelFor(object.apiVersion, object.kind);
  if (typeof model === 'string') return [{ path: '', message: model }];
  const problems: SchemaProblem[] = [];
  const { proxy, reads } = recordReads(object);
  try {
    model.prototype.validate.call(proxy);
  } catch (err) {
    const errors = (err as { errors?: { instancePath: string; message?: string }[] }).errors;
    if (!errors) throw err;
    for (const e of errors)
      problems.push({ path: e.instancePath, message: e.message ?? 'invalid' });
  }
  unknownFields(object, '', reads, problems);
  return problems;
}

export function formatProblems(problems: SchemaProblem[]): string[] {
  return problems.map((p) => `${p.path || '/'}: ${p.message}`);
}
