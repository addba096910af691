// Original file: proto/echo/v1/echo.proto

export interface EchoRequest {
  message?: string;
}

export interface EchoRequest__Output {
  message: string;
}
