// The service contract, loaded from proto/ at run time with @grpc/proto-loader
// and typed by the code proto-loader-gen-types wrote into src/generated/; the
// same for the standard health service, from the proto grpc-health-check ships.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { protoPath as HEALTH_PROTO } from 'grpc-health-check';
import type { ProtoGrpcType } from '../generated/echo.js';
import type { ProtoGrpcType as HealthGrpcType } from '../generated/health.js';

const here = dirname(fileURLToPath(import.meta.url));
/**
 * The repository root (the image's /app): this file is in src/shared/ under tsx
 * and vitest, and inside dist/server.cjs or dist/client.cjs once built.
 */
export const PROJECT_ROOT =
  basename(here) === 'dist' ? resolve(here, '..') : resolve(here, '../..');
export const PROTO_ROOT = join(PROJECT_ROOT, 'proto');
export const ECHO_PROTO = 'echo/v1/echo.proto';
export const ECHO_SERVICE = 'echo.v1.EchoService';

/** The same options the generated types were made with (see `npm run gen-proto`). */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

let definition: protoLoader.PackageDefinition | null = null;

export function echoPackageDefinition(): protoLoader.PackageDefinition {
  definition ??= protoLoader.loadSync(ECHO_PROTO, LOADER_OPTIONS);
  return definition;
}

export function loadEchoProto(): ProtoGrpcType {
  return grpc.loadPackageDefinition(echoPackageDefinition()) as unknown as ProtoGrpcType;
}

/** grpc.health.v1, typed by the same generator (`npm run gen-proto`). */
export function loadHealthProto(): HealthGrpcType {
  return grpc.loadPackageDefinition(
    protoLoader.loadSync(HEALTH_PROTO, LOADER_OPTIONS),
  ) as unknown as HealthGrpcType;
}
