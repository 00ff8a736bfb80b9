// The credential's declarative test request, resolved by n8n's own expression engine
// and sent with the credential's authenticate block, as n8n's credential tester does.
import type { IHttpRequestOptions, INode } from 'n8n-workflow';
import { Workflow } from 'n8n-workflow';

import { InboundFlowApi } from '../credentials/InboundFlowApi.credentials';
import { FULL_KEY, type InboundFlowEmulator } from '../emulator/server';
import { NODE_TYPES, withEmulator } from './helpers';

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

async function runTest(apiKey: string, baseUrl: string): Promise<number> {
	const $credentials = { apiKey, baseUrl };
	const resolve = (value: string) =>
		String(workflow.expression.getSimpleParameterValue(node, value, 'internal', { $credentials }, undefined, ''));
	const request = credential.test.request as IHttpRequestOptions;
	const url = `${resolve(String(request.baseURL))}${request.url}`;
	const headers: Record<string, string> = {};
	for (const [key, value] of Object.entries(credential.authenticate.properties.headers ?? {})) {
		headers[key] = resolve(String(value));
	}
	return (await fetch(url, { method: request.method, headers })).status;
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

	it('keeps the key out of the credential form: a password field', () => {
		const apiKey = credential.properties.find((p) => p.name === 'apiKey');
		expect(apiKey?.typeOptions?.password).toBe(true);
		expect(credential.properties.find((p) => p.name === 'baseUrl')?.default).toBe('https://api.inboundflow.app');
	});
});
