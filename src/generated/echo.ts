import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type {
  ClientStreamResponse as _echo_v1_ClientStreamResponse,
  ClientStreamResponse__Output as _echo_v1_ClientStreamResponse__Output,
} from './echo/v1/ClientStreamResponse.js';
import type {
  EchoRequest as _echo_v1_EchoRequest,
  EchoRequest__Output as _echo_v1_EchoRequest__Output,
} from './echo/v1/EchoRequest.js';
import type {
  EchoResponse as _echo_v1_EchoResponse,
  EchoResponse__Output as _echo_v1_EchoResponse__Output,
} from './echo/v1/EchoResponse.js';
import type {
  EchoServiceClient as _echo_v1_EchoServiceClient,
  EchoServiceDefinition as _echo_v1_EchoServiceDefinition,
} from './echo/v1/EchoService.js';
import type {
  ServerStreamRequest as _echo_v1_ServerStreamRequest,
  ServerStreamRequest__Output as _echo_v1_ServerStreamRequest__Output,
} from './echo/v1/ServerStreamRequest.js';
import type {
  WhoAmIRequest as _echo_v1_WhoAmIRequest,
  WhoAmIRequest__Output as _echo_v1_WhoAmIRequest__Output,
} from './echo/v1/WhoAmIRequest.js';
import type {
  WhoAmIResponse as _echo_v1_WhoAmIResponse,
  WhoAmIResponse__Output as _echo_v1_WhoAmIResponse__Output,
} from './echo/v1/WhoAmIResponse.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new (...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  echo: {
    v1: {
      ClientStreamResponse: MessageTypeDefinition<
        _echo_v1_ClientStreamResponse,
        _echo_v1_ClientStreamResponse__Output
      >;
      EchoRequest: MessageTypeDefinition<_echo_v1_EchoRequest, _echo_v1_EchoRequest__Output>;
      EchoResponse: MessageTypeDefinition<_echo_v1_EchoResponse, _echo_v1_EchoResponse__Output>;
      EchoService: SubtypeConstructor<typeof grpc.Client, _echo_v1_EchoServiceClient> & {
        service: _echo_v1_EchoServiceDefinition;
      };
      ServerStreamRequest: MessageTypeDefinition<
        _echo_v1_ServerStreamRequest,
        _echo_v1_ServerStreamRequest__Output
      >;
      WhoAmIRequest: MessageTypeDefinition<_echo_v1_WhoAmIRequest, _echo_v1_WhoAmIRequest__Output>;
      WhoAmIResponse: MessageTypeDefinition<
        _echo_v1_WhoAmIResponse,
        _echo_v1_WhoAmIResponse__Output
      >;
    };
  };
}
