// Original file: proto/echo/v1/echo.proto

import type * as grpc from '@grpc/grpc-js';
import type { MethodDefinition } from '@grpc/proto-loader';
import type {
  ClientStreamResponse as _echo_v1_ClientStreamResponse,
  ClientStreamResponse__Output as _echo_v1_ClientStreamResponse__Output,
} from '../../echo/v1/ClientStreamResponse.js';
import type {
  EchoRequest as _echo_v1_EchoRequest,
  EchoRequest__Output as _echo_v1_EchoRequest__Output,
} from '../../echo/v1/EchoRequest.js';
import type {
  EchoResponse as _echo_v1_EchoResponse,
  EchoResponse__Output as _echo_v1_EchoResponse__Output,
} from '../../echo/v1/EchoResponse.js';
import type {
  ServerStreamRequest as _echo_v1_ServerStreamRequest,
  ServerStreamRequest__Output as _echo_v1_ServerStreamRequest__Output,
} from '../../echo/v1/ServerStreamRequest.js';
import type {
  WhoAmIRequest as _echo_v1_WhoAmIRequest,
  WhoAmIRequest__Output as _echo_v1_WhoAmIRequest__Output,
} from '../../echo/v1/WhoAmIRequest.js';
import type {
  WhoAmIResponse as _echo_v1_WhoAmIResponse,
  WhoAmIResponse__Output as _echo_v1_WhoAmIResponse__Output,
} from '../../echo/v1/WhoAmIResponse.js';

export interface EchoServiceClient extends grpc.Client {
  Chat(
    metadata: grpc.Metadata,
    options?: grpc.CallOptions,
  ): grpc.ClientDuplexStream<_echo_v1_EchoRequest, _echo_v1_EchoResponse__Output>;
  Chat(
    options?: grpc.CallOptions,
  ): grpc.ClientDuplexStream<_echo_v1_EchoRequest, _echo_v1_EchoResponse__Output>;
  chat(
    metadata: grpc.Metadata,
    options?: grpc.CallOptions,
  ): grpc.ClientDuplexStream<_echo_v1_EchoRequest, _echo_v1_EchoResponse__Output>;
  chat(
    options?: grpc.CallOptions,
  ): grpc.ClientDuplexStream<_echo_v1_EchoRequest, _echo_v1_EchoResponse__Output>;

  ClientStream(
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: grpc.requestCallback<_echo_v1_ClientStreamResponse__Output>,
  ): grpc.ClientWritableStream<_echo_v1_EchoRequest>;
  ClientStream(
    metadata: grpc.Metadata,
    callback: grpc.requestCallback<_echo_v1_ClientStreamResponse__Output>,
  ): grpc.ClientWritableStream<_echo_v1_EchoRequest>;
  ClientStream(
    options: grpc.CallOptions,
    callback: grpc.requestCallback<_echo_v1_ClientStreamResponse__Output>,
  ): grpc.ClientWritableStream<_echo_v1_EchoRequest>;
  ClientStream(
    callback: grpc.requestCallback<_echo_v1_ClientStreamResponse__Output>,
  ): grpc.ClientWritableStream<_echo_v1_EchoRequest>;
  clientStream(
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: grpc.requestCallback<_echo_v1_ClientStreamResponse__Output>,
  ): grpc.ClientWritableStream<_echo_v1_EchoRequest>;
  clientStream(
    metadata: grpc.Metadata,
    callback: grpc.requestCallback<_echo_v1_ClientStreamResponse__Output>,
  ): grpc.ClientWritableStream<_echo_v1_EchoRequest>;
  clientStream(
    options: grpc.CallOptions,
    callback: grpc.requestCallback<_echo_v1_ClientStreamResponse__Output>,
  ): grpc.ClientWritableStream<_echo_v1_EchoRequest>;
  clientStream(
    callback: grpc.requestCallback<_echo_v1_ClientStreamResponse__Output>,
  ): grpc.ClientWritableStream<_echo_v1_EchoRequest>;

  Echo(
    argument: _echo_v1_EchoRequest,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: grpc.requestCallback<_echo_v1_EchoResponse__Output>,
  ): grpc.ClientUnaryCall;
  Echo(
    argument: _echo_v1_EchoRequest,
    metadata: grpc.Metadata,
    callback: grpc.requestCallback<_echo_v1_EchoResponse__Output>,
  ): grpc.ClientUnaryCall;
  Echo(
    argument: _echo_v1_EchoRequest,
    options: grpc.CallOptions,
    callback: grpc.requestCallback<_echo_v1_EchoResponse__Output>,
  ): grpc.ClientUnaryCall;
  Echo(
    argument: _echo_v1_EchoRequest,
    callback: grpc.requestCallback<_echo_v1_EchoResponse__Output>,
  ): grpc.ClientUnaryCall;
  echo(
    argument: _echo_v1_EchoRequest,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: grpc.requestCallback<_echo_v1_EchoResponse__Output>,
  ): grpc.ClientUnaryCall;
  echo(
    argument: _echo_v1_EchoRequest,
    metadata: grpc.Metadata,
    callback: grpc.requestCallback<_echo_v1_EchoResponse__Output>,
  ): grpc.ClientUnaryCall;
  echo(
    argument: _echo_v1_EchoRequest,
    options: grpc.CallOptions,
    callback: grpc.requestCallback<_echo_v1_EchoResponse__Output>,
  ): grpc.ClientUnaryCall;
  echo(
    argument: _echo_v1_EchoRequest,
    callback: grpc.requestCallback<_echo_v1_EchoResponse__Output>,
  ): grpc.ClientUnaryCall;

  ServerStream(
    argument: _echo_v1_ServerStreamRequest,
    metadata: grpc.Metadata,
    options?: grpc.CallOptions,
  ): grpc.ClientReadableStream<_echo_v1_EchoResponse__Output>;
  ServerStream(
    argument: _echo_v1_ServerStreamRequest,
    options?: grpc.CallOptions,
  ): grpc.ClientReadableStream<_echo_v1_EchoResponse__Output>;
  serverStream(
    argument: _echo_v1_ServerStreamRequest,
    metadata: grpc.Metadata,
    options?: grpc.CallOptions,
  ): grpc.ClientReadableStream<_echo_v1_EchoResponse__Output>;
  serverStream(
    argument: _echo_v1_ServerStreamRequest,
    options?: grpc.CallOptions,
  ): grpc.ClientReadableStream<_echo_v1_EchoResponse__Output>;

  WhoAmI(
    argument: _echo_v1_WhoAmIRequest,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: grpc.requestCallback<_echo_v1_WhoAmIResponse__Output>,
  ): grpc.ClientUnaryCall;
  WhoAmI(
    argument: _echo_v1_WhoAmIRequest,
    metadata: grpc.Metadata,
    callback: grpc.requestCallback<_echo_v1_WhoAmIResponse__Output>,
  ): grpc.ClientUnaryCall;
  WhoAmI(
    argument: _echo_v1_WhoAmIRequest,
    options: grpc.CallOptions,
    callback: grpc.requestCallback<_echo_v1_WhoAmIResponse__Output>,
  ): grpc.ClientUnaryCall;
  WhoAmI(
    argument: _echo_v1_WhoAmIRequest,
    callback: grpc.requestCallback<_echo_v1_WhoAmIResponse__Output>,
  ): grpc.ClientUnaryCall;
  whoAmI(
    argument: _echo_v1_WhoAmIRequest,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: grpc.requestCallback<_echo_v1_WhoAmIResponse__Output>,
  ): grpc.ClientUnaryCall;
  whoAmI(
    argument: _echo_v1_WhoAmIRequest,
    metadata: grpc.Metadata,
    callback: grpc.requestCallback<_echo_v1_WhoAmIResponse__Output>,
  ): grpc.ClientUnaryCall;
  whoAmI(
    argument: _echo_v1_WhoAmIRequest,
    options: grpc.CallOptions,
    callback: grpc.requestCallback<_echo_v1_WhoAmIResponse__Output>,
  ): grpc.ClientUnaryCall;
  whoAmI(
    argument: _echo_v1_WhoAmIRequest,
    callback: grpc.requestCallback<_echo_v1_WhoAmIResponse__Output>,
  ): grpc.ClientUnaryCall;
}

export interface EchoServiceHandlers extends grpc.UntypedServiceImplementation {
  Chat: grpc.handleBidiStreamingCall<_echo_v1_EchoRequest__Output, _echo_v1_EchoResponse>;

  ClientStream: grpc.handleClientStreamingCall<
    _echo_v1_EchoRequest__Output,
    _echo_v1_ClientStreamResponse
  >;

  Echo: grpc.handleUnaryCall<_echo_v1_EchoRequest__Output, _echo_v1_EchoResponse>;

  ServerStream: grpc.handleServerStreamingCall<
    _echo_v1_ServerStreamRequest__Output,
    _echo_v1_EchoResponse
  >;

  WhoAmI: grpc.handleUnaryCall<_echo_v1_WhoAmIRequest__Output, _echo_v1_WhoAmIResponse>;
}

export interface EchoServiceDefinition extends grpc.ServiceDefinition {
  Chat: MethodDefinition<
    _echo_v1_EchoRequest,
    _echo_v1_EchoResponse,
    _echo_v1_EchoRequest__Output,
    _echo_v1_EchoResponse__Output
  >;
  ClientStream: MethodDefinition<
    _echo_v1_EchoRequest,
    _echo_v1_ClientStreamResponse,
    _echo_v1_EchoRequest__Output,
    _echo_v1_ClientStreamResponse__Output
  >;
  Echo: MethodDefinition<
    _echo_v1_EchoRequest,
    _echo_v1_EchoResponse,
    _echo_v1_EchoRequest__Output,
    _echo_v1_EchoResponse__Output
  >;
  ServerStream: MethodDefinition<
    _echo_v1_ServerStreamRequest,
    _echo_v1_EchoResponse,
    _echo_v1_ServerStreamRequest__Output,
    _echo_v1_EchoResponse__Output
  >;
  WhoAmI: MethodDefinition<
    _echo_v1_WhoAmIRequest,
    _echo_v1_WhoAmIResponse,
    _echo_v1_WhoAmIRequest__Output,
    _echo_v1_WhoAmIResponse__Output
  >;
}
