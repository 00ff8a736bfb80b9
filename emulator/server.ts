// A local InboundFlow API: every documented endpoint and filter, scopes per key, the
// documented rate limit, and switches for each point the official reference leaves
// open. Data live in memory. Used by the tests, the benchmarks and `npm start`.
import { createHmac, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

import {
	APPOINTMENT_STATUSES,
	CALL_STATUSES,
	LEAD_STATUSES,
	URGENCIES,
	makeRecord,
	messagesFor,
	rng,
	RESOURCES,
	seedRecords,
	type Json,
	type Resource,
	type SeedCounts,
	type StoredRecord,
} from './data';
import { DEFAULT_RECORDING_CONFIG, RecordingStore, type RecordingConfig } from './recordings';

export type ErrorShape = 'nested' | 'message' | 'string' | 'text' | 'empty';

export interface EmulatorConfig extends RecordingConfig {
	/** `exclusive`: since returns created_at > since; `inclusive`: >=. */
	sinceMode: 'exclusive' | 'inclusive';
	/** Page order of list endpoints. */
	order: 'newest' | 'oldest';
	/** Single objects as `{ data: {…}, meta }` (true) or bare (false). */
	wrapSingle: boolean;
	errorShape: ErrorShape;
	/** null: no rate limit. Windows are fixed and aligned to the epoch. */
	rateLimit: { limit: number; windowMs: number } | null;
	/** Whether responses carry X-RateLimit-Reset (unix seconds). Not documented: off by default. */
	sendReset: boolean;
	/**
	 * How the rate limit counts "per minute" (the API does not say): `fixed` windows
	 * aligned to the epoch, every request counted (429s too); or a `sliding` window: at
	 * most `limit` accepted requests in any `windowMs`, a 429 not counted, and Retry-After
	 * until the oldest counted request leaves the window.
	 */
	rateWindow: 'fixed' | 'sliding';
	/** Whether answers carry meta.timestamp (every documented example does; never described). */
	metaTimestamp: boolean;
	/** Whether answers carry the HTTP Date header. */
	sendDate: boolean;
	/** Stored cursors expire after this many ms (null: never); an expired one gets cursorExpiredStatus. */
	cursorTtlMs: number | null;
	cursorExpiredStatus: 400 | 410;
	/**
	 * The server pages first and filters (status, urgency, phone) after: a page may hold
	 * fewer records than `limit`, or none, with has_more: true.
	 */
	filterAfterPaging: boolean;
	/** How timestamps are written: `millis` (…00.123Z), `seconds` (…00Z) or `offset` (…00.123+02:00). */
	timestampFormat: 'millis' | 'seconds' | 'offset';
	/** How a 429 from the rate limiter says when to come back. */
	retryAfter: 'seconds' | 'date' | 'none';
	/** What POST /v1/contacts does with a phone that exists. */
	duplicatePhone: 'allow' | 'conflict';
}

export const DEFAULT_CONFIG: EmulatorConfig = {
	sinceMode: 'exclusive',
	order: 'newest',
	wrapSingle: true,
	errorShape: 'nested',
	rateLimit: null,
	sendReset: false,
	rateWindow: 'fixed',
	metaTimestamp: true,
	sendDate: true,
	cursorTtlMs: null,
	cursorExpiredStatus: 410,
	filterAfterPaging: false,
	timestampFormat: 'millis',
	retryAfter: 'seconds',
	duplicatePhone: 'allow',
	// Call recordings: emulator/recordings.ts.
	...DEFAULT_RECORDING_CONFIG,
};

export interface Fault {
	/**
	 * status: answer with `status` (e.g. 429, 500, 502, 503, 504);
	 * drop: destroy the connection without an answer;
	 * applyThenDrop: apply a POST, then destroy the connection;
	 * applyThenStatus: apply a POST, then answer `status`;
	 * malformed: 200 with a body that is not JSON; notEnvelope: 200 with JSON that is not a list envelope;
	 * redirect: answer `status` (default 302) with `location`;
	 * repeatCursor / missingCursor: broken pagination;
	 * emptyHasMore: an extra empty page with has_more and a new cursor (legitimate);
	 * emptyList: a list answers no records (as before a record was created).
	 */
	kind:
		| 'status'
		| 'drop'
		| 'applyThenDrop'
		| 'applyThenStatus'
		| 'malformed'
		| 'repeatCursor'
		| 'emptyHasMore'
		| 'missingCursor'
		| 'emptyList'
		| 'notEnvelope'
		| 'redirect'
		| 'slow'
		// (poller) trickle: the normal answer, its body sent one byte every delayMs ms.
		| 'trickle';
	/** For slow: answer normally after this many ms. For trickle: ms between body bytes. */
	delayMs?: number;
	/** For redirect: the Location sent. */
	location?: string;
	status?: number;
	/** For 429: Retry-After in seconds, 'date' for an HTTP date 1 s ahead, null for none. */
	retryAfter?: number | 'date' | null;
	method?: string;
	/** Path prefix the fault applies to, e.g. '/v1/calls'. */
	path?: string;
	/** Let this many matching requests pass before the fault fires. */
	skip?: number;
	/** How many times it fires (default 1). */
	times?: number;
	message?: string;
	/**
	 * For drop: the connection is lost before the rate limiter counts the request (it never
	 * reached the API: a refused or reset connection on the way), not after.
	 */
	uncounted?: boolean;
}

export interface ApiKey {
	scopes: string[];
}

export const ALL_SCOPES = ['calls:read', 'contacts:read', 'contacts:write', 'appointments:read', 'leads:read'];

export const TEST_KEYS: Record<string, ApiKey> = {
	sk_test_full_0123456789abcdef: { scopes: ALL_SCOPES },
	sk_test_readonly_0123456789ab: { scopes: ALL_SCOPES.filter((s) => s !== 'contacts:write') },
	sk_test_nocalls_0123456789abc: { scopes: ALL_SCOPES.filter((s) => s !== 'calls:read') },
	sk_test_nocontacts_0123456789: { scopes: ALL_SCOPES.filter((s) => !s.startsWith('contacts:')) },
};
export const FULL_KEY = 'sk_test_full_0123456789abcdef';

export interface LoggedRequest {
	method: string;
	path: string;
	query: Record<string, string>;
	status: number;
	fault?: string;
	at: number;
}

export interface EmulatorOptions {
	port?: number;
	host?: string;
	seed?: SeedCounts;
	seedValue?: number;
	config?: Partial<EmulatorConfig>;
	keys?: Record<string, ApiKey>;
	/** Keep the request log (off for long benchmarks). */
	logRequests?: boolean;
}

const ORG = {
	organization_id: 'becc3c5d-1755-420c-a3af-fe51ab2d04ca',
	organization_name: 'Dave Auto Shop',
	plan: 'Starter Plan',
};

const E164 = /^\+[1-9]\d{6,14}$/;

class HttpError extends Error {
	constructor(
		public status: number,
		message: string,
		public code: string,
		public headers: Record<string, string> = {},
	) {
		super(message);
	}
}

function encodeCursor(record: Pick<StoredRecord, 'created_at' | 'id'>): string {
	// Issue time (for expiry) and a serial number (for expireCursors; two cursors to one
	// position still differ).
	return Buffer.from(JSON.stringify([record.created_at, record.id, Date.now(), ++cursorSerial])).toString('base64url');
}

let cursorSerial = 0;

function decodeCursor(cursor: string): [string, string, number, number] {
	try {
		const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
		if (Array.isArray(value) && value.length === 4 && typeof value[0] === 'string' && typeof value[1] === 'string') {
			return [value[0], value[1], Number(value[2]), Number(value[3])];
		}
	} catch {
		// fall through
	}
	throw new HttpError(400, 'Invalid cursor', 'invalid_cursor');
}

const TIME_FIELDS = new Set(['created_at', 'updated_at', 'started_at', 'ended_at', 'last_call_at']);

/** A stored UTC timestamp as the configured format writes it. */
function formatTime(value: string, format: EmulatorConfig['timestampFormat']): string {
	const ms = Date.parse(value);
	if (Number.isNaN(ms)) return value;
	const utc = new Date(ms).toISOString();
	if (format === 'seconds') return `${utc.slice(0, 19)}Z`;
	if (format === 'offset') {
		// The same instant in UTC+02:00.
		const local = new Date(ms + 2 * 3_600_000).toISOString();
		return `${local.slice(0, 23)}+02:00`;
	}
	return utc;
}

function compareKey(a: StoredRecord, b: StoredRecord): number {
	// ISO 8601 UTC strings of one format sort as text; parse only when formats differ.
	const t =
		a.created_at.length === b.created_at.length
			? a.created_at < b.created_at
				? -1
				: a.created_at > b.created_at
					? 1
					: 0
			: Date.parse(a.created_at) - Date.parse(b.created_at);
	if (t !== 0) return t;
	return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export class InboundFlowEmulator {
	config: EmulatorConfig;
	records: Record<Resource, StoredRecord[]>;
	requests: LoggedRequest[] = [];
	faults: Fault[] = [];
	keys: Record<string, ApiKey>;
	private server: http.Server;
	private sockets = new Set<Socket>();
	private windows = new Map<string, { start: number; count: number }>();
	/** rateWindow 'sliding': per key, the times of the accepted requests still in the window. */
	private slidingLog = new Map<string, number[]>();
	private sorted: Partial<Record<Resource, StoredRecord[]>> = {};
	private logRequests: boolean;
	private cursorsValidFrom = 0;
	url = '';
	/** Call recordings on this origin and on a second (storage) origin: emulator/recordings.ts. */
	readonly recordings: RecordingStore;

	constructor(private options: EmulatorOptions = {}) {
		this.config = { ...DEFAULT_CONFIG, ...options.config };
		this.keys = options.keys ?? TEST_KEYS;
		this.records = seedRecords(options.seed ?? {}, options.seedValue);
		this.logRequests = options.logRequests ?? true;
		this.recordings = new RecordingStore(
			(id) => this.records.calls.find((r) => r.id === id),
			() => this.config,
		);
		this.server = http.createServer((req, res) => {
			this.handle(req, res).catch((error: unknown) => {
				if (!res.headersSent) {
					res.writeHead(500, { 'content-type': 'application/json' });
					res.end(JSON.stringify({ error: { message: String(error), code: 'internal' } }));
				}
			});
		});
		this.server.keepAliveTimeout = 1000;
		this.server.on('connection', (socket) => {
			this.sockets.add(socket);
			socket.on('close', () => this.sockets.delete(socket));
		});
	}

	async start(): Promise<string> {
		await new Promise<void>((resolve) =>
			this.server.listen(this.options.port ?? 0, this.options.host ?? '127.0.0.1', resolve),
		);
		const { port } = this.server.address() as AddressInfo;
		this.url = `http://127.0.0.1:${port}`;
		await this.recordings.start();
		return this.url;
	}

	async stop(): Promise<void> {
		for (const socket of this.sockets) socket.destroy();
		await new Promise<void>((resolve) => this.server.close(() => resolve()));
		await this.recordings.stop();
	}

	/** Sets switches; resets the rate-limit windows. */
	configure(config: Partial<EmulatorConfig>): void {
		this.config = { ...this.config, ...config };
		this.windows.clear();
		this.slidingLog.clear();
	}

	inject(...faults: Fault[]): void {
		this.faults.push(...faults.map((f) => ({ times: 1, skip: 0, ...f })));
	}

	/** Every cursor issued so far is refused from now on (as after the server's cursor lifetime). */
	expireCursors(): void {
		this.cursorsValidFrom = cursorSerial + 1;
	}

	clearLog(): void {
		this.requests = [];
	}

	/** API requests made (admin routes are not logged). */
	apiRequests(filter?: { method?: string; path?: string }): LoggedRequest[] {
		return this.requests.filter(
			(r) => (!filter?.method || r.method === filter.method) && (!filter?.path || r.path === filter.path),
		);
	}

	add(resource: Resource, fields: Record<string, Json> = {}): StoredRecord {
		const record = makeRecord(resource, fields);
		this.records[resource].push(record);
		delete this.sorted[resource];
		return record;
	}

	reset(seed: SeedCounts = this.options.seed ?? {}): void {
		this.records = seedRecords(seed, this.options.seedValue);
		this.sorted = {};
		this.faults = [];
		this.requests = [];
		this.windows.clear();
		this.slidingLog.clear();
		this.cursorsValidFrom = 0;
		this.config = { ...DEFAULT_CONFIG, ...this.options.config };
		this.recordings.reset();
	}

	// --- Appointments over time (issue 26): booking ahead, rescheduling, cancelling. ---

	/** Changes a stored record; `updated_at` becomes now unless given. Undefined for an unknown id. */
	update(resource: Resource, id: string, fields: Record<string, Json>): StoredRecord | undefined {
		const record = this.records[resource].find((r) => r.id === id);
		if (!record) return undefined;
		Object.assign(record, { updated_at: new Date().toISOString() }, fields, { id, created_at: record.created_at });
		delete this.sorted[resource];
		return record;
	}

	/** Books an appointment now that starts at `startMs` (an hour long). */
	book(startMs: number, fields: Record<string, Json> = {}): StoredRecord {
		return this.add('appointments', { status: 'booked', ...appointmentTimes(startMs), ...fields });
	}

	/** Moves an appointment to a new start (start, end, date and updated_at change). */
	reschedule(id: string, startMs: number): StoredRecord | undefined {
		return this.update('appointments', id, appointmentTimes(startMs));
	}

	/** Cancels an appointment (status cancelled, updated_at now). */
	cancel(id: string): StoredRecord | undefined {
		return this.update('appointments', id, { status: 'cancelled' });
	}

	/**
	 * One step of an appointment book over time: `book` new appointments starting between an
	 * hour and `maxAheadDays` ahead, `reschedule` open ones by up to a week either way (never
	 * into the past), `cancel` open ones. Deterministic for a seed.
	 */
	churnAppointments(step: ChurnStep): { booked: string[]; rescheduled: string[]; cancelled: string[] } {
		const next = rng(step.seed ?? 7);
		const now = Date.now();
		const aheadMs = (step.maxAheadDays ?? 42) * 86_400_000;
		const out = { booked: [] as string[], rescheduled: [] as string[], cancelled: [] as string[] };
		for (let k = 0; k < (step.book ?? 0); k++) {
			out.booked.push(this.book(now + 3_600_000 + Math.floor(next() * aheadMs), { status: next() < 0.7 ? 'booked' : 'confirmed' }).id);
		}
		const open = () =>
			this.records.appointments.filter(
				(a) => (a.status === 'booked' || a.status === 'confirmed') && Date.parse(String(a.appointment_time_start)) > now,
			);
		for (let k = 0; k < (step.reschedule ?? 0); k++) {
			const list = open();
			if (!list.length) break;
			const a = list[Math.floor(next() * list.length)];
			const shift = Math.round((next() * 2 - 1) * 7 * 86_400_000);
			this.reschedule(a.id, Math.max(now + 600_000, Date.parse(String(a.appointment_time_start)) + shift));
			out.rescheduled.push(a.id);
		}
		for (let k = 0; k < (step.cancel ?? 0); k++) {
			const list = open();
			if (!list.length) break;
			const a = list[Math.floor(next() * list.length)];
			this.cancel(a.id);
			out.cancelled.push(a.id);
		}
		return out;
	}

	// --- end of appointments over time ---

	private sortedRecords(resource: Resource): StoredRecord[] {
		let list = this.sorted[resource];
		if (!list) {
			list = [...this.records[resource]].sort(compareKey);
			this.sorted[resource] = list;
		}
		return list;
	}

	private takeFault(method: string, path: string, uncounted = false): Fault | undefined {
		for (const fault of this.faults) {
			if ((fault.uncounted ?? false) !== uncounted) continue;
			if (fault.method && fault.method !== method) continue;
			if (fault.path && !path.startsWith(fault.path)) continue;
			if ((fault.skip ?? 0) > 0) {
				fault.skip = (fault.skip ?? 0) - 1;
				continue;
			}
			fault.times = (fault.times ?? 1) - 1;
			if (fault.times <= 0) this.faults.splice(this.faults.indexOf(fault), 1);
			return fault;
		}
		return undefined;
	}

	private rateHeaders(key: string): { headers: Record<string, string>; limited: boolean; resetMs: number } {
		const rl = this.config.rateLimit;
		if (!rl) return { headers: {}, limited: false, resetMs: 0 };
		const now = Date.now();
		if (this.config.rateWindow === 'sliding') return this.slidingRateHeaders(key, rl, now);
		const start = Math.floor(now / rl.windowMs) * rl.windowMs;
		let window = this.windows.get(key);
		if (!window || window.start !== start) {
			window = { start, count: 0 };
			this.windows.set(key, window);
		}
		window.count++;
		const resetMs = start + rl.windowMs;
		const headers: Record<string, string> = {
			'x-ratelimit-limit': String(rl.limit),
			'x-ratelimit-remaining': String(Math.max(0, rl.limit - window.count)),
		};
		if (this.config.sendReset) headers['x-ratelimit-reset'] = String(Math.ceil(resetMs / 1000));
		return { headers, limited: window.count > rl.limit, resetMs };
	}

	private slidingRateHeaders(
		key: string,
		rl: { limit: number; windowMs: number },
		now: number,
	): { headers: Record<string, string>; limited: boolean; resetMs: number } {
		const log = (this.slidingLog.get(key) ?? []).filter((at) => at > now - rl.windowMs);
		this.slidingLog.set(key, log);
		const limited = log.length >= rl.limit;
		if (!limited) log.push(now);
		const headers: Record<string, string> = {
			'x-ratelimit-limit': String(rl.limit),
			'x-ratelimit-remaining': String(Math.max(0, rl.limit - log.length)),
		};
		// The moment the oldest counted request leaves the window: the next one fits then.
		const resetMs = (log[0] ?? now) + rl.windowMs;
		if (this.config.sendReset) headers['x-ratelimit-reset'] = String(Math.ceil(resetMs / 1000));
		return { headers, limited, resetMs };
	}

	private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
		const url = new URL(req.url ?? '/', 'http://localhost');
		const method = req.method ?? 'GET';
		const raw = await new Promise<Buffer>((resolve) => {
			const chunks: Buffer[] = [];
			req.on('data', (c: Buffer) => chunks.push(c));
			req.on('end', () => resolve(Buffer.concat(chunks)));
		});
		if (url.pathname.startsWith('/__admin/')) return this.admin(method, url, raw, res);

		const requestId = `req_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
		const query = Object.fromEntries(url.searchParams.entries());
		const entry: LoggedRequest = { method, path: url.pathname, query, status: 0, at: Date.now() };
		if (this.logRequests) this.requests.push(entry);
		res.sendDate = this.config.sendDate;
		const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
			entry.status = status;
			const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
			res.writeHead(status, {
				'content-type': typeof body === 'string' ? 'text/plain' : 'application/json',
				'x-request-id': requestId,
				...headers,
			});
			res.end(text);
		};
		const fail = (error: HttpError, extra: Record<string, string> = {}) =>
			send(error.status, this.errorBody(error, requestId), { ...error.headers, ...extra });

		const auth = req.headers.authorization ?? '';
		const key = auth.startsWith('Bearer ') ? auth.slice(7) : '';
		const apiKey = this.keys[key];
		if (!apiKey) return fail(new HttpError(401, 'Invalid or missing API key', 'unauthorized'));

		if (this.takeFault(method, url.pathname, true)) {
			entry.fault = 'drop';
			entry.status = -1;
			req.socket.destroy();
			return;
		}
		const rate = this.rateHeaders(key);
		if (rate.limited) {
			const headers = { ...rate.headers };
			const waitS = Math.max(1, Math.ceil((rate.resetMs - Date.now()) / 1000));
			if (this.config.retryAfter === 'seconds') headers['retry-after'] = String(waitS);
			if (this.config.retryAfter === 'date') headers['retry-after'] = new Date(rate.resetMs + 1000).toUTCString();
			entry.fault = 'rate-limit';
			return fail(new HttpError(429, 'Rate limit exceeded: 60 requests per minute', 'rate_limited'), headers);
		}

		const fault = this.takeFault(method, url.pathname);
		if (fault) entry.fault = fault.kind;
		if (fault?.kind === 'slow') await new Promise((r) => setTimeout(r, fault.delayMs ?? 100));
		if (fault?.kind === 'drop') {
			entry.status = -1;
			req.socket.destroy();
			return;
		}
		if (fault?.kind === 'status') {
			const headers: Record<string, string> = { ...rate.headers };
			if (typeof fault.retryAfter === 'number') headers['retry-after'] = String(fault.retryAfter);
			if (fault.retryAfter === 'date') headers['retry-after'] = new Date(Date.now() + 1000).toUTCString();
			const status = fault.status ?? 503;
			return fail(new HttpError(status, fault.message ?? `Injected ${status}`, 'injected'), headers);
		}
		if (fault?.kind === 'notEnvelope') {
			return send(200, { items: [], meta: this.meta(requestId) }, rate.headers);
		}
		if (fault?.kind === 'redirect') {
			return send(fault.status ?? 302, undefined, { ...rate.headers, location: fault.location ?? '/' });
		}
		if (fault?.kind === 'malformed') {
			entry.status = 200;
			res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': requestId, ...rate.headers });
			res.end('{"data": [ {"id": "truncated');
			return;
		}

		// A call's recording: audio, not JSON (emulator/recordings.ts).
		const recording = method === 'GET' ? /^\/v1\/calls\/([^/]+)\/recording$/.exec(url.pathname) : null;
		if (recording) {
			if (!apiKey.scopes.includes('calls:read')) {
				return fail(new HttpError(403, 'This API key is missing the required scope: calls:read', 'insufficient_scope'), rate.headers);
			}
			res.on('finish', () => (entry.status = res.statusCode));
			return this.recordings.serveApi(req, decodeURIComponent(recording[1]), res, { ...rate.headers, 'x-request-id': requestId });
		}

		try {
			const { status, body } = this.route(method, url, raw, apiKey, requestId, fault);
			if (fault?.kind === 'applyThenDrop') {
				entry.status = -1;
				req.socket.destroy();
				return;
			}
			if (fault?.kind === 'applyThenStatus') {
				return fail(new HttpError(fault.status ?? 502, 'Bad gateway', 'injected'), rate.headers);
			}
			if (fault?.kind === 'trickle') return this.trickle(res, entry, status, body, { 'x-request-id': requestId, ...rate.headers }, fault.delayMs ?? 50);
			send(status, body, rate.headers);
		} catch (error) {
			if (error instanceof HttpError) return fail(error, rate.headers);
			throw error;
		}
	}

	/** meta of an answer: request_id, and timestamp unless switched off. */
	private meta(requestId: string): Record<string, string> {
		return this.config.metaTimestamp
			? { request_id: requestId, timestamp: formatTime(new Date().toISOString(), this.config.timestampFormat) }
			: { request_id: requestId };
	}

	/** A record as the API writes it (timestamps in the configured format). */
	private render(record: Record<string, Json>): Record<string, Json> {
		// A call's recording_url by the recording switches (emulator/recordings.ts).
		const recordingUrl = 'recording_url' in record ? this.recordings.urlFor(record as StoredRecord, this.url) : undefined;
		if (recordingUrl !== undefined) record = { ...record, recording_url: recordingUrl };
		if (this.config.timestampFormat === 'millis') return record;
		const out: Record<string, Json> = { ...record };
		for (const key of Object.keys(out)) {
			const value = out[key];
			if (TIME_FIELDS.has(key) && typeof value === 'string') out[key] = formatTime(value, this.config.timestampFormat);
		}
		return out;
	}

	private errorBody(error: HttpError, requestId: string): unknown {
		const meta = this.meta(requestId);
		switch (this.config.errorShape) {
			case 'nested':
				return { error: { message: error.message, code: error.code }, meta };
			case 'message':
				return { message: error.message, meta };
			case 'string':
				return { error: error.message };
			case 'text':
				return error.message;
			case 'empty':
				return undefined;
		}
	}

	private single(data: Json, requestId: string): unknown {
		const rendered = typeof data === 'object' && data !== null && !Array.isArray(data) ? this.render(data) : data;
		if (!this.config.wrapSingle) return rendered;
		return { data: rendered, meta: this.meta(requestId) };
	}

	private route(
		method: string,
		url: URL,
		raw: Buffer,
		apiKey: ApiKey,
		requestId: string,
		fault: Fault | undefined,
	): { status: number; body: unknown } {
		const parts = url.pathname.split('/').filter(Boolean);
		const need = (scope: string) => {
			if (!apiKey.scopes.includes(scope)) {
				throw new HttpError(403, `This API key is missing the required scope: ${scope}`, 'insufficient_scope');
			}
		};
		if (parts[0] !== 'v1') throw new HttpError(404, `No route ${method} ${url.pathname}`, 'not_found');
		if (method === 'GET' && parts[1] === 'me' && parts.length === 2) {
			return {
				status: 200,
				body: { data: { ...ORG, scopes: apiKey.scopes }, meta: this.meta(requestId) },
			};
		}
		const resource = parts[1] as Resource;
		if (!RESOURCES.includes(resource)) throw new HttpError(404, `No route ${method} ${url.pathname}`, 'not_found');
		const readScope = `${resource}:read`;

		if (method === 'GET' && parts.length === 2) {
			need(readScope);
			return { status: 200, body: this.list(resource, url.searchParams, requestId, fault) };
		}
		if (method === 'GET' && parts.length === 3 && (resource === 'calls' || resource === 'contacts')) {
			need(readScope);
			const id = decodeURIComponent(parts[2]);
			const record = this.records[resource].find((r) => r.id === id);
			if (!record) {
				const what = resource === 'calls' ? 'Call' : 'Contact';
				throw new HttpError(404, `${what} not found: ${id}`, 'not_found');
			}
			const data = resource === 'calls' ? { ...record, messages: messagesFor(record) } : record;
			return { status: 200, body: this.single(data, requestId) };
		}
		if (method === 'POST' && parts.length === 2 && resource === 'contacts') {
			need('contacts:write');
			return { status: 201, body: this.single(this.createContact(raw), requestId) };
		}
		throw new HttpError(404, `No route ${method} ${url.pathname}`, 'not_found');
	}

	private createContact(raw: Buffer): StoredRecord {
		let input: Record<string, Json>;
		try {
			input = JSON.parse(raw.toString('utf8') || '{}') as Record<string, Json>;
		} catch {
			throw new HttpError(400, 'Request body must be JSON', 'invalid_body');
		}
		const phone = input.phone;
		if (typeof phone !== 'string' || !E164.test(phone)) {
			throw new HttpError(400, 'phone is required and must be E.164, e.g. +14155551234', 'invalid_phone');
		}
		if (this.config.duplicatePhone === 'conflict' && this.records.contacts.some((c) => c.phone === phone)) {
			throw new HttpError(409, `A contact with phone ${phone} already exists`, 'duplicate_phone');
		}
		const now = new Date().toISOString();
		const fields: Record<string, Json> = { phone, source: 'api', total_calls: 0, last_call_at: null, updated_at: now };
		for (const key of ['name', 'email', 'company', 'notes']) fields[key] = input[key] ?? null;
		return this.add('contacts', { ...fields, id: randomUUID(), created_at: now });
	}

	private list(resource: Resource, params: URLSearchParams, requestId: string, fault: Fault | undefined): unknown {
		const limitText = params.get('limit');
		const limit = limitText === null ? 50 : Number(limitText);
		if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
			throw new HttpError(400, 'limit must be an integer from 1 to 100', 'invalid_limit');
		}
		const filters: Array<(r: StoredRecord) => boolean> = [];
		const since = params.get('since');
		if (since !== null) {
			const sinceMs = Date.parse(since);
			if (Number.isNaN(sinceMs)) throw new HttpError(400, `since is not an ISO date: ${since}`, 'invalid_since');
			filters.push(
				this.config.sinceMode === 'inclusive'
					? (r) => Date.parse(r.created_at) >= sinceMs
					: (r) => Date.parse(r.created_at) > sinceMs,
			);
		}
		// Filters applied after paging when the switch says so (since always before).
		const later: Array<(r: StoredRecord) => boolean> = [];
		const enumFilter = (name: string, allowed: string[] | null, field: string) => {
			const value = params.get(name);
			if (value === null) return;
			if (allowed && !allowed.includes(value)) {
				throw new HttpError(400, `${name} must be one of ${allowed.join(', ')}`, `invalid_${name}`);
			}
			(this.config.filterAfterPaging ? later : filters).push((r) => r[field] === value);
		};
		if (resource === 'calls') {
			enumFilter('status', CALL_STATUSES, 'status');
			enumFilter('phone', null, 'caller_phone');
		} else if (resource === 'contacts') {
			enumFilter('phone', null, 'phone');
		} else if (resource === 'leads') {
			enumFilter('status', LEAD_STATUSES, 'status');
			enumFilter('urgency', URGENCIES, 'urgency');
		} else {
			enumFilter('status', APPOINTMENT_STATUSES, 'status');
		}

		// Walk the records sorted by (created_at, id), forwards or backwards, from the cursor.
		const list = this.sortedRecords(resource);
		const newestFirst = this.config.order === 'newest';
		const cursor = params.get('cursor');
		let i = newestFirst ? list.length - 1 : 0;
		if (cursor) {
			const [t, id, issuedAt, serial] = decodeCursor(cursor);
			const ttl = this.config.cursorTtlMs;
			if ((ttl !== null && !(Date.now() - issuedAt <= ttl)) || !(serial >= this.cursorsValidFrom)) {
				throw new HttpError(this.config.cursorExpiredStatus, 'Cursor expired; start the listing again', 'cursor_expired');
			}
			const pivot = { id, created_at: t } as StoredRecord;
			// First index whose key is greater than the pivot.
			let lo = 0;
			let hi = list.length;
			while (lo < hi) {
				const mid = (lo + hi) >> 1;
				if (compareKey(list[mid], pivot) <= 0) lo = mid + 1;
				else hi = mid;
			}
			i = newestFirst ? lo - 1 : lo;
			// Newest first: skip the pivot itself when it is still in the list.
			if (newestFirst && i >= 0 && compareKey(list[i], pivot) === 0) i--;
		}
		const step = newestFirst ? -1 : 1;
		const page: StoredRecord[] = [];
		let hasMore = false;
		for (; i >= 0 && i < list.length; i += step) {
			if (!filters.every((f) => f(list[i]))) continue;
			if (page.length === limit) {
				hasMore = true;
				break;
			}
			page.push(list[i]);
		}
		let nextCursor = hasMore ? encodeCursor(page[page.length - 1]) : null;
		let data: StoredRecord[] = later.length ? page.filter((r) => later.every((f) => f(r))) : page;
		if (fault?.kind === 'repeatCursor') {
			hasMore = true;
			nextCursor = cursor ?? encodeCursor(page[page.length - 1] ?? { id: 'x', created_at: '1970-01-01T00:00:00Z' });
		}
		if (fault?.kind === 'emptyHasMore') {
			// An empty page, more to follow, and a new cursor to the same position (as a
			// server that filters after paging sends): nothing is skipped.
			const [t, id] = cursor
				? decodeCursor(cursor)
				: newestFirst
					? ['9999-12-31T23:59:59.999Z', '\uffff']
					: ['0000-01-01T00:00:00.000Z', ''];
			data = [];
			hasMore = true;
			nextCursor = encodeCursor({ created_at: t, id });
		}
		if (fault?.kind === 'emptyList') {
			data = [];
			hasMore = false;
			nextCursor = null;
		}
		if (fault?.kind === 'missingCursor') {
			hasMore = true;
			nextCursor = null;
		}
		return {
			data: data.map((r) => this.render(r)),
			has_more: hasMore,
			next_cursor: nextCursor,
			meta: this.meta(requestId),
		};
	}

	// (poller) A body sent byte by byte: headers at once, then one byte every `delayMs`.
	private trickle(res: http.ServerResponse, entry: LoggedRequest, status: number, body: unknown, headers: Record<string, string>, delayMs: number): void {
		entry.status = status;
		const bytes = Buffer.from(JSON.stringify(body));
		res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(bytes.length), ...headers });
		let i = 0;
		const timer = setInterval(() => {
			if (res.destroyed || i >= bytes.length) {
				clearInterval(timer);
				if (!res.destroyed) res.end();
				return;
			}
			res.write(bytes.subarray(i, i + 1));
			i++;
		}, delayMs);
		res.on('close', () => clearInterval(timer));
	}

	private admin(method: string, url: URL, raw: Buffer, res: http.ServerResponse): void {
		const reply = (status: number, body: unknown) => {
			res.writeHead(status, { 'content-type': 'application/json' });
			res.end(JSON.stringify(body));
		};
		let input: Record<string, unknown> | Array<Record<string, unknown>> = {};
		try {
			input = raw.length ? (JSON.parse(raw.toString('utf8')) as typeof input) : {};
		} catch {
			return reply(400, { error: 'admin body must be JSON' });
		}
		const parts = url.pathname.split('/').filter(Boolean);
		const route = `${method} ${parts.slice(1, 2).join('/')}`;
		switch (route) {
			case 'GET health':
				return reply(200, { ok: true, counts: Object.fromEntries(RESOURCES.map((r) => [r, this.records[r].length])) });
			case 'POST config':
				this.configure(input as Partial<EmulatorConfig>);
				return reply(200, this.config);
			case 'POST faults':
				this.inject(...(Array.isArray(input) ? input : [input]).map((f) => f as unknown as Fault));
				return reply(200, { faults: this.faults.length });
			case 'DELETE faults':
				this.faults = [];
				return reply(200, { faults: 0 });
			case 'GET requests':
				return reply(200, this.requests);
			case 'DELETE requests':
				this.clearLog();
				return reply(200, {});
			case 'POST expire-cursors':
				this.expireCursors();
				return reply(200, {});
			case 'POST reset':
				this.reset();
				return reply(200, {});
			case 'POST records': {
				const resource = parts[2] as Resource;
				if (!RESOURCES.includes(resource)) return reply(404, { error: `unknown resource ${resource}` });
				const list = (Array.isArray(input) ? input : [input]) as Array<Record<string, Json>>;
				return reply(201, list.map((fields) => this.add(resource, fields)));
			}
			// Appointments over time (issue 26).
			case 'PATCH records': {
				// PATCH /__admin/records/<resource>/<id>: change fields (updated_at becomes now).
				const resource = parts[2] as Resource;
				if (!RESOURCES.includes(resource) || !parts[3]) return reply(404, { error: 'PATCH /__admin/records/<resource>/<id>' });
				const updated = this.update(resource, decodeURIComponent(parts[3]), input as Record<string, Json>);
				return updated ? reply(200, updated) : reply(404, { error: `no ${resource} record ${parts[3]}` });
			}
			case 'POST churn':
				return reply(200, this.churnAppointments(input as ChurnStep));
			default:
				return reply(404, { error: `no admin route ${method} ${url.pathname}` });
		}
	}
}

export async function startEmulator(options: EmulatorOptions = {}): Promise<InboundFlowEmulator> {
	const emulator = new InboundFlowEmulator(options);
	await emulator.start();
	return emulator;
}

/** Signs a webhook body the way InboundFlow documents it. */
export function signWebhook(secret: string, rawBody: string, timestamp?: string): string {
	const payload = timestamp === undefined ? rawBody : `${timestamp}.${rawBody}`;
	return `sha256=${createHmac('sha256', secret).update(payload).digest('hex')}`;
}

export interface WebhookDelivery {
	event: string;
	data: Record<string, Json>;
	secret?: string;
	/** 'raw' signs the body; 'timestamped' signs `<timestamp>.<body>`. */
	scheme?: 'raw' | 'timestamped';
	timestamp?: number;
	deliveryId?: string;
}

/** Builds the body and headers of a webhook delivery as InboundFlow sends it. */
export function buildWebhook(delivery: WebhookDelivery): { body: string; headers: Record<string, string> } {
	const timestamp = String(delivery.timestamp ?? Math.floor(Date.now() / 1000));
	const deliveryId = delivery.deliveryId ?? randomUUID();
	const body = JSON.stringify({
		event: delivery.event,
		timestamp: new Date(Number(timestamp) * 1000).toISOString(),
		organization_id: ORG.organization_id,
		delivery_id: deliveryId,
		data: delivery.data,
	});
	const headers: Record<string, string> = {
		'content-type': 'application/json',
		'user-agent': 'InboundFlow-Webhook/1.0',
		'x-inboundflow-event': delivery.event,
		'x-inboundflow-delivery-id': deliveryId,
		'x-inboundflow-timestamp': timestamp,
	};
	if (delivery.secret) {
		headers['x-inboundflow-signature'] = signWebhook(
			delivery.secret,
			body,
			delivery.scheme === 'timestamped' ? timestamp : undefined,
		);
	}
	return { body, headers };
}

// --- Appointments over time (issue 26) ---

export interface ChurnStep {
	book?: number;
	reschedule?: number;
	cancel?: number;
	/** New bookings start up to this many days ahead (default 42: six weeks). */
	maxAheadDays?: number;
	seed?: number;
}

/** Start, end (an hour later) and local date of an appointment starting at `startMs`. */
export function appointmentTimes(startMs: number): Record<string, Json> {
	const start = new Date(startMs).toISOString();
	return {
		appointment_date: start.slice(0, 10),
		appointment_time_start: start,
		appointment_time_end: new Date(startMs + 3_600_000).toISOString(),
	};
}

// Appointment times follow the timestamp-format switch too (ISO 8601 UTC is documented;
// an offset or whole seconds are legitimate answers).
TIME_FIELDS.add('appointment_time_start');
TIME_FIELDS.add('appointment_time_end');
