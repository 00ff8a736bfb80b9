// Download Recording on the triggers (issue 25), over real HTTP: the polling trigger's New
// Call in n8n-core's PollContext, the webhook trigger in a WebhookContext behind a real
// local port, both against the emulator's recordings (API origin with the key, a storage
// origin without it). A call is emitted exactly once whatever its recording does.
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

import type { IBinaryData, IDataObject, INodeExecutionData } from 'n8n-workflow';

import type { StoredRecord } from '../emulator/data';
import { buildWebhook, FULL_KEY, type EmulatorConfig, type InboundFlowEmulator } from '../emulator/server';
import { resetPollMemory } from '../nodes/InboundFlowTrigger/poller';
import { InboundFlowTrigger } from '../nodes/InboundFlowTrigger/InboundFlowTrigger.node';
import { InboundFlowWebhookTrigger, webhookTimings } from '../nodes/InboundFlowWebhookTrigger/InboundFlowWebhookTrigger.node';
import { emulatorPerFile, poll, serveWebhook, type Credentials, type WebhookServer } from './helpers';

let emulator: InboundFlowEmulator;
let credentials: Credentials;
const file = emulatorPerFile({ seed: { calls: 4 } });
beforeAll(() => ({ emulator, credentials } = file));

const SECRET = 'whsec_recordings_0001';
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const bytesOf = (binary: IBinaryData) => Buffer.from(binary.data, 'base64');
const completed = () => emulator.add('calls', { status: 'completed' });
/** Calls added one after another get distinct created_at, so the trigger emits them in this order. */
const tick = async () => await new Promise((r) => setTimeout(r, 5));

/** Who was asked for a recording: [origin, carried the key]. */
const capture = () => emulator.recordings.requests.map((r) => [r.origin, r.authorization === `Bearer ${FULL_KEY}` ? 'key' : r.authorization ?? 'none']);

/**
 * A storage host that sends its body slowly (1 KiB every 50 ms of a declared 10 MB) and
 * notes when the client went away: the proof that a download past its deadline is aborted.
 */
async function slowStorage(): Promise<{ url: string; requests: number; closedAt: number[]; close(): Promise<void> }> {
	const state = { requests: 0, closedAt: [] as number[] };
	const server = http.createServer((_req, res) => {
		state.requests++;
		res.writeHead(200, { 'content-type': 'audio/mpeg', 'content-length': String(10_000_000) });
		const timer = setInterval(() => res.write(Buffer.alloc(1024, 7)), 50);
		res.on('close', () => {
			clearInterval(timer);
			state.closedAt.push(Date.now());
		});
	});
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	return Object.assign(state, {
		url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
		close: async () => {
			server.closeAllConnections();
			await new Promise<void>((resolve) => server.close(() => resolve()));
		},
	});
}

// ── Polling trigger: New Call → Download Recording ───────────────────────────────────

/** Static data as n8n keeps it between polls (see test/trigger.test.ts). */
class Trigger {
	data: IDataObject = {};

	constructor(private parameters: IDataObject) {
		resetPollMemory();
	}

	async poll(options: { pollBudgetMs?: number; mode?: 'trigger' | 'manual' } = {}): Promise<INodeExecutionData[]> {
		const working = JSON.parse(JSON.stringify(this.data)) as IDataObject;
		const out = await poll(this.parameters, { credentials, staticData: working, ...options });
		if (options.mode !== 'manual') this.data = JSON.parse(JSON.stringify(working)) as IDataObject;
		return out?.[0] ?? [];
	}
}

const newCalls = (extra: IDataObject = {}): IDataObject => ({
	event: 'newCall',
	newCallFilters: {},
	downloadRecording: true,
	binaryPropertyName: 'audio',
	recordingOptions: {},
	options: {},
	...extra,
});

describe('polling trigger, New Call with Download Recording', () => {
	beforeEach(() => emulator.reset());

	describe.each<[string, Partial<EmulatorConfig>, string[][]]>([
		['on a storage origin (signed URL)', { recordingUrl: 'storage' }, [['storage', 'none']]],
		['on the API origin', { recordingUrl: 'api' }, [['api', 'key']]],
		['on the API origin redirecting to storage', { recordingUrl: 'api', recordingRedirect: true }, [['api', 'key'], ['storage', 'none']]],
	])('a recording %s', (_label, config, requests) => {
		it('each new call is emitted once with its file; a call without a recording once without one; the key stays on the API origin', async () => {
			emulator.configure(config);
			const trigger = new Trigger(newCalls());
			expect(await trigger.poll()).toEqual([]); // the baseline
			const call = completed();
			await tick();
			const failed = emulator.add('calls', { status: 'failed' });
			const items = await trigger.poll();
			expect(items.map((i) => i.json.id)).toEqual([call.id, failed.id]);
			const audio = items[0].binary!.audio;
			expect(sha256(bytesOf(audio))).toBe(emulator.recordings.checksum(call.id));
			expect(audio).toMatchObject({ mimeType: 'audio/mpeg', fileName: `call-${call.id}.mp3` });
			expect(items[0].json).toMatchObject({ id: call.id, status: 'completed' });
			expect(items[0].json).not.toHaveProperty('recording_error');
			// No recording: the call as it is, no file, no error.
			expect(items[1]).toEqual({ json: expect.objectContaining({ id: failed.id, recording_url: null }) });
			expect(items[1].json).not.toHaveProperty('recording_error');
			expect(capture()).toEqual(requests);
			// Nothing twice.
			expect(await trigger.poll()).toEqual([]);
			expect(capture()).toEqual(requests);
		});
	});

	it('If No Recording = Skip the Call: a call without a recording is not emitted (then or later); the others are', async () => {
		emulator.configure({ recordingUrl: 'storage' });
		const trigger = new Trigger(newCalls({ recordingOptions: { ifNoRecording: 'skip' } }));
		await trigger.poll();
		emulator.add('calls', { status: 'failed' });
		await tick();
		const call = completed();
		await tick();
		emulator.add('calls', { status: 'blocked' });
		expect((await trigger.poll()).map((i) => i.json.id)).toEqual([call.id]);
		expect(await trigger.poll()).toEqual([]);
	});

	it('a download that fails (404, 503 past the retries, past Max Size) emits its call once without the file and the reason; the poll does not fail', async () => {
		emulator.configure({ recordingUrl: 'storage', recordingBytes: 1_500_000 });
		const trigger = new Trigger(newCalls({ recordingOptions: { maxSizeMb: 1 } }));
		await trigger.poll();
		const calls: StoredRecord[] = [];
		for (let i = 0; i < 3; i++) {
			calls.push(completed());
			await tick();
		}
		emulator.recordings.inject({ origin: 'storage', kind: 'status', status: 404 }, { origin: 'storage', kind: 'status', status: 503, times: 6 });
		const items = await trigger.poll();
		expect(items.map((i) => i.json.id)).toEqual(calls.map((c) => c.id));
		expect(items.every((i) => i.binary === undefined)).toBe(true);
		expect(items[0].json.recording_error).toBe(`The recording of call "${calls[0].id}" was not found (HTTP 404 from ${emulator.recordings.storageUrl})`);
		expect(items[1].json.recording_error).toMatch(new RegExp(`^Could not download the recording of call "${calls[1].id}": .* answered HTTP 503, after 5 attempts$`));
		expect(items[2].json.recording_error).toBe(`The recording of call "${calls[2].id}" is 1.5 MB, more than Max Size (1 MB)`);
		// The reasons show host and path, never a signed URL's query.
		expect(items.map((i) => i.json.recording_error).join(' ')).not.toContain('signature=');
		// Emitted once: the next poll neither repeats them nor tries their downloads again.
		const asked = emulator.recordings.requests.length;
		expect(await trigger.poll()).toEqual([]);
		expect(emulator.recordings.requests).toHaveLength(asked);
	});

	it('downloads end inside the poll\'s budget: a slow one is aborted at the deadline and its call emitted once without the file', async () => {
		const storage = await slowStorage();
		try {
			const trigger = new Trigger(newCalls());
			await trigger.poll();
			const slow = emulator.add('calls', { status: 'completed', recording_url: `${storage.url}/slow.mp3` });
			await tick();
			const next = emulator.add('calls', { status: 'completed', recording_url: `${storage.url}/next.mp3` });
			const started = Date.now();
			// n8n's poll budget 2.5 s: the trigger takes 80 % of it, 2 s.
			const items = await trigger.poll({ pollBudgetMs: 2500 });
			const took = Date.now() - started;
			// Bounded by the budget (the body alone would take 500 s); generous for a loaded machine.
			expect(took).toBeGreaterThanOrEqual(1500);
			expect(took).toBeLessThan(6000);
			expect(items.map((i) => i.json.id)).toEqual([slow.id, next.id]);
			for (const item of items) {
				expect(item.binary).toBeUndefined();
				expect(item.json.recording_error).toBe(`The recording of call "${item.json.id as string}" was not downloaded: the poll's time ran out`);
			}
			// The slow download was cut off at the deadline, not left running; the next call was not started.
			await new Promise((r) => setTimeout(r, 500));
			expect(storage.requests).toBe(1);
			expect(storage.closedAt).toHaveLength(1);
			expect(storage.closedAt[0] - started).toBeLessThan(took + 1000);
			expect(await trigger.poll()).toEqual([]);
			expect(storage.requests).toBe(1);
		} finally {
			await storage.close();
		}
	}, 20_000);

	it('two polls at once while the first downloads: the second emits nothing, every call comes once', async () => {
		emulator.configure({ recordingUrl: 'storage', recordingChunkDelayMs: 40, recordingBytes: 10 * 64 * 1024 });
		const trigger = new Trigger(newCalls());
		await trigger.poll();
		const calls = [completed()];
		await tick();
		calls.push(completed());
		const saved = JSON.parse(JSON.stringify(trigger.data)) as IDataObject;
		const first = trigger.poll();
		await new Promise((r) => setTimeout(r, 150));
		// A tick n8n fires meanwhile, from the same saved state.
		const second = await poll(newCalls(), { credentials, staticData: saved });
		expect(second).toBeNull();
		const items = await first;
		expect(items.map((i) => i.json.id)).toEqual(calls.map((c) => c.id));
		for (const [i, item] of items.entries()) expect(sha256(bytesOf(item.binary!.audio))).toBe(emulator.recordings.checksum(calls[i].id));
		expect(await trigger.poll()).toEqual([]);
		expect(emulator.recordings.requests).toHaveLength(2);
	}, 20_000);

	it('Fetch Test Event shows the newest call with its file', async () => {
		emulator.configure({ recordingUrl: 'storage' });
		const call = completed();
		const [item] = await new Trigger(newCalls()).poll({ mode: 'manual' });
		expect(item.json.id).toBe(call.id);
		expect(sha256(bytesOf(item.binary!.audio))).toBe(emulator.recordings.checksum(call.id));
	});

	it('Download Recording off (saved workflows): calls as before, no file, no download', async () => {
		emulator.configure({ recordingUrl: 'storage' });
		const trigger = new Trigger({ event: 'newCall', newCallFilters: {}, options: {} });
		await trigger.poll();
		const call = completed();
		expect(await trigger.poll()).toEqual([{ json: expect.objectContaining({ id: call.id }) }]);
		expect(emulator.recordings.requests).toEqual([]);
	});

	it.each([
		[{ binaryPropertyName: ' ' }, 'Put Output File in Field: is empty; enter a field name such as data'],
		[{ recordingOptions: { maxSizeMb: 0 } }, 'Max Size (MB): 0 is not a size above 0'],
		[{ recordingOptions: { ifNoRecording: 'fail' } }, 'If No Recording: "fail" is not one of Emit the Call Without a File, Skip the Call'],
	])('a bad setting %j fails the poll naming the field, before any request', async (extra, message) => {
		await expect(new Trigger(newCalls(extra)).poll()).rejects.toThrow(message);
		expect(emulator.requests).toEqual([]);
	});

	it('offers the switch on New Call only', () => {
		const fields = new InboundFlowTrigger().description.properties;
		expect(fields.find((f) => f.name === 'downloadRecording')?.displayOptions).toEqual({ show: { event: ['newCall'] } });
		for (const name of ['binaryPropertyName', 'recordingOptions']) {
			expect(fields.find((f) => f.name === name)?.displayOptions).toEqual({ show: { event: ['newCall'], downloadRecording: [true] } });
		}
	});
});

// ── Webhook trigger: Fetch Full Call → Download Recording ────────────────────────────

describe('webhook trigger, call events with Fetch Full Call and Download Recording', () => {
	let server: WebhookServer | undefined;
	const deadline = webhookTimings.recordingDeadlineMs;
	beforeEach(() => emulator.reset());
	afterEach(async () => {
		webhookTimings.recordingDeadlineMs = deadline;
		await server?.close();
		server = undefined;
	});

	const start = async (extra: IDataObject = {}) =>
		(server = await serveWebhook(
			{ events: ['call.completed', 'call.transferred'], fetchFullRecord: true, downloadRecording: true, recordingOptions: {}, ...extra },
			{ signingSecret: SECRET, apiKey: FULL_KEY, baseUrl: emulator.url },
		));
	const delivery = (call: StoredRecord, event = 'call.completed') =>
		buildWebhook({ event, data: { call_id: call.id, caller_phone: call.caller_phone }, secret: SECRET });
	async function send(d: { body: string; headers: Record<string, string> }) {
		const response = await fetch(server!.url, { method: 'POST', body: d.body, headers: d.headers });
		return { status: response.status, body: (await response.json()) as IDataObject };
	}

	it.each<[string, Partial<EmulatorConfig>, string[][]]>([
		['on a storage origin', { recordingUrl: 'storage' }, [['storage', 'none']]],
		['on the API origin redirecting to storage', { recordingUrl: 'api', recordingRedirect: true }, [['api', 'key'], ['storage', 'none']]],
	])('a delivery is emitted once with the call and its recording %s; the key stays on the API origin', async (_label, config, requests) => {
		emulator.configure(config);
		await start();
		const call = completed();
		const d = delivery(call);
		const deliveryId = JSON.parse(d.body).delivery_id as string;
		expect(await send(d)).toEqual({ status: 200, body: { received: true, delivery_id: deliveryId } });
		expect(await send(d)).toEqual({ status: 200, body: { received: true, duplicate: deliveryId } });
		expect(server!.emitted).toHaveLength(1);
		const [item] = server!.emitted[0][0];
		expect(item.json).toMatchObject({ event: 'call.completed', delivery_id: deliveryId, call: { id: call.id } });
		expect(sha256(bytesOf(item.binary!.data))).toBe(emulator.recordings.checksum(call.id));
		expect(item.binary!.data.fileName).toBe(`call-${call.id}.mp3`);
		expect(capture()).toEqual(requests);
	});

	it('copies of a delivery arriving while its recording downloads get no 2xx before the original is emitted; one run, one download', async () => {
		emulator.configure({ recordingUrl: 'storage', recordingChunkDelayMs: 40, recordingBytes: 16 * 64 * 1024 });
		await start();
		const call = completed();
		const d = delivery(call);
		const order: string[] = [];
		const answers = await Promise.all(
			Array.from({ length: 4 }, async (_, i) => {
				await new Promise((r) => setTimeout(r, i * 100));
				const answer = await send(d);
				order.push(answer.body.duplicate ? 'duplicate' : String(answer.status));
				return answer;
			}),
		);
		expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
		expect(order).toEqual(['200', 'duplicate', 'duplicate', 'duplicate']);
		expect(server!.emitted).toHaveLength(1);
		expect(sha256(bytesOf(server!.emitted[0][0][0].binary!.data))).toBe(emulator.recordings.checksum(call.id));
		expect(emulator.recordings.requests).toHaveLength(1);
	}, 20_000);

	it('a call without a recording is emitted without the file; with Skip the Call it is answered 200 and not emitted', async () => {
		emulator.configure({ recordingUrl: 'storage' });
		await start();
		const failed = emulator.add('calls', { status: 'in-progress' });
		expect((await send(delivery(failed, 'call.transferred'))).status).toBe(200);
		expect(server!.emitted.map((e) => e[0][0])).toEqual([{ json: expect.objectContaining({ call: expect.objectContaining({ id: failed.id, recording_url: null }) }) }]);
		await server!.close();
		await start({ recordingOptions: { ifNoRecording: 'skip' } });
		const d = delivery(failed);
		for (let i = 0; i < 2; i++) {
			expect(await send(d)).toEqual({ status: 200, body: { received: true, ignored: `call ${failed.id} has no recording` } });
		}
		expect(server!.emitted).toEqual([]);
		expect(emulator.recordings.requests).toEqual([]);
	});

	it('a failed download is answered 200 and emitted once without the file, the reason in recording_error', async () => {
		emulator.configure({ recordingUrl: 'storage' });
		await start();
		const call = completed();
		emulator.recordings.inject({ origin: 'storage', kind: 'status', status: 404 });
		const d = delivery(call);
		expect((await send(d)).status).toBe(200);
		expect((await send(d)).body.duplicate).toBeDefined();
		expect(server!.emitted).toHaveLength(1);
		const [item] = server!.emitted[0][0];
		expect(item.binary).toBeUndefined();
		expect(item.json.recording_error).toBe(`The recording of call "${call.id}" was not found (HTTP 404 from ${emulator.recordings.storageUrl})`);
	});

	it('a download past its own deadline is aborted there: the sender gets 200 in time and the call is emitted without the file', async () => {
		webhookTimings.recordingDeadlineMs = 1000;
		const storage = await slowStorage();
		try {
			await start();
			const call = emulator.add('calls', { status: 'completed', recording_url: `${storage.url}/slow.mp3` });
			const started = Date.now();
			const answer = await send(delivery(call));
			const took = Date.now() - started;
			expect(answer.status).toBe(200);
			expect(took).toBeLessThan(5000); // the body alone would take 500 s
			const [item] = server!.emitted[0][0];
			expect(item.binary).toBeUndefined();
			expect(item.json.recording_error).toBe(`The recording of call "${call.id}" was not downloaded: the webhook's 1-second limit for downloads ran out`);
			await new Promise((r) => setTimeout(r, 500));
			expect(storage.closedAt).toHaveLength(1);
		} finally {
			await storage.close();
		}
	});

	it('a call event naming no call is emitted without a file, saying so', async () => {
		await start();
		const d = buildWebhook({ event: 'call.completed', data: { caller_phone: '+14155550100' }, secret: SECRET });
		expect((await send(d)).status).toBe(200);
		expect(server!.emitted[0][0][0]).toEqual({
			json: expect.objectContaining({ recording_error: 'The delivery names no call (data.call_id), so there is no recording to download' }),
		});
		expect(emulator.recordings.requests).toEqual([]);
	});

	it('a bad setting refuses the delivery with 500 naming the field, before any request; nothing emitted or remembered', async () => {
		await start({ recordingOptions: { maxSizeMb: -1 } });
		const answer = await send(delivery(completed()));
		expect(answer).toEqual({ status: 500, body: { error: "The trigger's Download Recording settings are invalid: Max Size (MB): -1 is not a size above 0" } });
		expect(emulator.requests).toEqual([]);
		expect(server!.emitted).toEqual([]);
	});

	it('without Fetch Full Call the switch does nothing (it is shown only with it)', async () => {
		emulator.configure({ recordingUrl: 'storage' });
		await start({ fetchFullRecord: false });
		expect((await send(delivery(completed()))).status).toBe(200);
		expect(server!.emitted[0][0][0].binary).toBeUndefined();
		expect(emulator.recordings.requests).toEqual([]);
		const fields = new InboundFlowWebhookTrigger().description.properties;
		expect(fields.find((f) => f.name === 'downloadRecording')?.displayOptions).toEqual({ show: { fetchFullRecord: [true] } });
	});
});
