// Call recordings in the emulator: served on the API's own origin (key required) or on a
// second origin standing in for a storage host (signed URLs that expire, no key), with
// switches for what the API reference leaves open: a 302 from the API origin to storage,
// Content-Disposition, a missing Content-Length, slow bodies and large files. Every
// request to either origin is logged with whether it carried an Authorization header:
// the capture that proves where the key went.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

import { rng, type StoredRecord } from './data';

export interface RecordingConfig {
	/**
	 * Where a call's `recording_url` points. `stored`: left as the record has it (an
	 * https:// address the emulator does not serve; the default, as the reference only
	 * says "https://..."); `api`: `<api>/v1/calls/:id/recording`, which needs the key;
	 * `storage`: a signed URL on the second origin, which needs no key and expires.
	 */
	recordingUrl: 'stored' | 'api' | 'storage';
	/** `api` URLs answer 302 to a fresh signed storage URL instead of the audio. */
	recordingRedirect: boolean;
	/** Lifetime of a signed storage URL, from the moment the call was read. */
	recordingTtlMs: number;
	/** Size of every recording in bytes. */
	recordingBytes: number;
	recordingContentType: string;
	/** File name sent as Content-Disposition (null: no such header). */
	recordingFileName: string | null;
	/** Whether the audio carries Content-Length (false: chunked, no length). */
	recordingContentLength: boolean;
	/** Pause after each 64 KiB chunk of the body (slow storage). */
	recordingChunkDelayMs: number;
}

export const DEFAULT_RECORDING_CONFIG: RecordingConfig = {
	recordingUrl: 'stored',
	recordingRedirect: false,
	recordingTtlMs: 3_600_000,
	recordingBytes: 48 * 1024,
	recordingContentType: 'audio/mpeg',
	recordingFileName: null,
	recordingContentLength: true,
	recordingChunkDelayMs: 0,
};

/** Calls in these states have no recording (`recording_url: null`). */
export const NO_RECORDING_STATUSES = ['failed', 'blocked', 'in-progress'];

export interface RecordingFault {
	/** Which origin the fault applies to. */
	origin: 'api' | 'storage';
	/**
	 * status: answer `status`; drop: close the connection before answering; dropMidBody:
	 * send the headers and half the body, then close; redirect: answer 302 to `location`.
	 */
	kind: 'status' | 'drop' | 'dropMidBody' | 'redirect';
	status?: number;
	location?: string;
	/** How many times it fires (default 1). */
	times?: number;
}

export interface RecordingRequest {
	origin: 'api' | 'storage';
	path: string;
	/** Whether the request carried an Authorization header, and its value. */
	authorization?: string;
	status: number;
	at: number;
	/** Bytes of the audio handed to the socket so far (the body is written with backpressure). */
	sent: number;
}

const CHUNK = 64 * 1024;
const EXTENSIONS: Record<string, string> = { 'audio/mpeg': 'mp3', 'audio/wav': 'wav', 'audio/x-wav': 'wav' };

/** One pseudo-random 64 KiB block per call; chunk n is the block with n in its first bytes. */
function blockFor(callId: string): Buffer {
	const next = rng(parseInt(callId.replace(/-/g, '').slice(0, 8), 16) || 1);
	const block = Buffer.alloc(CHUNK);
	for (let i = 0; i < CHUNK; i += 4) block.writeUInt32LE(Math.floor(next() * 0x100000000), i);
	return block;
}

/** The bytes of a recording from `offset` (a multiple of CHUNK) for `length` bytes, chunk by chunk. */
function* chunks(block: Buffer, size: number): Generator<Buffer> {
	for (let offset = 0, n = 0; offset < size; offset += CHUNK, n++) {
		const chunk = Buffer.from(block.subarray(0, Math.min(CHUNK, size - offset)));
		if (chunk.length >= 8) chunk.writeBigUInt64LE(BigInt(n), 0);
		yield chunk;
	}
}

/** SHA-256 (hex) of the recording the emulator serves for a call at a size. */
export function recordingChecksum(callId: string, size: number): string {
	const hash = createHash('sha256');
	for (const chunk of chunks(blockFor(callId), size)) hash.update(chunk);
	return hash.digest('hex');
}

export class RecordingStore {
	requests: RecordingRequest[] = [];
	faults: RecordingFault[] = [];
	storageUrl = '';
	private blocks = new Map<string, Buffer>();
	private server: http.Server;
	private sockets = new Set<Socket>();
	private readonly secret = `storage-secret-${Math.random()}`;

	constructor(
		private findCall: (id: string) => StoredRecord | undefined,
		/** The emulator's switches (its config holds the recording ones). */
		private settings: () => RecordingConfig,
		private host = '127.0.0.1',
	) {
		this.server = http.createServer((req, res) => {
			const url = new URL(req.url ?? '/', 'http://storage');
			this.serveStorage(req, url, res);
		});
		this.server.keepAliveTimeout = 1000;
		this.server.on('connection', (socket) => {
			this.sockets.add(socket);
			socket.on('close', () => this.sockets.delete(socket));
		});
	}

	async start(): Promise<void> {
		await new Promise<void>((resolve) => this.server.listen(0, this.host, resolve));
		this.storageUrl = `http://${this.host}:${(this.server.address() as AddressInfo).port}`;
	}

	async stop(): Promise<void> {
		for (const socket of this.sockets) socket.destroy();
		await new Promise<void>((resolve) => this.server.close(() => resolve()));
	}

	private get config(): RecordingConfig {
		return this.settings();
	}

	reset(): void {
		this.requests = [];
		this.faults = [];
	}

	inject(...faults: RecordingFault[]): void {
		this.faults.push(...faults.map((f) => ({ times: 1, ...f })));
	}

	/** The extension of the configured audio type ('' when unknown). */
	private extension(): string {
		return EXTENSIONS[this.config.recordingContentType.split(';')[0].trim()] ?? '';
	}

	/** A signed storage URL of a call's recording, valid for the configured lifetime. */
	signedUrl(callId: string, now = Date.now()): string {
		const expires = now + this.config.recordingTtlMs;
		const ext = this.extension();
		const path = `/recordings/${callId}${ext ? `.${ext}` : ''}`;
		return `${this.storageUrl}${path}?expires=${expires}&signature=${this.sign(path, expires)}`;
	}

	private sign(path: string, expires: number): string {
		return createHmac('sha256', this.secret).update(`${path}\n${expires}`).digest('hex');
	}

	/** `recording_url` as the API writes it in a call, by the configured mode. */
	urlFor(call: StoredRecord, apiUrl: string): string | null | undefined {
		if (this.config.recordingUrl === 'stored') return undefined;
		if (NO_RECORDING_STATUSES.includes(String(call.status)) || call.recording_url === null) return null;
		if (this.config.recordingUrl === 'api') return `${apiUrl}/v1/calls/${call.id}/recording`;
		return this.signedUrl(call.id);
	}

	/** SHA-256 (hex) of the bytes served for a call's recording. */
	checksum(callId: string): string {
		const hash = createHash('sha256');
		for (const chunk of chunks(this.block(callId), this.config.recordingBytes)) hash.update(chunk);
		return hash.digest('hex');
	}

	private block(callId: string): Buffer {
		let block = this.blocks.get(callId);
		if (!block) {
			block = blockFor(callId);
			if (this.blocks.size > 1000) this.blocks.clear();
			this.blocks.set(callId, block);
		}
		return block;
	}

	private takeFault(origin: 'api' | 'storage'): RecordingFault | undefined {
		const fault = this.faults.find((f) => f.origin === origin);
		if (!fault) return undefined;
		fault.times = (fault.times ?? 1) - 1;
		if (fault.times <= 0) this.faults.splice(this.faults.indexOf(fault), 1);
		return fault;
	}

	/**
	 * Answers `GET /v1/calls/:id/recording` on the API origin (the key was checked by the
	 * emulator): the audio, or a 302 to storage.
	 */
	serveApi(req: http.IncomingMessage, callId: string, res: http.ServerResponse, headers: Record<string, string>): void {
		const entry = this.log('api', req);
		const fault = this.takeFault('api');
		if (this.applyFault(fault, req, res, entry)) return;
		const call = this.findCall(callId);
		if (!call || this.urlFor(call, '') === null) return this.refuse(res, entry, 404, 'Recording not found', headers);
		if (this.config.recordingRedirect) {
			entry.status = 302;
			res.writeHead(302, { ...headers, location: this.signedUrl(callId) });
			res.end();
			return;
		}
		this.sendAudio(callId, res, entry, fault, headers);
	}

	private serveStorage(req: http.IncomingMessage, url: URL, res: http.ServerResponse): void {
		const entry = this.log('storage', req);
		const fault = this.takeFault('storage');
		if (this.applyFault(fault, req, res, entry)) return;
		const match = /^\/recordings\/([0-9a-f-]{36})(\.[a-z0-9]+)?$/.exec(url.pathname);
		const expires = Number(url.searchParams.get('expires'));
		const signature = Buffer.from(url.searchParams.get('signature') ?? '');
		const expected = Buffer.from(this.sign(url.pathname, expires));
		if (!match || signature.length !== expected.length || !timingSafeEqual(signature, expected)) {
			return this.refuse(res, entry, 403, 'SignatureDoesNotMatch');
		}
		// As S3 and GCS do: an expired signed URL is a 403.
		if (!(Date.now() <= expires)) return this.refuse(res, entry, 403, 'Request has expired');
		if (!this.findCall(match[1])) return this.refuse(res, entry, 404, 'NoSuchKey');
		this.sendAudio(match[1], res, entry, fault);
	}

	private log(origin: 'api' | 'storage', req: http.IncomingMessage): RecordingRequest {
		const entry: RecordingRequest = {
			origin,
			path: (req.url ?? '/').split('?')[0],
			authorization: req.headers.authorization,
			status: 0,
			at: Date.now(),
			sent: 0,
		};
		this.requests.push(entry);
		return entry;
	}

	private refuse(res: http.ServerResponse, entry: RecordingRequest, status: number, message: string, headers = {}): void {
		entry.status = status;
		res.writeHead(status, { ...headers, 'content-type': 'application/xml' });
		res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${status}</Code><Message>${message}</Message></Error>`);
	}

	/** Applies a fault that answers instead of the audio; true when it did. */
	private applyFault(
		fault: RecordingFault | undefined,
		req: http.IncomingMessage,
		res: http.ServerResponse,
		entry: RecordingRequest,
	): boolean {
		if (!fault || fault.kind === 'dropMidBody') return false;
		if (fault.kind === 'drop') {
			entry.status = -1;
			req.socket.destroy();
		} else if (fault.kind === 'redirect') {
			entry.status = fault.status ?? 302;
			res.writeHead(entry.status, { location: fault.location ?? '/' });
			res.end();
		} else {
			this.refuse(res, entry, fault.status ?? 503, `Injected ${fault.status ?? 503}`);
		}
		return true;
	}

	private sendAudio(
		callId: string,
		res: http.ServerResponse,
		entry: RecordingRequest,
		fault: RecordingFault | undefined,
		extra: Record<string, string> = {},
	): void {
		const { recordingBytes: size, recordingChunkDelayMs: delay } = this.config;
		const headers: Record<string, string> = { ...extra, 'content-type': this.config.recordingContentType };
		if (this.config.recordingContentLength) headers['content-length'] = String(size);
		if (this.config.recordingFileName !== null) {
			headers['content-disposition'] = `attachment; filename="${this.config.recordingFileName}"`;
		}
		entry.status = 200;
		res.writeHead(200, headers);
		const cut = fault?.kind === 'dropMidBody' ? Math.floor(size / 2) : Infinity;
		const source = chunks(this.block(callId), size);
		let sent = 0;
		const pump = () => {
			for (;;) {
				const next = source.next();
				if (next.done) {
					res.end();
					return;
				}
				if (sent + next.value.length > cut) {
					// Half the body, then the connection closes.
					res.write(next.value.subarray(0, cut - sent), () => res.socket?.destroy());
					return;
				}
				sent += next.value.length;
				entry.sent = sent;
				const more = res.write(next.value);
				if (delay > 0) {
					setTimeout(pump, delay);
					return;
				}
				if (!more) {
					res.once('drain', pump);
					return;
				}
			}
		};
		res.on('close', () => source.return(undefined));
		pump();
	}
}
