// The peer certificate the server reads on every new connection
// (src/tls/peer-certificate.ts): what the server uses of it made at once,
// the rest only when read, and all of it as Node's getPeerCertificate() gives it.
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { connect, createServer, type PeerCertificate, type Server, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { peerCertificate } from '../src/tls/peer-certificate.js';
import { loadCa, makePki, tempDir, writeLeaf } from './helpers/pki.js';

let dir: Awaited<ReturnType<typeof tempDir>>;
let files: (name: string) => Promise<Buffer>;

beforeAll(async () => {
  dir = await tempDir('peer-cert-');
  await makePki(dir.path);
  // An EC P-256 client beside the RSA one gen-certs issues: their fields differ.
  const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  await writeLeaf(
    dir.path,
    'ec-client',
    await loadCa(dir.path),
    { usage: 'client' },
    {
      publicKeyDer: ec.publicKey.export({ type: 'spki', format: 'der' }),
      keyPem: ec.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    },
  );
  files = (name) => readFile(join(dir.path, name));
});
afterAll(async () => {
  await dir.remove();
});

/** The server side of one TLS connection, from a client that presents `client` (or nothing). */
async function serverSide(client: string | null): Promise<{ socket: TLSSocket; end: () => void }> {
  const server: Server = createServer({
    key: await files('server.key'),
    cert: await files('server.crt'),
    ca: await files('ca.crt'),
    requestCert: true,
    rejectUnauthorized: false,
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'secureConnection') as Promise<[TLSSocket]>;
  const peer = connect({
    host: '127.0.0.1',
    port: (server.address() as AddressInfo).port,
    servername: 'localhost',
    ca: await files('ca.crt'),
    ...(client === null
      ? {}
      : { key: await files(`${client}.key`), cert: await files(`${client}.crt`) }),
  });
  peer.on('error', () => {});
  const [socket] = await accepted;
  return {
    socket,
    end: () => {
      peer.destroy();
      socket.destroy();
      server.close();
    },
  };
}

describe("a connection's peer certificate", () => {
  it.each(['client', 'ec-client'])(
    "reads every field as Node's getPeerCertificate() gives it, and serializes the same (%s)",
    async (client) => {
      const { socket, end } = await serverSide(client);
      try {
        const node = socket.getPeerCertificate();
        const ours = peerCertificate(socket, socket.getPeerCertificate.bind(socket));
        const fields = Object.keys(node) as (keyof PeerCertificate)[];
        expect(fields).toContain('subjectaltname');
        for (const field of fields) {
          expect(field in ours, field).toBe(true);
          expect(ours[field], field).toEqual(node[field]);
        }
        expect(JSON.stringify(ours)).toBe(JSON.stringify(node));
      } finally {
        end();
      }
    },
  );

  it("builds Node's whole object only when a field other than raw and fingerprint256 is read, and once", async () => {
    const { socket, end } = await serverSide('client');
    const built = vi.spyOn(X509Certificate.prototype, 'toLegacyObject');
    try {
      const ours = peerCertificate(socket, socket.getPeerCertificate.bind(socket));
      expect(ours.raw.equals(socket.getPeerCertificate().raw)).toBe(true);
      expect(ours.fingerprint256).toBe(socket.getPeerCertificate().fingerprint256);
      expect(built).not.toHaveBeenCalled();
      expect(ours.subject.CN).toBe('grpc-client');
      expect(ours.valid_to).toBe(socket.getPeerCertificate().valid_to);
      expect(built).toHaveBeenCalledTimes(1);
    } finally {
      built.mockRestore();
      end();
    }
  });

  it('still reads every field once the connection has closed', async () => {
    const { socket, end } = await serverSide('client');
    const node = socket.getPeerCertificate();
    const ours = peerCertificate(socket, socket.getPeerCertificate.bind(socket));
    end();
    await once(socket, 'close');
    expect(socket.getPeerCertificate()).toBeNull(); // Node's own answer is gone by now
    expect(ours.subject).toEqual(node.subject);
    expect(JSON.stringify(ours)).toBe(JSON.stringify(node));
  });

  it("is Node's own empty answer when the client sent no certificate", async () => {
    const { socket, end } = await serverSide(null);
    try {
      const ours = peerCertificate(socket, socket.getPeerCertificate.bind(socket));
      expect(ours).toEqual(socket.getPeerCertificate());
      expect(ours.raw).toBeUndefined();
    } finally {
      end();
    }
  });
});
