// Every method path this server can offer, so a policy naming a service or a
// method it does not have (a typo, a missing package) is refused at load time
// instead of silently matching nothing.
import { service as healthService } from 'grpc-health-check';
import { echoPackageDefinition } from '../shared/proto.js';

/**
 * What @grpc/reflection registers (both versions grpcurl and others speak).
 * Listed by name: the package ships its protos but exports no definition of them.
 */
const REFLECTION_METHODS = [
  '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo',
  '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo',
];

let known: ReadonlySet<string> | null = null;

/** Reflection is included whether or not it is turned on: a policy may name it ahead. */
export function kitMethods(): ReadonlySet<string> {
  if (known) return known;
  // The definitions the server already loaded: no proto file is parsed again.
  const paths = new Set(REFLECTION_METHODS);
  for (const method of Object.values(healthService)) paths.add(method.path);
  for (const service of Object.values(echoPackageDefinition())) {
    if ('format' in service) continue; // a message or enum type, not a service
    for (const method of Object.values(service)) paths.add(method.path);
  }
  known = paths;
  return known;
}
