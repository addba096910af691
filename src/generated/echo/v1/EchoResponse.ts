// Original file: proto/echo/v1/echo.proto

export interface EchoResponse {
  message?: string;
  server_id?: string;
  caller?: string;
  sequence?: number;
}

export interface EchoResponse__Output {
  message: string;
  server_id: string;
  caller: string;
  sequence: number;
}
