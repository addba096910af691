// The service contract, loaded from proto/ at run time with @grpc/proto-loader
// and typed by the code proto-loader-gen-types wrote into src/generated/.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProtoGrpcType } from '../generated/echo.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The repository root, whether running from src/shared/ (tsx) or dist/src/shared/ (built). */
export const PROJECT_ROOT =
  basename(resolve(here, '../..')) === 'dist' ? resolve(here, '../../..') : resolve(here, '../..');
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
