// The webhook trigger served on a real port, run in n8n-core's WebhookContext.
import { randomUUID } from 'node:crypto';

import type { IDataObject } from 'n8n-workflow';

import { buildWebhook, FULL_KEY, signWebhook, type InboundFlowEmulator } from '../emulator/server';
import { serveWebhook, withEmulator, type WebhookServer } from './helpers';

const SECRET = 'whsec_test_secret_123';
const ALL_EVENTS = ['call.completed', 'call.transferred', 'appointment.booked', 'lead.created'];
const callData = {
	call_id: '07f51470-ef1d-421c-a847-36e98732bb9b',
	caller_phone: '+14155551234',
	caller_name: 'Dave',
	duration_seconds: 55,
	summary: 'Called about auto repair',
};

let emulator: InboundFlowEmulator;
let server: WebhookServer;

beforeAll(async () => {
	({ emulator } = await withEmulator({ seed: { calls: 3 } }));
});
afterAll(async () => await emulator.stop());
afterEach(async () => await server?.close());

async function send(body: string, headers: Record<string, string>) {
	const response = await fetch(server.url, { method: 'POST', body, headers });
	return { status: response.status, body: (await response.json()) as IDataObject };
}

async function deliver(options: Parameters<typeof buildWebhook>[0]) {
	const { body, headers } = buildWebhook(options);
	return await send(body, headers);
}

describe('with a signing secret', () => {
	beforeEach(async () => {
		server = await serveWebhook({ events: ALL_EVENTS }, { signingSecret: SECRET });
	});

	it('accepts a valid signature and emits event, delivery id, timestamp and data', async () => {
		const deliveryId = randomUUID();
		const response = await deliver({ event: 'call.completed', data: callData, secret: SECRET, deliveryId });
		expect(response.status).toBe(200);
		expect(server.emitted).toHaveLength(1);
		const item = server.emitted[0][0][0].json;
		expect(item).toMatchObject({ event: 'call.completed', delivery_id: deliveryId, data: callData });
		expect(typeof item.timestamp).toBe('string');
		expect(item.organization_id).toBe('becc3c5d-1755-420c-a3af-fe51ab2d04ca');
	});

	it.each(ALL_EVENTS)('emits %s', async (event) => {
		expect((await deliver({ event, data: { id: 'x' }, secret: SECRET })).status).toBe(200);
		expect(server.emitted[0][0][0].json.event).toBe(event);
	});

	it('refuses a wrong signature with 401 and emits nothing', async () => {
		const response = await deliver({ event: 'call.completed', data: callData, secret: 'another_secret_456' });
		expect(response).toEqual({ status: 401, body: { error: 'Invalid signature' } });
		expect(server.emitted).toHaveLength(0);
	});

	it('refuses a missing signature', async () => {
		const response = await deliver({ event: 'call.completed', data: callData });
		expect(response).toEqual({ status: 401, body: { error: 'Missing X-InboundFlow-Signature header' } });
		expect(server.emitted).toHaveLength(0);
	});

	it('refuses a tampered body', async () => {
		const { body, headers } = buildWebhook({ event: 'call.completed', data: callData, secret: SECRET });
		const response = await send(body.replace('"Dave"', '"Mallory"'), headers);
		expect(response.status).toBe(401);
		expect(server.emitted).toHaveLength(0);
	});

	it('refuses a signature over "<timestamp>.<body>" unless that option is on', async () => {
		const response = await deliver({ event: 'lead.created', data: {}, secret: SECRET, scheme: 'timestamped' });
		expect(response.status).toBe(401);
	});

	it.each([
		['stale', -600],
		['future', 600],
	])('refuses a %s timestamp (replay protection)', async (_label, offset) => {
		const timestamp = Math.floor(Date.now() / 1000) + offset;
		const response = await deliver({ event: 'call.completed', data: callData, secret: SECRET, timestamp });
		expect(response.status).toBe(401);
		expect(String(response.body.error)).toMatch(/more than 300 seconds from now/);
		expect(server.emitted).toHaveLength(0);
	});

	it('drops a repeated delivery id, answering 200, and remembers it in static data', async () => {
		const deliveryId = randomUUID();
		const first = buildWebhook({ event: 'call.completed', data: callData, secret: SECRET, deliveryId });
		expect((await send(first.body, first.headers)).status).toBe(200);
		const again = await send(first.body, first.headers);
		expect(again).toEqual({ status: 200, body: { received: true, duplicate: deliveryId } });
		expect(server.emitted).toHaveLength(1);
		expect(server.staticData.deliveries).toEqual([deliveryId]);
	});

	it('drops a repeat that arrives before n8n saved the static data of the first', async () => {
		const deliveryId = randomUUID();
		const first = buildWebhook({ event: 'call.completed', data: callData, secret: SECRET, deliveryId });
		expect((await send(first.body, first.headers)).status).toBe(200);
		// Same workflow and node, static data not (yet) persisted: a second server.
		await server.close();
		server = await serveWebhook({ events: ALL_EVENTS }, { signingSecret: SECRET });
		expect(server.staticData.deliveries).toBeUndefined();
		expect(await send(first.body, first.headers)).toEqual({ status: 200, body: { received: true, duplicate: deliveryId } });
		expect(server.emitted).toHaveLength(0);
	});

	it.each([
		['not JSON', '{"event": ', 400, 'The body is not valid JSON'],
		['a JSON array', '[1,2]', 400, 'The body must be a JSON object'],
	])('answers %s with a clear 4xx', async (_label, body, status, error) => {
		const headers = {
			'content-type': 'application/json',
			'x-inboundflow-event': 'call.completed',
			'x-inboundflow-signature': signWebhook(SECRET, body),
		};
		expect(await send(body, headers)).toEqual({ status, body: { error } });
		expect(server.emitted).toHaveLength(0);
	});

	it('answers a delivery without an event with 400', async () => {
		const body = JSON.stringify({ data: {} });
		const response = await send(body, {
			'content-type': 'application/json',
			'x-inboundflow-signature': signWebhook(SECRET, body),
		});
		expect(response).toEqual({ status: 400, body: { error: 'Missing X-InboundFlow-Event header and "event" field' } });
	});

	it('acknowledges an unknown event with 200 and emits nothing', async () => {
		const response = await deliver({ event: 'call.exploded', data: {}, secret: SECRET });
		expect(response.status).toBe(200);
		expect(response.body.ignored).toMatch(/call.exploded/);
		expect(server.emitted).toHaveLength(0);
	});
});

describe('options', () => {
	it('acknowledges events that are not selected, without emitting', async () => {
		server = await serveWebhook({ events: ['lead.created'] }, { signingSecret: SECRET });
		const response = await deliver({ event: 'call.completed', data: callData, secret: SECRET });
		expect(response.status).toBe(200);
		expect(server.emitted).toHaveLength(0);
	});

	it('accepts "<timestamp>.<body>" signatures when that option is on', async () => {
		server = await serveWebhook(
			{ events: ALL_EVENTS, options: { timestampedSignature: true } },
			{ signingSecret: SECRET },
		);
		expect((await deliver({ event: 'lead.created', data: {}, secret: SECRET, scheme: 'timestamped' })).status).toBe(200);
		expect((await deliver({ event: 'lead.created', data: {}, secret: SECRET })).status).toBe(401);
	});

	it('turns the timestamp check off with tolerance 0', async () => {
		server = await serveWebhook({ events: ALL_EVENTS, options: { toleranceSeconds: 0 } }, { signingSecret: SECRET });
		const timestamp = Math.floor(Date.now() / 1000) - 86_400;
		expect((await deliver({ event: 'lead.created', data: {}, secret: SECRET, timestamp })).status).toBe(200);
	});

	it('accepts unsigned deliveries when no signing secret is configured', async () => {
		server = await serveWebhook({ events: ALL_EVENTS }, {});
		expect((await deliver({ event: 'appointment.booked', data: { id: 'a' } })).status).toBe(200);
		expect(server.emitted).toHaveLength(1);
	});

	it('fetches the full call with its messages when asked', async () => {
		const call = emulator.records.calls[0];
		server = await serveWebhook(
			{ events: ALL_EVENTS, fetchFullRecord: true },
			{ signingSecret: SECRET, apiKey: FULL_KEY, baseUrl: emulator.url },
		);
		const response = await deliver({ event: 'call.completed', data: { ...callData, call_id: call.id }, secret: SECRET });
		expect(response.status).toBe(200);
		const item = server.emitted[0][0][0].json;
		expect((item.call as IDataObject).id).toBe(call.id);
		expect(Array.isArray((item.call as IDataObject).messages)).toBe(true);
	});
});
