// The credential: its declarative test as n8n runs it (resolved by n8n's expression
// engine, sent through n8n-core's own httpRequestWithAuthentication, which applies the
// credential's authenticate()), and what authenticate() guarantees to every node that
// uses the credential: the key only under the Base URL, never along a redirect, never
// through a per-request proxy or with TLS checks off. Hostile servers are real sockets
// on loopback (test/capture.ts); n8n-core is the pinned 2.x (the e2e suite repeats the
// redirect, proxy and ignore-SSL cases in real n8n 1.x and 2.x).
import type { IHttpRequestOptions, INode } from 'n8n-workflow';
import { Workflow } from 'n8n-workflow';

import { InboundFlowApi } from '../credentials/InboundFlowApi.credentials';
import { FULL_KEY, type InboundFlowEmulator } from '../emulator/server';
import { checkBaseUrlText } from '../nodes/shared/baseUrl';
import { redactError } from '../nodes/shared/transport/errors';
import { startCapture, type Capture } from './capture';
import { credentialRequests, executeNode, NODE_TYPES, withEmulator } from './helpers';

const credential = new InboundFlowApi();
const node: INode = {
	id: '1',
	name: 'test',
	type: 'n8n-nodes-inboundflow.inboundFlow',
	typeVersion: 1,
	position: [0, 0],
	parameters: {},
};
const workflow = new Workflow({
	nodes: [node],
	connections: {},
	active: false,
	nodeTypes: {
		getByName: (t: string) => NODE_TYPES[t],
		getByNameAndVersion: (t: string) => NODE_TYPES[t],
		getKnownTypes: () => ({}),
	},
});

let emulator: InboundFlowEmulator;
/** Another origin on a host that is not "localhost" (127.0.0.2): it must never see the key. */
let other: Capture;
/** Another origin on the same host (another port). */
let sibling: Capture;
/** A Base URL answering every request with a 302 to `other`. */
let redirector: Capture;
/** An https Base URL whose self-signed certificate no client trusts. */
let impostor: Capture;

beforeAll(async () => {
	({ emulator } = await withEmulator());
	other = await startCapture({ host: '127.0.0.2' });
	sibling = await startCapture();
	redirector = await startCapture({ redirectTo: other.url });
	impostor = await startCapture({ tls: true });
});
afterAll(async () => {
	await emulator.stop();
	for (const server of [other, sibling, redirector, impostor]) await server?.close();
});
beforeEach(() => {
	for (const server of [other, sibling, redirector, impostor]) server.seen.length = 0;
});
afterEach(() => {
	// Whatever a test did, the key reached none of the servers that must not see it.
	expect(other.withSecret(FULL_KEY)).toEqual([]);
	expect(sibling.withSecret(FULL_KEY)).toEqual([]);
	expect(impostor.withSecret(FULL_KEY)).toEqual([]);
});

type Options = Record<string, unknown>;
const authenticate = async (baseUrl: string, options: Options) =>
	await credential.authenticate({ apiKey: FULL_KEY, baseUrl }, options as unknown as IHttpRequestOptions);
const failure = async (promise: Promise<unknown>): Promise<Error> => {
	try {
		await promise;
	} catch (error) {
		return error as Error;
	}
	throw new Error('expected a refusal');
};

/**
 * What n8n's credential tester does with the declarative test: resolve the request with
 * n8n's expression engine, send it with n8n-core's httpRequestWithAuthentication, map a
 * failed answer's status through the test's rules. Returns 'OK' or the message shown.
 */
async function runTest(apiKey: string, baseUrl: string): Promise<string> {
	const $credentials = { apiKey, baseUrl };
	const resolve = (value: string) =>
		String(workflow.expression.getSimpleParameterValue(node, value, 'internal', { $credentials }, undefined, ''));
	const request = credential.test.request;
	try {
		await credentialRequests($credentials).httpRequest({
			...(request as IHttpRequestOptions),
			baseURL: resolve(String(request.baseURL)),
			returnFullResponse: true,
		});
		return 'OK';
	} catch (error) {
		const status = (error as { cause?: { response?: { status?: number } } }).cause?.response?.status;
		const rule = credential.test.rules?.find((r) => r.type === 'responseCode' && r.properties.value === status);
		if (rule) return String(rule.properties.message);
		return status ? `HTTP ${status}` : (error as Error).message;
	}
}

describe('credential test (GET /v1/me)', () => {
	it('succeeds with a valid key, with or without a trailing slash, and under a Base URL with a path', async () => {
		emulator.clearLog();
		expect(await runTest(FULL_KEY, emulator.url)).toBe('OK');
		expect(await runTest(FULL_KEY, `${emulator.url}/`)).toBe('OK');
		expect(emulator.apiRequests().map((r) => r.path)).toEqual(['/v1/me', '/v1/me']);
		// The test request keeps the Base URL's path (no API there: the 404 rule).
		expect(await runTest(FULL_KEY, `${emulator.url}/not-the-api`)).toBe(
			'No InboundFlow API answered at this Base URL (HTTP 404 on /v1/me). Check the Base URL.',
		);
	});

	it('maps a wrong key to "rejected"', async () => {
		expect(await runTest('sk_live_wrong', emulator.url)).toMatch(/^InboundFlow rejected the API key \(HTTP 401\)/);
	});

	it('refuses a plain http:// Base URL other than localhost without sending the key, with the node\'s message', async () => {
		const result = await runTest(FULL_KEY, other.url);
		expect(result).toContain(`Base URL: "${other.url}" uses http://, which would send the API key unencrypted; use https://`);
		expect(other.seen).toEqual([]);
		const error = await failure(executeNode({ resource: 'account', operation: 'get' }, { credentials: { apiKey: FULL_KEY, baseUrl: other.url } }));
		expect(error.message).toBe(result.slice(result.indexOf('Base URL: ')));
	});

	it('refuses a redirect and names it: the other origin sees no request', async () => {
		expect(await runTest(FULL_KEY, redirector.url)).toBe(
			'InboundFlow answered /v1/me with a redirect (HTTP 302), which the credential test does not follow: the API key is sent only to the Base URL. If InboundFlow really moved, set the Base URL to its new https:// address.',
		);
		expect(other.seen).toEqual([]);
	});

	it.each([
		['a query', '/?region=eu', 'a query ("?…")'],
		['a query after a path', '/inboundflow?x=1', 'a query ("?…")'],
		['a fragment', '/#top', 'a fragment ("#…")'],
		['an empty query', '/?', 'a query ("?…")'],
	])('refuses a Base URL with %s, naming the problem, in the test and in the node', async (_what, tail, problem) => {
		const baseUrl = `${emulator.url}${tail}`;
		emulator.clearLog();
		const words = `Base URL: "${baseUrl}" must not contain ${problem}`;
		expect(await runTest(FULL_KEY, baseUrl)).toContain(words);
		const error = await failure(executeNode({ resource: 'account', operation: 'get' }, { credentials: { apiKey: FULL_KEY, baseUrl } }));
		expect(error.message).toContain(words);
		expect(emulator.apiRequests()).toEqual([]);
	});

	it('refuses a Base URL with spaces, control characters or a backslash', () => {
		for (const bad of ['https://api.inboundflow.app/a b', 'https://api.inboundflow.app/a\\b', 'https://api.inbound\tflow.app']) {
			expect(checkBaseUrlText(bad)).toEqual({ ok: false, problem: `"${bad}" must not contain spaces, control characters or backslashes` });
		}
	});

	it('keeps the key out of the credential form: a password field', () => {
		const apiKey = credential.properties.find((p) => p.name === 'apiKey');
		expect(apiKey?.typeOptions?.password).toBe(true);
		expect(credential.properties.find((p) => p.name === 'baseUrl')?.default).toBe('https://api.inboundflow.app');
	});
});

describe('the key goes only under the Base URL, whatever node uses the credential', () => {
	const only = (base: string) => `The InboundFlow API key is sent only to ${base} (the credential's Base URL)`;

	it('accepts every address field n8n reads when all of them point under the Base URL', async () => {
		const B = emulator.url;
		for (const options of [
			{ url: `${B}/v1/me` },
			{ uri: `${B}/v1/me` },
			{ url: '/v1/me', baseURL: B },
			{ uri: '/v1/me', baseURL: `${B}/` },
			{ uri: '/v1/me', baseUrl: B },
			{ url: '', baseURL: B },
			{ baseURL: B },
			{ url: new URL(`${B}/v1/me`) },
			{ url: `${B}/v1/me`, uri: `${B}/v1/calls`, baseURL: B, baseUrl: `${B}/` },
		]) {
			const out = await authenticate(B, options);
			expect(out.headers).toMatchObject({ Authorization: `Bearer ${FULL_KEY}` });
		}
	});

	it('refuses a request when any address field, in any combination, points elsewhere', async () => {
		const B = emulator.url;
		const O = other.url;
		const S = sibling.url;
		const cases: Array<[Options, string]> = [
			[{ url: `${O}/v1/me` }, `; this request goes to ${O}`],
			[{ uri: `${O}/v1/me` }, `; this request goes to ${O}`],
			[{ url: `${S}/v1/me` }, `; this request goes to ${S}`],
			// helpers.httpRequest ignores `uri` and sends to baseURL
			[{ uri: `${B}/v1/me`, baseURL: O }, `; this request goes to ${O}`],
			[{ url: `${B}/v1/me`, baseURL: O }, `; this request goes to ${O}`],
			[{ url: `${B}/v1/me`, uri: `${O}/v1/me` }, `; this request goes to ${O}`],
			[{ url: `${O}/v1/me`, uri: `${B}/v1/me` }, `; this request goes to ${O}`],
			[{ url: '/v1/me', baseURL: B, baseUrl: O }, `; this request goes to ${O}`],
			[{ url: '/v1/me', baseURL: O, baseUrl: B }, `; this request goes to ${O}`],
			[{ uri: '/v1/me', baseUrl: O }, `; this request goes to ${O}`],
			[{ baseURL: O }, `; this request goes to ${O}`],
			[{ url: new URL(`${O}/v1/me`) }, `; this request goes to ${O}`],
			[{ url: 'https://api.inboundflow.app/v1/me' }, '; this request goes to https://api.inboundflow.app'],
			[{ url: `${B.replace('127.0.0.1', 'localhost')}/v1/me` }, `; this request goes to ${B.replace('127.0.0.1', 'localhost')}`],
			[{ url: `${B}@127.0.0.2/v1/me` }, '; this request goes to http://127.0.0.2'],
			[{ url: `${B.replace('http:', 'HTTP:')}:1/v1/me` }, '; this request cannot be checked'],
			[{ url: `//127.0.0.2:${new URL(O).port}/v1/me`, baseURL: B }, '; this request cannot be checked: its address "//127.0.0.2'],
			[{ url: 'file:///etc/passwd', baseURL: B }, '; this request goes to an address that is not http(s)'],
			[{ baseURL: 'not a url', url: '/v1/me' }, '; this request cannot be checked: its base address "not a url" is not a valid URL'],
			[{ url: 42 }, '; this request cannot be checked: its "url" is not a text'],
			[{ method: 'GET' }, '; this request cannot be checked: it has no valid address'],
			[{ uri: '/v1/me' }, '; this request cannot be checked: it has no valid address'],
		];
		for (const [options, why] of cases) {
			const error = await failure(authenticate(B, options));
			expect(error.message.startsWith(`${only(B)}${why}`) ? true : `${JSON.stringify(options)} → ${error.message}`).toBe(true);
		}
	});

	it('keeps the key under the path of a Base URL that has one', async () => {
		const B = emulator.url;
		const base = `${B}/inboundflow`;
		for (const options of [
			{ url: `${base}/v1/me` },
			{ url: base },
			{ url: '/v1/me', baseURL: base },
			{ url: 'v1/me', baseURL: `${base}/` },
			{ url: `${base}/v1/calls?cursor=a%2Fb` },
		]) {
			expect((await authenticate(`${base}/`, options)).headers).toMatchObject({ Authorization: `Bearer ${FULL_KEY}` });
		}
		const cases: Array<[Options, string]> = [
			[{ url: `${B}/v1/me` }, `${B}/v1/me`],
			[{ url: `${B}/inboundflow-admin/v1/me` }, `${B}/inboundflow-admin/v1/me`],
			[{ url: `${B}/inboundflow/../admin` }, `${B}/admin`],
			[{ url: `${B}/inboundflow/%2e%2E/admin` }, `${B}/admin`],
			[{ url: `${B}/inboundflow/..%2Fadmin` }, `${B}/inboundflow/..%2Fadmin`],
			[{ url: `${B}/inboundflow/..%5cadmin` }, `${B}/inboundflow/..%5cadmin`],
			[{ url: '../admin', baseURL: `${base}/` }, `${B}/admin`],
			[{ url: '/v1/me', baseURL: B }, `${B}/`],
			[{ uri: `${B}/v1/me`, baseURL: base }, `${B}/v1/me`],
		];
		for (const [options, where] of cases) {
			const error = await failure(authenticate(base, options));
			expect(error.message).toBe(`${only(base)}; this request goes to ${where}`);
		}
	});

	it('refuses a per-request proxy, TLS checks turned off or replaced, and a custom agent', async () => {
		const B = emulator.url;
		const url = `${B}/v1/me`;
		const proxy = /, never through a proxy set on the request \(the HTTP Request node's "Proxy" option\), which could read it/;
		const tls = /, never with TLS certificate checks turned off or replaced/;
		const cases: Array<[Options, RegExp]> = [
			[{ uri: url, proxy: other.url }, proxy],
			[{ url, proxy: { host: '127.0.0.2', port: 8080 } }, proxy],
			[{ url, skipSslCertificateValidation: true }, tls],
			[{ url, skipSslCertificateValidation: 'true' }, tls],
			[{ uri: url, rejectUnauthorized: false }, tls],
			[{ uri: url, agentOptions: { rejectUnauthorized: false } }, tls],
			[{ uri: url, agentOptions: { ca: '-----BEGIN CERTIFICATE-----' } }, tls],
			[{ uri: url, agentOptions: { checkServerIdentity: () => undefined } }, tls],
			[{ url, httpsAgent: {} }, /, never through a connection agent set on the request$/],
		];
		for (const [options, why] of cases) {
			const error = await failure(authenticate(B, options));
			expect(error.message.startsWith(only(B))).toBe(true);
			expect(error.message).toMatch(why);
		}
		// What n8n's HTTP Request node always passes, and client certificates, are fine.
		for (const options of [
			{ uri: url, rejectUnauthorized: true, proxy: undefined },
			{ url, proxy: '', skipSslCertificateValidation: false },
			{ uri: url, agentOptions: { cert: 'c', key: 'k', passphrase: 'p' } },
		]) {
			expect((await authenticate(B, options)).headers).toMatchObject({ Authorization: `Bearer ${FULL_KEY}` });
		}
	});

	it('turns off every way n8n follows a redirect, whatever the request asked', async () => {
		const out = await authenticate(emulator.url, {
			uri: `${emulator.url}/v1/me`,
			headers: { accept: 'application/json' },
			disableFollowRedirect: false,
			followRedirect: true,
			followAllRedirects: true,
			maxRedirects: 10,
			sendCredentialsOnCrossOriginRedirect: true,
		});
		expect(out).toEqual({
			uri: `${emulator.url}/v1/me`,
			headers: { accept: 'application/json', Authorization: `Bearer ${FULL_KEY}` },
			disableFollowRedirect: true,
			followRedirect: false,
			followAllRedirects: false,
			maxRedirects: 0,
			sendCredentialsOnCrossOriginRedirect: false,
		});
	});
});

describe('through n8n-core\'s own request helpers, as every node sends', () => {
	it('a redirect from the Base URL to another origin is not followed (helpers.httpRequest and the HTTP Request node\'s options)', async () => {
		const { httpRequest, request } = credentialRequests({ apiKey: FULL_KEY, baseUrl: redirector.url });
		const url = `${redirector.url}/v1/me`;
		await expect(httpRequest({ url, sendCredentialsOnCrossOriginRedirect: true })).rejects.toThrow();
		await expect(httpRequest({ url, disableFollowRedirect: false, maxRedirects: 5, sendCredentialsOnCrossOriginRedirect: true })).rejects.toThrow();
		// n8n's HTTP Request node 4.x with "Follow Redirects" (its default).
		const nodeOptions = { uri: url, followRedirect: true, followAllRedirects: true, sendCredentialsOnCrossOriginRedirect: true, rejectUnauthorized: true, resolveWithFullResponse: true };
		await expect(request(nodeOptions)).rejects.toThrow();
		await expect(request({ ...nodeOptions, method: 'POST', body: { a: 1 }, json: true })).rejects.toThrow();
		// The Base URL got each request once; the other origin got none.
		expect(redirector.seen.map((s) => s.authorization)).toEqual(Array(4).fill(`Bearer ${FULL_KEY}`));
		expect(other.seen).toEqual([]);
	});

	it('our node refuses the redirect too, naming it', async () => {
		const error = await failure(executeNode({ resource: 'account', operation: 'get' }, { credentials: { apiKey: FULL_KEY, baseUrl: redirector.url } }));
		expect(error.message).toBe(`InboundFlow answered the request to get the account with a redirect (HTTP 302) to ${other.url}, which the node does not follow`);
		expect(other.seen).toEqual([]);
	});

	it('a proxy set on the request never sees the key', async () => {
		const { httpRequest, request } = credentialRequests({ apiKey: FULL_KEY, baseUrl: emulator.url });
		const url = `${emulator.url}/v1/me`;
		const { port } = new URL(other.url);
		await expect(request({ uri: url, proxy: other.url, rejectUnauthorized: true })).rejects.toThrow(/never through a proxy/);
		await expect(httpRequest({ url, proxy: { host: '127.0.0.2', port: Number(port), protocol: 'http' } })).rejects.toThrow(/never through a proxy/);
		expect(other.seen).toEqual([]);
	});

	it('an impostor with an untrusted certificate never gets the key, whether "Ignore SSL Issues" is on or off', async () => {
		const { httpRequest, request } = credentialRequests({ apiKey: FULL_KEY, baseUrl: impostor.url });
		const url = `${impostor.url}/v1/me`;
		await expect(request({ uri: url, rejectUnauthorized: false })).rejects.toThrow(/TLS certificate checks/);
		await expect(httpRequest({ url, skipSslCertificateValidation: true })).rejects.toThrow(/TLS certificate checks/);
		// With the checks on, n8n refuses the certificate itself.
		await expect(request({ uri: url, rejectUnauthorized: true })).rejects.toThrow();
		await expect(httpRequest({ url })).rejects.toThrow();
		expect(impostor.seen).toEqual([]);
	});
});

describe('redactError', () => {
	const K = FULL_KEY;

	it('redacts a string (the webhook trigger\'s log lines) and leaves other text alone', () => {
		expect(redactError(`bad signature for ${K} and ${K}`, [K])).toBe('bad signature for [redacted] and [redacted]');
		expect(redactError('nothing secret', [K])).toBe('nothing secret');
		expect(redactError(`short ${K}`, ['abc', undefined])).toBe(`short ${K}`);
	});

	it('walks causes and nested fields at any depth, and returns the same error', () => {
		const innermost = new Error(`InboundFlow said: key ${K}`);
		let error: Error = innermost;
		for (let i = 0; i < 40; i++) error = new Error(`wrapper ${i}`, { cause: error });
		let deep: Record<string, unknown> = { text: `header Bearer ${K}` };
		for (let i = 0; i < 30; i++) deep = { next: deep, list: [i, `item ${K}`] };
		Object.assign(error, { context: deep });
		expect(redactError(error, [K])).toBe(error);
		expect(innermost.message).toBe('InboundFlow said: key [redacted]');
		expect(innermost.stack).not.toContain(K);
		const everything = JSON.stringify(deep);
		expect(everything).toContain('Bearer [redacted]');
		expect(everything).not.toContain(K);
	});

	it('ends on cycles and survives a chain far deeper than the stack', () => {
		const a: Record<string, unknown> = { message: `a ${K}` };
		const b: Record<string, unknown> = { message: `b ${K}`, cause: a };
		a.cause = b;
		a.self = a;
		redactError(a, [K]);
		expect([a.message, b.message]).toEqual(['a [redacted]', 'b [redacted]']);
		let chain: Record<string, unknown> = { message: `bottom ${K}` };
		const bottom = chain;
		for (let i = 0; i < 100_000; i++) chain = { cause: chain };
		redactError(chain, [K]);
		expect(bottom.message).toBe('bottom [redacted]');
	});

	it('redacts read-only fields that can be redefined, and does not walk binary buffers', () => {
		const error = new Error(`x ${K}`);
		Object.defineProperty(error, 'readOnly', { value: `ro ${K}`, writable: false, configurable: true, enumerable: true });
		Object.defineProperty(error, 'hidden', { value: { text: `in ${K}` }, writable: false, enumerable: false });
		Object.assign(error, { body: Buffer.alloc(1_000_000, 1) });
		redactError(error, [K]);
		expect(error.message).toBe('x [redacted]');
		expect((error as unknown as { readOnly: string }).readOnly).toBe('ro [redacted]');
		expect((error as unknown as { hidden: { text: string } }).hidden.text).toBe('in [redacted]');
	});
});
