// Original file: proto/echo/v1/echo.proto

export interface WhoAmIResponse {
  identity?: string;
  spiffe_id?: string;
  common_name?: string;
  serial?: string;
  not_after?: string;
  server_id?: string;
}

export interface WhoAmIResponse__Output {
  identity: string;
  spiffe_id: string;
  common_name: string;
  serial: string;
  not_after: string;
  server_id: string;
}
