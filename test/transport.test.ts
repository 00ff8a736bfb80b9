// Transport and pager, through the action node in n8n-core contexts, over real HTTP.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';

import * as workflow from 'n8n-workflow';
import type { IDataObject } from 'n8n-workflow';

import type { ErrorShape, InboundFlowEmulator } from '../emulator/server';
import { MAX_EMPTY_PAGES } from '../nodes/shared/transport/pagination';
import { DEFAULT_SETTINGS, resetBudgets, settings } from '../nodes/shared/transport/pacing';
import { executeNode, fastTimings, json, poll, restoreTimings, smallerShareWhileBoth, withEmulator, type Credentials } from './helpers';

let emulator: InboundFlowEmulator;
let credentials: Credentials;

beforeAll(async () => {
	({ emulator, credentials } = await withEmulator({ seed: { calls: 250, contacts: 5 } }));
});
afterAll(async () => await emulator.stop());
beforeEach(() => {
	emulator.reset();
	fastTimings();
	settings.rateWindowMs = DEFAULT_SETTINGS.rateWindowMs;
});
afterAll(restoreTimings);

const account = { resource: 'account', operation: 'get' };
const allCalls = (extra: IDataObject = {}) => ({ resource: 'call', operation: 'getAll', returnAll: true, ...extra });
const getCall = (callId: string) => ({ resource: 'call', operation: 'get', callId });

async function failure(
	parameters: IDataObject,
	creds: Credentials = credentials,
	onCredentialRead?: () => void,
): Promise<Error & IDataObject> {
	try {
		await executeNode(parameters, { credentials: creds, onCredentialRead });
	} catch (error) {
		return error as Error & IDataObject;
	}
	throw new Error('expected the node to fail');
}

describe('credential and authentication', () => {
	it('sends the key as a bearer token, and a wrong key fails with "rejected"', async () => {
		expect(json(await executeNode(account, { credentials }))[0].organization_name).toBe('Dave Auto Shop');
		const error = await failure(account, { ...credentials, apiKey: 'sk_live_wrong_key_1234567890' });
		expect(error.message).toMatch(/rejected the API key/);
		expect(error.message).toMatch(/HTTP 401/);
	});

	it.each(['nested', 'message', 'string', 'text'] as const)(
		'never keeps the API key in any field of an error, even when the server echoes it (%s body)',
		async (errorShape) => {
			const key = credentials.apiKey!;
			emulator.configure({ errorShape });
			emulator.inject({ kind: 'status', status: 400, message: `bad key ${key}`, times: 10 });
			const error = await failure(account);
			// Everything n8n may store: every own property, however deep, and the stack.
			const everything = JSON.stringify(error, Object.getOwnPropertyNames(error)) + String(error.stack) + inspect(error, { depth: 10 });
			expect(everything).toContain('bad key');
			expect(everything).not.toContain(key);
			expect(error.message).toContain('[redacted]');
		},
	);

	it('does not follow a redirect: the key never reaches another origin, the error names the target', async () => {
		const seen: string[] = [];
		const other = http.createServer((req, res) => {
			seen.push(String(req.headers.authorization ?? ''));
			res.end('{"data":{}}');
		});
		await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
		const target = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
		try {
			emulator.inject({ kind: 'redirect', status: 302, location: `${target}/v1/me` });
			const error = await failure(account);
			expect(error.message).toBe(
				`InboundFlow answered the request to get the account with a redirect (HTTP 302) to ${target}, which the node does not follow`,
			);
			expect(seen).toEqual([]);
			// Same origin too: a redirect is reported, not followed.
			emulator.inject({ kind: 'redirect', status: 301, location: '/v2/me' });
			expect((await failure(account)).message).toContain(`(HTTP 301) to ${emulator.url}`);
		} finally {
			await new Promise<void>((resolve) => other.close(() => resolve()));
		}
	});

	it('reports an error from inside n8n as what it is, not as an unreachable service', async () => {
		let reads = 0;
		const error = await failure(account, credentials, () => {
			// Our read, then n8n's own read inside its HTTP helper: that one fails.
			if (++reads === 2) throw new Error('No bridge acquired for this context. Call acquire() first.');
		});
		expect(error.message).toBe(
			'The request to get the account failed inside n8n: No bridge acquired for this context. Call acquire() first.',
		);
		expect(error.message).not.toMatch(/Could not reach/);
		expect(emulator.requests).toHaveLength(0);
	});

	it('reads the credential once per traversal (plus n8n\'s own read per request)', async () => {
		let reads = 0;
		const out = await executeNode(allCalls(), { credentials, onCredentialRead: () => reads++ });
		expect(json(out)).toHaveLength(250);
		expect(emulator.requests).toHaveLength(3);
		expect(reads).toBe(3 + 1);
	});

	it('refuses an http:// base URL other than localhost before sending anything', async () => {
		const error = await failure(account, { ...credentials, baseUrl: 'http://api.example.com' });
		expect(error.message).toMatch(/^Base URL: "http:\/\/api.example.com" uses http:\/\//);
		expect(emulator.requests).toHaveLength(0);
	});

	it('accepts a trailing slash on the base URL', async () => {
		await executeNode(account, { credentials: { ...credentials, baseUrl: `${emulator.url}/` } });
		expect(emulator.requests[0].path).toBe('/v1/me');
	});
});

describe('responses', () => {
	it.each([true, false])('unwraps single objects whether wrapped in data or not (wrapSingle=%s)', async (wrapSingle) => {
		emulator.configure({ wrapSingle });
		const id = emulator.records.calls[0].id;
		const [call] = json(await executeNode(getCall(id), { credentials }));
		expect(call.id).toBe(id);
		expect(Array.isArray(call.messages)).toBe(true);
	});

	const shapes: Array<[ErrorShape, boolean]> = [
		['nested', true],
		['message', true],
		['string', true],
		['text', true],
		['empty', false],
	];
	it.each(shapes)('names status, server message and request id for error body shape %s', async (shape, hasMessage) => {
		emulator.configure({ errorShape: shape });
		const missing = '11111111-2222-4333-8444-555555555555';
		const error = await failure(getCall(missing));
		expect(error.message).toContain('HTTP 404');
		expect(error.message).toContain(`Call "${missing}" was not found`);
		expect(error.message).toMatch(/request ID req_[0-9a-f]{12}/);
		if (hasMessage) expect(error.message).toContain(`InboundFlow said: "Call not found: ${missing}"`);
	});

	it('words a 400 as an invalid request, with the server message', async () => {
		emulator.inject({ kind: 'status', status: 400, message: 'limit must be an integer from 1 to 100' });
		const error = await failure(account);
		expect(error.message).toMatch(
			/^InboundFlow refused the request to get the account as invalid \(HTTP 400; InboundFlow said: "limit must be an integer from 1 to 100"; request ID req_/,
		);
	});

	it('names the missing scope on a 403', async () => {
		const error = await failure(allCalls(), { ...credentials, apiKey: 'sk_test_nocalls_0123456789abc' });
		expect(error.message).toMatch(/lacks the "calls:read" scope needed to list calls \(HTTP 403/);
	});

	it('retries a malformed JSON body on GET, then succeeds', async () => {
		emulator.inject({ kind: 'malformed', path: '/v1/me' });
		expect(json(await executeNode(account, { credentials }))[0].plan).toBe('Starter Plan');
		expect(emulator.requests).toHaveLength(2);
	});

	it('fails clearly when the body stays malformed', async () => {
		emulator.inject({ kind: 'malformed', path: '/v1/me', times: 20 });
		const error = await failure(account);
		expect(error.message).toMatch(/unexpected answer.*not valid JSON \(HTTP 200\)/);
		expect(emulator.requests).toHaveLength(settings.maxRetries + 1);
	});
});

describe('retries', () => {
	it.each([502, 503, 504])('retries a GET after %i, bounded', async (status) => {
		emulator.inject({ kind: 'status', status, times: 2 });
		await executeNode(account, { credentials });
		expect(emulator.requests.map((r) => r.status)).toEqual([status, status, 200]);
	});

	it('gives up after maxRetries and names the status', async () => {
		emulator.inject({ kind: 'status', status: 503, times: 100 });
		const error = await failure(account);
		expect(error.message).toMatch(/failed to get the account \(HTTP 503/);
		expect(emulator.requests).toHaveLength(settings.maxRetries + 1);
	});

	it.each([500, 400, 404])('does not retry a %i', async (status) => {
		emulator.inject({ kind: 'status', status, times: 5 });
		const error = await failure(account);
		expect(error.message).toContain(`HTTP ${status}`);
		expect(emulator.requests).toHaveLength(1);
	});

	it('retries a GET after a dropped connection', async () => {
		emulator.inject({ kind: 'drop', path: '/v1/me' });
		await executeNode(account, { credentials });
		expect(emulator.requests.map((r) => r.status)).toEqual([-1, 200]);
	});

	it('reports an unreachable server after bounded retries', async () => {
		const error = await failure(account, { ...credentials, baseUrl: 'http://127.0.0.1:9' });
		expect(error.message).toBe(
			'Could not reach InboundFlow at http://127.0.0.1:9 to get the account: the connection was refused, after 5 attempts',
		);
		expect(String(error.description)).toContain('ECONNREFUSED');
	});

	it('waits Retry-After given in seconds on a 429', async () => {
		emulator.inject({ kind: 'status', status: 429, retryAfter: 1 });
		await executeNode(account, { credentials });
		expect(emulator.requests.map((r) => r.status)).toEqual([429, 200]);
		expect(emulator.requests[1].at - emulator.requests[0].at).toBeGreaterThanOrEqual(950);
	});

	it('waits until the HTTP date of a Retry-After on a 429', async () => {
		// The emulator's date is 1 s ahead, at whole-second precision: 0–1 s from the 429.
		emulator.inject({ kind: 'status', status: 429, retryAfter: 'date' });
		await executeNode(account, { credentials });
		const [first, second] = emulator.requests;
		expect([first.status, second.status]).toEqual([429, 200]);
		const retryAt = Math.floor((first.at + 1000) / 1000) * 1000;
		expect(second.at).toBeGreaterThanOrEqual(retryAt - 5);
		// Not the short backoff a missing or unreadable Retry-After gets (5–10 ms here).
		expect(second.at - first.at).toBeGreaterThan(Math.min(50, retryAt - first.at));
	});

	it('backs off on a 429 without Retry-After, and fails clearly when 429s persist', async () => {
		emulator.inject({ kind: 'status', status: 429, retryAfter: null, times: 100 });
		const error = await failure(account);
		expect(error.message).toMatch(/rate limit was still reached after waiting and retrying.*HTTP 429/);
		expect(emulator.requests).toHaveLength(settings.maxRateLimitRetries + 1);
	});

	it('waits for X-RateLimit-Reset on a 429 without Retry-After (another client spent the key)', async () => {
		emulator.configure({ rateLimit: { limit: 3, windowMs: 2000 }, retryAfter: 'none', sendReset: true });
		const other = () => fetch(`${emulator.url}/v1/me`, { headers: { authorization: `Bearer ${credentials.apiKey}` } });
		// Start just after a window boundary, so all of this falls in one window.
		await new Promise((r) => setTimeout(r, 2000 - (Date.now() % 2000) + 20));
		for (let i = 0; i < 3; i++) await other();
		const windowEnd = Math.ceil(Date.now() / 2000) * 2000;
		emulator.clearLog();
		await executeNode(account, { credentials });
		const statuses = emulator.requests.map((r) => r.status);
		expect(statuses[0]).toBe(429);
		expect(statuses[statuses.length - 1]).toBe(200);
		// Retried once the window reset, not by short backoff steps before it.
		expect(emulator.requests[1].at).toBeGreaterThanOrEqual(windowEnd);
		expect(statuses).toHaveLength(2);
	});

	it('stops waiting for a 429 when the execution is cancelled', async () => {
		emulator.inject({ kind: 'status', status: 429, retryAfter: 60 });
		const controller = new AbortController();
		const started = Date.now();
		setTimeout(() => controller.abort(new Error('Execution was cancelled')), 200);
		await expect(executeNode(account, { credentials, abortSignal: controller.signal })).rejects.toThrow(/cancelled/);
		expect(Date.now() - started).toBeLessThan(5000);
		expect(emulator.requests).toHaveLength(1);
	});

	it('fails at once when Retry-After asks for longer than it may wait', async () => {
		emulator.inject({ kind: 'status', status: 429, retryAfter: 3600 });
		const error = await failure(account);
		expect(error.message).toContain('HTTP 429');
		expect(emulator.requests).toHaveLength(1);
	});
});

describe('POST is never repeated when it may have been applied', () => {
	const create = { resource: 'contact', operation: 'create', phone: '+14155550123', options: { ifPhoneExists: 'create' } };

	it('does not retry after the server applied it and dropped the connection', async () => {
		const before = emulator.records.contacts.length;
		emulator.inject({ kind: 'applyThenDrop', method: 'POST' });
		const error = await failure(create);
		expect(error.message).toMatch(/Could not reach InboundFlow .*: the connection was dropped, after 1 attempt$/);
		expect(String(error.description)).toMatch(/not retried: the request may have reached InboundFlow/);
		expect(emulator.apiRequests({ method: 'POST' })).toHaveLength(1);
		expect(emulator.records.contacts.length).toBe(before + 1);
	});

	it('does not retry a POST after a 502', async () => {
		emulator.inject({ kind: 'applyThenStatus', status: 502, method: 'POST' });
		await failure(create);
		expect(emulator.apiRequests({ method: 'POST' })).toHaveLength(1);
	});

	it('retries a POST after a 429, which proves nothing was applied', async () => {
		emulator.inject({ kind: 'status', status: 429, retryAfter: 1, method: 'POST' });
		const [contact] = json(await executeNode(create, { credentials }));
		expect(contact.phone).toBe('+14155550123');
		expect(emulator.apiRequests({ method: 'POST' }).map((r) => r.status)).toEqual([429, 201]);
		expect(emulator.records.contacts.filter((c) => c.phone === '+14155550123')).toHaveLength(1);
	});
});

describe('pacing by X-RateLimit headers', () => {
	it('with X-RateLimit-Reset switched on, slows down before the limit instead of meeting a 429', async () => {
		emulator.configure({ rateLimit: { limit: 5, windowMs: 1000 }, sendReset: true });
		const started = Date.now();
		// 12 items, one request each, against 5 requests per one-second window.
		const out = await executeNode(account, { credentials, items: Array.from({ length: 12 }, () => ({})) });
		expect(json(out)).toHaveLength(12);
		expect(emulator.requests.filter((r) => r.status === 429)).toHaveLength(0);
		expect(Date.now() - started).toBeGreaterThanOrEqual(900);
	});

	it('meets 429s without pacing (the check above is not vacuous)', async () => {
		emulator.configure({ rateLimit: { limit: 5, windowMs: 1000 } });
		const results = await Promise.all(
			Array.from({ length: 8 }, () => fetch(`${emulator.url}/v1/me`, { headers: { authorization: `Bearer ${credentials.apiKey}` } })),
		);
		expect(results.filter((r) => r.status === 429).length).toBeGreaterThan(0);
	});

	it('with the documented headers only, learns the window from Retry-After and stops meeting 429s', async () => {
		// 3 requests per 2-second window, no X-RateLimit-Reset: 14 requests span 5 windows.
		emulator.configure({ rateLimit: { limit: 3, windowMs: 2000 }, sendReset: false, retryAfter: 'seconds' });
		await new Promise((r) => setTimeout(r, 2000 - (Date.now() % 2000) + 20));
		const out = await executeNode(account, { credentials, items: Array.from({ length: 14 }, () => ({})) });
		expect(json(out)).toHaveLength(14);
		const limited = emulator.requests.filter((r) => r.status === 429);
		// The first two windows teach the end and the length; afterwards none.
		expect(limited.length).toBeLessThanOrEqual(2);
		const lastLimited = limited.length ? limited[limited.length - 1].at : 0;
		expect(emulator.requests.filter((r) => r.status === 200 && r.at > lastLimited).length).toBeGreaterThanOrEqual(6);
	}, 20_000);

	it('with the documented headers only, goes on in the window right after each 429 or spent window, never one later', async () => {
		// 3 requests per 2-second window: every window the run spans must carry requests.
		emulator.configure({ rateLimit: { limit: 3, windowMs: 2000 }, sendReset: false, retryAfter: 'seconds' });
		await new Promise((r) => setTimeout(r, 2000 - (Date.now() % 2000) + 20));
		const out = await executeNode(account, { credentials, items: Array.from({ length: 14 }, () => ({})) });
		expect(json(out)).toHaveLength(14);
		const windows = emulator.requests.filter((r) => r.status === 200).map((r) => Math.floor(r.at / 2000));
		const skipped = [];
		for (let w = windows[0]; w <= windows[windows.length - 1]; w++) if (!windows.includes(w)) skipped.push(w);
		expect({ skipped, windowsUsed: new Set(windows).size }).toEqual({ skipped: [], windowsUsed: 5 });
	}, 20_000);

	it('two executions at once with one key (documented headers only): no window the runs span is skipped, nothing fails', async () => {
		emulator.configure({ rateLimit: { limit: 3, windowMs: 2000 }, sendReset: false, retryAfter: 'seconds' });
		await new Promise((r) => setTimeout(r, 2000 - (Date.now() % 2000) + 20));
		const runs = await Promise.all(
			[0, 1].map(() => executeNode(account, { credentials, items: Array.from({ length: 7 }, () => ({})) })),
		);
		expect(runs.map((out) => json(out).length)).toEqual([7, 7]);
		const windows = emulator.requests.filter((r) => r.status === 200).map((r) => Math.floor(r.at / 2000));
		const skipped = [];
		for (let w = windows[0]; w <= windows[windows.length - 1]; w++) if (!windows.includes(w)) skipped.push(w);
		expect({ skipped, windowsUsed: new Set(windows).size }).toEqual({ skipped: [], windowsUsed: 5 });
	}, 20_000);

	it('without learning (each 429 answered alone), the same run meets a 429 in every window', async () => {
		emulator.configure({ rateLimit: { limit: 3, windowMs: 2000 }, sendReset: false, retryAfter: 'seconds' });
		await new Promise((r) => setTimeout(r, 2000 - (Date.now() % 2000) + 20));
		for (let i = 0; i < 14; i++) {
			resetBudgets(); // forget what was learned
			await executeNode(account, { credentials });
		}
		expect(emulator.requests.filter((r) => r.status === 429).length).toBeGreaterThanOrEqual(3);
	}, 20_000);
});

describe('pager', () => {
	it('follows cursors with every filter on every page, 100 per page', async () => {
		const since = '2000-01-01T00:00:00.000Z';
		const out = await executeNode(
			allCalls({ simplify: false, filters: { createdAfter: since, status: 'completed' } }),
			{ credentials },
		);
		const expected = emulator.records.calls.filter((c) => c.status === 'completed');
		expect(json(out).map((c) => c.id).sort()).toEqual(expected.map((c) => c.id).sort());
		const pages = emulator.requests;
		expect(pages).toHaveLength(Math.ceil(expected.length / 100) || 1);
		for (const [index, page] of pages.entries()) {
			expect(page.query).toMatchObject({ since, status: 'completed', limit: '100' });
			expect(Boolean(page.query.cursor)).toBe(index > 0);
		}
	});

	it.each([
		[1, 1],
		[99, 1],
		[100, 1],
		[101, 2],
		[250, 3],
		[1000, 3],
	])('Limit %i returns min(limit, all) records in %i request(s)', async (limit, requests) => {
		const out = await executeNode({ resource: 'call', operation: 'getAll', returnAll: false, limit }, { credentials });
		expect(json(out)).toHaveLength(Math.min(limit, 250));
		expect(emulator.requests).toHaveLength(requests);
		expect(Number(emulator.requests[0].query.limit)).toBe(Math.min(limit, 100));
	});

	it.each([
		['repeatCursor', /same next_cursor twice/],
		['missingCursor', /has_more: true without a next_cursor/],
	] as const)('stops with a clear error on %s', async (kind, message) => {
		emulator.inject({ kind, path: '/v1/calls', skip: 1, times: 5 });
		const error = await failure(allCalls());
		expect(error.message).toMatch(message);
		expect(emulator.requests.length).toBeLessThanOrEqual(3);
	});

	it('follows empty pages that say more follow (a server filtering after paging), missing nothing', async () => {
		emulator.inject({ kind: 'emptyHasMore', path: '/v1/calls', skip: 1, times: 7 });
		const out = await executeNode(allCalls(), { credentials });
		expect(json(out).map((c) => c.id).sort()).toEqual(emulator.records.calls.map((c) => c.id).sort());
		expect(emulator.requests).toHaveLength(3 + 7);
	});

	it(`stops with a clear error after ${MAX_EMPTY_PAGES} empty pages in a row`, async () => {
		emulator.inject({ kind: 'emptyHasMore', path: '/v1/calls', times: 1000 });
		const error = await failure(allCalls());
		expect(error.message).toMatch(new RegExp(`${MAX_EMPTY_PAGES} empty pages in a row`));
		expect(emulator.requests).toHaveLength(MAX_EMPTY_PAGES);
	});

	it('with filtering after paging switched on, returns exactly the matching records', async () => {
		emulator.configure({ filterAfterPaging: true });
		const out = await executeNode(allCalls({ filters: { status: 'failed' } }), { credentials });
		const expected = emulator.records.calls.filter((c) => c.status === 'failed');
		expect(json(out).map((c) => c.id).sort()).toEqual(expected.map((c) => c.id).sort());
		// Pages of 100 raw records: 3 requests for 250 calls, whatever matches.
		expect(emulator.requests).toHaveLength(3);
	});

	it('retries, then rejects, a body that is not JSON', async () => {
		emulator.inject({ kind: 'malformed', path: '/v1/calls', times: 100 });
		const error = await failure(allCalls());
		expect(error.message).toMatch(/not valid JSON/);
		expect(emulator.requests).toHaveLength(settings.maxRetries + 1);
	});

	it('rejects valid JSON that is not a list envelope', async () => {
		emulator.inject({ kind: 'notEnvelope', path: '/v1/calls' });
		const error = await failure(allCalls());
		expect(error.message).toMatch(/a list answer without a "data" array/);
		expect(emulator.requests).toHaveLength(1);
	});
});

/**
 * A hostile InboundFlow: answers /v1/me and /v1/calls with the scripted status and
 * headers, one script line per request, then plain 200s.
 */
async function hostileServer(script: Array<{ status: number; headers: Record<string, string> }>) {
	const seen: Array<{ path: string; at: number }> = [];
	const server = http.createServer((req, res) => {
		seen.push({ path: String(req.url), at: Date.now() });
		const next = script.shift() ?? { status: 200, headers: {} };
		const body =
			next.status === 200
				? String(req.url).startsWith('/v1/calls')
					? { data: [], has_more: false, next_cursor: null, meta: { request_id: 'req_hostile0001' } }
					: { data: { organization_name: 'Hostile', plan: 'x', scopes: ['calls:read'] }, meta: { request_id: 'req_hostile0001' } }
				: { error: { message: 'Too many requests', code: 'rate_limited' }, meta: { request_id: 'req_hostile0429' } };
		res.writeHead(next.status, { 'content-type': 'application/json', ...next.headers });
		res.end(JSON.stringify(body));
	});
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
	return {
		url,
		seen,
		creds: { apiKey: credentials.apiKey, baseUrl: url } as Credentials,
		close: () => new Promise<void>((resolve) => server.close(() => resolve())),
	};
}

/** The longest time the node spent in n8n's `sleep` while `fn` ran (the node waits only through it). */
async function longestTimer<T>(fn: () => Promise<T>): Promise<{ result: T | Error; longest: number }> {
	let longest = 0;
	const original = workflow.sleep;
	// The time actually spent waiting: a timer that only bounds a request (the transport's
	// whole-request limit) ends, aborted, when the answer comes, and is no wait.
	const measured: typeof workflow.sleep = async (ms, signal) => {
		const started = Date.now();
		try {
			return await original(ms, signal);
		} finally {
			longest = Math.max(longest, Date.now() - started);
		}
	};
	// n8n-workflow exports `sleep` through a getter: replace what the getter returns.
	const exported = workflow as unknown as { sleep: unknown };
	const spy = jest.spyOn(exported, 'sleep', 'get').mockReturnValue(measured);
	try {
		return { result: await fn().catch((error: Error) => error), longest };
	} finally {
		spy.mockRestore();
	}
}

describe('pacing bounds: no server answer stalls or locks out the key', () => {
	const limited = (headers: Record<string, string>) => ({
		status: 429,
		headers: { 'x-ratelimit-limit': '60', 'x-ratelimit-remaining': '0', ...headers },
	});
	const spent = (headers: Record<string, string>) => ({
		status: 200,
		headers: { 'x-ratelimit-limit': '60', 'x-ratelimit-remaining': '0', ...headers },
	});

	it.each([
		['1e308', /asked to wait longer than the node waits/],
		['3600', /asked to wait 3600 s/],
		['2147484', /asked to wait 2147484 s/],
	])(
		'Retry-After: %s fails that execution at once, clearly, and later executions and a polling trigger on the key are not held back',
		async (retryAfter, message) => {
			const server = await hostileServer([limited({ 'retry-after': retryAfter })]);
			try {
				const error = await failure(account, server.creds);
				expect(error.message).toMatch(message);
				expect(error.message).toMatch(/HTTP 429.*request ID req_hostile0429/);
				expect(server.seen).toHaveLength(1);
				// The next execution with the key sends at once and succeeds.
				const next = await longestTimer(() => executeNode(account, { credentials: server.creds }));
				expect(next.result).not.toBeInstanceOf(Error);
				expect(next.longest).toBeLessThan(1000);
				expect(server.seen).toHaveLength(2);
				// A polling trigger on the same key reads too (no silent empty poll).
				await poll({ event: 'newCall' }, { credentials: server.creds, staticData: {} });
				expect(server.seen.length).toBeGreaterThanOrEqual(3);
			} finally {
				await server.close();
			}
		},
	);

	it.each([
		['86400 (seconds from now)', '86400'],
		['25 days ahead (unix seconds: past the 2^31 ms timer limit)', String(Math.floor(Date.now() / 1000) + 25 * 86_400)],
	])('a 200 with X-RateLimit-Reset %s never makes the next request wait beyond the bound', async (_label, reset) => {
		// Others took the key (59 of 60 besides ours): the node leaves them one window (shrunk here).
		settings.rateWindowMs = 1000;
		const server = await hostileServer([spent({ 'x-ratelimit-reset': reset })]);
		try {
			await executeNode(account, { credentials: server.creds });
			const next = await longestTimer(() => executeNode(account, { credentials: server.creds }));
			expect(next.result).not.toBeInstanceOf(Error);
			expect(server.seen).toHaveLength(2);
			expect(next.longest).toBeLessThanOrEqual(settings.maxRetryAfterMs);
		} finally {
			await server.close();
		}
	});

	it('a 429 with X-RateLimit-Reset a day away (no Retry-After) fails that execution clearly and is not learned', async () => {
		const server = await hostileServer([limited({ 'x-ratelimit-reset': '86400' })]);
		try {
			const error = await failure(account, server.creds);
			expect(error.message).toMatch(/asked to wait 86400 s/);
			const next = await longestTimer(() => executeNode(account, { credentials: server.creds }));
			expect(next.result).not.toBeInstanceOf(Error);
			expect(next.longest).toBeLessThan(1000);
		} finally {
			await server.close();
		}
	});

	it('no timer the node sets ever exceeds the bound, whatever the answers (a mix of hostile headers)', async () => {
		const server = await hostileServer([
			spent({ 'x-ratelimit-limit': '1e308', 'x-ratelimit-remaining': '-5', 'x-ratelimit-reset': 'Infinity' }),
			limited({ 'retry-after': 'Wed, 01 Jan 2200 00:00:00 GMT' }),
			spent({ 'x-ratelimit-limit': 'abc', 'x-ratelimit-remaining': '1e400' }),
		]);
		try {
			const all = await longestTimer(async () => {
				await executeNode(account, { credentials: server.creds });
				await failure(account, server.creds);
				await executeNode(account, { credentials: server.creds });
				return await executeNode(account, { credentials: server.creds });
			});
			expect(all.result).not.toBeInstanceOf(Error);
			expect(server.seen).toHaveLength(4);
			expect(all.longest).toBeLessThanOrEqual(settings.maxRetryAfterMs);
		} finally {
			await server.close();
		}
	});
});

/**
 * The documented limit's shape (60 requests per window, only X-RateLimit-Limit and
 * -Remaining, Retry-After on a 429), window shrunk to 3 s, for either way the API may
 * count a window. The node is told the shrunk window as the documented one.
 */
describe('rate limit: reaching the ceiling alone and with two executions on one key (60 requests per 3-s window)', () => {
	const WINDOW = { limit: 60, windowMs: 3000 };
	const models = ['fixed', 'sliding'] as const;
	const items = (n: number) => Array.from({ length: n }, () => ({}));
	const ok = (list: Array<{ status: number }>) => list.filter((r) => r.status === 200).length;
	const limited = (list: Array<{ status: number }>) => list.filter((r) => r.status === 429).length;

	function setup(rateWindow: (typeof models)[number]): void {
		emulator.configure({ rateLimit: WINDOW, rateWindow, sendReset: false, retryAfter: 'seconds' });
		settings.rateWindowMs = WINDOW.windowMs;
	}
	/** Starts just after a fixed window's start, as a key that was idle would. */
	const freshWindow = () => new Promise((r) => setTimeout(r, WINDOW.windowMs - (Date.now() % WINDOW.windowMs) + 20));

	it.each(models)('alone (%s window): at most one 429, every window it spans filled, records exact', async (model) => {
		setup(model);
		await freshWindow();
		const out = await executeNode(account, { credentials, items: items(150) });
		expect(json(out)).toHaveLength(150);
		expect(json(out).every((a) => a.organization_name === 'Dave Auto Shop')).toBe(true);
		const log = emulator.requests;
		expect(ok(log)).toBe(150);
		expect(limited(log)).toBeLessThanOrEqual(1);
		// No window skipped or left part unused: every fixed window strictly inside the run holds 59
		// (the one request the node keeps open for another client of the key, once it knows the
		// window's length); a sliding run of 150 spans at most three windows' starts (60 + 59 + 31).
		if (model === 'fixed') {
			const windows = log.filter((r) => r.status === 200).map((r) => Math.floor(r.at / WINDOW.windowMs));
			const inner = [...new Set(windows)].filter((w) => w > windows[0] && w < windows[windows.length - 1]);
			expect(inner.map((w) => windows.filter((x) => x === w).length)).toEqual(inner.map(() => WINDOW.limit - 1));
		} else {
			const from = log[0].at;
			expect(log.filter((r) => r.status === 200 && r.at < from + 2 * WINDOW.windowMs).length).toBeGreaterThanOrEqual(115);
		}
	}, 30_000);

	it('a request cut off at its deadline no longer holds a place once its window has passed (not for the life of the process)', async () => {
		setup('fixed');
		// A poll whose first request is answered only after the poll's deadline (budget 1 s:
		// 0.8 s for requests, below the request timeout, so the transport's deadline path).
		expect(settings.timeoutMs).toBeGreaterThan(1000);
		emulator.inject({ kind: 'slow', path: '/v1/calls', delayMs: 2500 });
		const started = Date.now();
		await poll({ event: 'newCall' }, { credentials, staticData: {}, pollBudgetMs: 1000 });
		expect(Date.now() - started).toBeLessThan(2000);
		expect(emulator.requests.filter((r) => r.path.startsWith('/v1/calls'))).toHaveLength(1);
		await new Promise((r) => setTimeout(r, 2 * WINDOW.windowMs));
		emulator.clearLog();
		await freshWindow();
		// The whole key: the place a leaked request would hold is not hidden by the one kept open.
		const out = await executeNode(account, { credentials: { ...credentials, rateLimitUse: 'wholeLimit' }, items: items(200) });
		expect(json(out)).toHaveLength(200);
		// Every fixed window strictly inside the run holds the whole limit, as without the
		// cut-off request: it no longer holds a place.
		const windows = emulator.requests.filter((r) => r.status === 200).map((r) => Math.floor(r.at / WINDOW.windowMs));
		const inner = [...new Set(windows)].filter((w) => w > windows[0] && w < windows[windows.length - 1]);
		expect(inner.length).toBeGreaterThanOrEqual(1);
		expect(inner.map((w) => windows.filter((x) => x === w).length)).toEqual(inner.map(() => WINDOW.limit));
	}, 40_000);

	it.each(models)(
		'two executions at once on the key in one n8n process (%s window): ≤ 2 × 429, windows used, neither below 40 % while both run',
		async (model) => {
			setup(model);
			await freshWindow();
			// Workflow B reads /v1/calls (tiny pages), A /v1/me: the log tells them apart.
			const runs = await Promise.all([
				executeNode(account, { credentials, items: items(90) }),
				executeNode(
					{ resource: 'call', operation: 'getAll', returnAll: false, limit: 1, simplify: false },
					{ credentials, items: items(90) },
				),
			]);
			expect(runs.map((out) => json(out).length)).toEqual([90, 90]);
			const log = emulator.requests;
			expect(limited(log)).toBeLessThanOrEqual(2);
			expect(smallerShareWhileBoth(log)).toBeGreaterThanOrEqual(0.4);
			// 180 requests need three windows: the first two are used (≥ 90 % of 120, so that a
			// loaded machine's late timers cannot decide it; the 98 % target is measured by
			// `npm run bench`, not asserted here: a cold CI run at load 5 reached 115).
			const windowOf = (at: number) => Math.floor((at - log[0].at) / WINDOW.windowMs);
			const firstTwo = log.filter((r) => r.status === 200 && windowOf(r.at) <= 1).length;
			expect(firstTwo).toBeGreaterThanOrEqual(108);
		},
		40_000,
	);
});
