// prom-client's own files (lib/*.js), which its published types do not cover:
// src/shared/prom.ts imports them one by one and gives each the type its index
// exports under that name.
declare module 'prom-client/lib/*.js' {
  const exported: unknown;
  export default exported;
}
