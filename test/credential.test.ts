// The credential's declarative test request, resolved by n8n's own expression engine
// and sent with the credential's authenticate block, as n8n's credential tester does.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

import type { IHttpRequestOptions, INode } from 'n8n-workflow';
import { Workflow } from 'n8n-workflow';

import { InboundFlowApi } from '../credentials/InboundFlowApi.credentials';
import { FULL_KEY, type InboundFlowEmulator } from '../emulator/server';
import { executeNode, NODE_TYPES, withEmulator } from './helpers';

let emulator: InboundFlowEmulator;
beforeAll(async () => ({ emulator } = await withEmulator()));
afterAll(async () => await emulator.stop());

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

/**
 * What n8n's credential tester does with a declarative test: resolve the request with
 * n8n's expression engine, let the credential's authenticate() add the key (it may
 * refuse), then send. Returns the HTTP status, or the error the tester would show.
 */
async function runTest(apiKey: string, baseUrl: string): Promise<number | string> {
	const $credentials = { apiKey, baseUrl };
	const resolve = (value: string) =>
		String(workflow.expression.getSimpleParameterValue(node, value, 'internal', { $credentials }, undefined, ''));
	const request = credential.test.request as IHttpRequestOptions;
	let options: IHttpRequestOptions;
	try {
		options = await credential.authenticate($credentials, {
			baseURL: resolve(String(request.baseURL)),
			url: request.url,
			method: request.method,
		});
	} catch (error) {
		return (error as Error).message;
	}
	const url = new URL(options.url, options.baseURL).toString();
	return (await fetch(url, { method: options.method, headers: options.headers as Record<string, string> })).status;
}

/** A server on a non-loopback-named address (127.0.0.2) that records every Authorization header. */
async function recorder(): Promise<{ url: string; seen: string[]; close: () => Promise<void> }> {
	const seen: string[] = [];
	const server = http.createServer((req, res) => {
		seen.push(String(req.headers.authorization ?? ''));
		res.end('{}');
	});
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve));
	const { port } = server.address() as AddressInfo;
	return { url: `http://127.0.0.2:${port}`, seen, close: async () => await new Promise<void>((r) => server.close(() => r())) };
}

describe('credential test (GET /v1/me)', () => {
	it('succeeds with a valid key, with or without a trailing slash on the base URL', async () => {
		expect(await runTest(FULL_KEY, emulator.url)).toBe(200);
		expect(await runTest(FULL_KEY, `${emulator.url}/`)).toBe(200);
		expect(emulator.requests.map((r) => r.path)).toEqual(['/v1/me', '/v1/me']);
	});

	it('gets a 401 for a wrong key, which the credential maps to "rejected"', async () => {
		expect(await runTest('sk_live_wrong', emulator.url)).toBe(401);
		const rule = credential.test.rules?.find((r) => r.type === 'responseCode' && r.properties.value === 401);
		expect(rule?.properties.message).toMatch(/^InboundFlow rejected the API key \(HTTP 401\)/);
	});

	it('refuses a plain http:// Base URL other than localhost without sending the key, with the node\'s message', async () => {
		const server = await recorder();
		try {
			const result = await runTest(FULL_KEY, server.url);
			expect(result).toBe(`Base URL: "${server.url}" uses http://, which would send the API key unencrypted; use https:// (http:// is accepted only for localhost and 127.0.0.1)`);
			expect(server.seen).toEqual([]);
			// The same words as the node's own check.
			const error = await executeNode({ resource: 'account', operation: 'get' }, { credentials: { apiKey: FULL_KEY, baseUrl: server.url } }).catch((e: Error) => e);
			expect((error as Error).message).toBe(result);
		} finally {
			await server.close();
		}
	});

	it('sends the key only to the Base URL\'s origin, whatever node uses the credential', async () => {
		const server = await recorder();
		try {
			const creds = { apiKey: FULL_KEY, baseUrl: emulator.url };
			await expect(credential.authenticate(creds, { url: `${server.url}/v1/me` })).rejects.toThrow(
				`The InboundFlow API key is sent only to ${emulator.url} (the credential's Base URL); this request goes to ${server.url}`,
			);
			await expect(credential.authenticate(creds, { url: 'https://api.inboundflow.app/v1/me' })).rejects.toThrow(/sent only to/);
			const ok = await credential.authenticate(creds, { url: `${emulator.url}/v1/calls` });
			expect(ok.headers).toMatchObject({ Authorization: `Bearer ${FULL_KEY}` });
			// The request options of n8n's HTTP Request node: the address in `uri`.
			const legacy = (options: Record<string, unknown>) =>
				credential.authenticate(creds, options as unknown as Parameters<typeof credential.authenticate>[1]);
			expect((await legacy({ uri: `${emulator.url}/v1/calls`, method: 'GET' })).headers).toMatchObject({
				Authorization: `Bearer ${FULL_KEY}`,
			});
			expect((await legacy({ uri: '/v1/calls', baseUrl: emulator.url })).headers).toMatchObject({ Authorization: `Bearer ${FULL_KEY}` });
			await expect(legacy({ uri: `${server.url}/v1/me` })).rejects.toThrow(`this request goes to ${server.url}`);
			await expect(legacy({ uri: '/v1/me', baseUrl: server.url })).rejects.toThrow(/sent only to/);
			await expect(legacy({ method: 'GET' })).rejects.toThrow(/goes to an invalid URL/);
			expect(server.seen).toEqual([]);
		} finally {
			await server.close();
		}
	});

	it('keeps the key out of the credential form: a password field', () => {
		const apiKey = credential.properties.find((p) => p.name === 'apiKey');
		expect(apiKey?.typeOptions?.password).toBe(true);
		expect(credential.properties.find((p) => p.name === 'baseUrl')?.default).toBe('https://api.inboundflow.app');
	});
});
