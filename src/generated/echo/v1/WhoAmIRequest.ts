// Original file: proto/echo/v1/echo.proto

export interface WhoAmIRequest {}

export interface WhoAmIRequest__Output {}
