// echo.v1.EchoService as @bufbuild/protobuf descriptors, for the connect-node
// server. protoc-gen-es would generate a file that embeds the serialized
// FileDescriptorProto of echo.proto plus TypeScript shapes for its messages;
// this is the same thing without the buf CLI: the harness serializes the
// descriptor with the project's own @grpc/proto-loader at build time
// (echo.binpb beside the compiled server), and the shapes are written below.
// At run time both paths do the same work: decode the descriptor, build a registry.
import { createFileRegistry, fromBinary, type Message } from '@bufbuild/protobuf';
import type { GenMessage, GenService } from '@bufbuild/protobuf/codegenv2';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { readFileSync } from 'node:fs';

export type EchoRequest = Message<'echo.v1.EchoRequest'> & { message: string };
export type EchoResponse = Message<'echo.v1.EchoResponse'> & {
  message: string;
  serverId: string;
  caller: string;
  sequence: number;
};
export type ServerStreamRequest = Message<'echo.v1.ServerStreamRequest'> & {
  message: string;
  count: number;
  intervalMs: number;
};

/** The two methods the benchmark calls; the other three answer UNIMPLEMENTED. */
export type EchoServiceDesc = GenService<{
  echo: {
    methodKind: 'unary';
    input: GenMessage<EchoRequest>;
    output: GenMessage<EchoResponse>;
  };
  serverStream: {
    methodKind: 'server_streaming';
    input: GenMessage<ServerStreamRequest>;
    output: GenMessage<EchoResponse>;
  };
}>;

/** The fields the shapes above name, checked against the descriptor so that a changed .proto fails loudly. */
const EXPECTED_FIELDS: Record<string, string[]> = {
  'echo.v1.EchoRequest': ['message'],
  'echo.v1.EchoResponse': ['message', 'serverId', 'caller', 'sequence'],
  'echo.v1.ServerStreamRequest': ['message', 'count', 'intervalMs'],
};

/** Decodes the descriptor file the harness wrote (bench/lib/build.ts) and checks it against the shapes. */
export function loadEchoService(descriptorFile: string): EchoServiceDesc {
  const file = fromBinary(FileDescriptorProtoSchema, readFileSync(descriptorFile));
  const registry = createFileRegistry(file, () => undefined);
  for (const [typeName, fields] of Object.entries(EXPECTED_FIELDS)) {
    const names = registry.getMessage(typeName)?.fields.map((f) => f.localName) ?? [];
    const absent = fields.filter((f) => !names.includes(f));
    if (absent.length > 0)
      throw new Error(
        `${descriptorFile}: ${typeName} lacks ${absent.join(', ')}; update echo-descriptor.ts`,
      );
  }
  const service = registry.getService('echo.v1.EchoService');
  const kinds = service?.methods.map((m) => `${m.localName}:${m.methodKind}`) ?? [];
  if (!kinds.includes('echo:unary') || !kinds.includes('serverStream:server_streaming'))
    throw new Error(`${descriptorFile}: echo.v1.EchoService lacks Echo or ServerStream`);
  return service as unknown as EchoServiceDesc;
}
