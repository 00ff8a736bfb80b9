// Hostile servers for the credential's guarantees, on loopback only: a capture that
// records every request and the Authorization it carried (also when used as an HTTP
// proxy, or over https with a self-signed certificate: an impostor), and a Base URL that
// answers every request with a redirect to it.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface Seen {
	method: string;
	/** As sent: a path, or an absolute URL when the capture is used as a proxy. */
	url: string;
	authorization: string;
}

export interface Capture {
	url: string;
	seen: Seen[];
	/** The requests that carried `secret` anywhere in their Authorization headers. */
	withSecret(secret: string): Seen[];
	close(): Promise<void>;
}

export interface CaptureOptions {
	/** A loopback address: 127.0.0.1 (default), or e.g. 127.0.0.2 for a host that is not "localhost". */
	host?: string;
	/** https with a self-signed certificate that no client trusts. */
	tls?: boolean;
	/** Answer every request with a 302 to this origin (plus the request's path), or to the origin this picks for the path. */
	redirectTo?: string | ((path: string) => string);
}

let certificate: { key: string; cert: string } | undefined;

/** A throw-away self-signed certificate for 127.0.0.1, made once per process with openssl. */
function selfSigned(): { key: string; cert: string } {
	if (certificate) return certificate;
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inboundflow-impostor-'));
	try {
		const key = path.join(dir, 'key.pem');
		const cert = path.join(dir, 'cert.pem');
		execFileSync(
			'openssl',
			['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
				'-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
			{ stdio: 'ignore' },
		);
		certificate = { key: fs.readFileSync(key, 'utf8'), cert: fs.readFileSync(cert, 'utf8') };
		return certificate;
	} finally {
		fs.rmSync(dir, { recursive: true, force: true });
	}
}

export async function startCapture(options: CaptureOptions = {}): Promise<Capture> {
	const host = options.host ?? '127.0.0.1';
	const seen: Seen[] = [];
	const handler: http.RequestListener = (req, res) => {
		const authorization = [req.headers.authorization, req.headers['proxy-authorization']].filter(Boolean).join(' ');
		seen.push({ method: req.method ?? '', url: req.url ?? '', authorization });
		req.resume();
		if (options.redirectTo) {
			const to = typeof options.redirectTo === 'string' ? options.redirectTo : options.redirectTo(req.url ?? '/');
			res.writeHead(302, { location: `${to}${req.url ?? '/'}`, 'content-type': 'application/json' });
			res.end('{}');
			return;
		}
		res.writeHead(200, { 'content-type': 'application/json' });
		res.end('{"captured":true}');
	};
	const server = options.tls ? https.createServer(selfSigned(), handler) : http.createServer(handler);
	// As a proxy for an https target: the tunnel request (its headers can carry credentials too).
	server.on('connect', (req: http.IncomingMessage, socket: import('node:stream').Duplex) => {
		seen.push({ method: 'CONNECT', url: req.url ?? '', authorization: String(req.headers['proxy-authorization'] ?? '') });
		socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
	});
	await new Promise<void>((resolve) => server.listen(0, host, resolve));
	const { port } = server.address() as AddressInfo;
	return {
		url: `${options.tls ? 'https' : 'http'}://${host}:${port}`,
		seen,
		withSecret: (secret) => seen.filter((s) => s.authorization.includes(secret)),
		close: async () => {
			server.closeAllConnections();
			await new Promise<void>((resolve) => server.close(() => resolve()));
		},
	};
}
