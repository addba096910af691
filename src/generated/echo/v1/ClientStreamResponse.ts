// Original file: proto/echo/v1/echo.proto

import type { Long } from '@grpc/proto-loader';

export interface ClientStreamResponse {
  count?: number;
  total_bytes?: number | string | Long;
  summary?: string;
  server_id?: string;
  caller?: string;
}

export interface ClientStreamResponse__Output {
  count: number;
  total_bytes: string;
  summary: string;
  server_id: string;
  caller: string;
}
