// Original file: proto/echo/v1/echo.proto

export interface ServerStreamRequest {
  message?: string;
  count?: number;
  interval_ms?: number;
}

export interface ServerStreamRequest__Output {
  message: string;
  count: number;
  interval_ms: number;
}
