// Call → Download Recording over real HTTP: the emulator serves recordings on its own
// origin (key required) and on a second origin standing in for storage (signed URLs, no
// key); both log whether each request carried an Authorization header (the capture).
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

import type { IBinaryData, IDataObject, INodeExecutionData } from 'n8n-workflow';

import { FULL_KEY, type EmulatorConfig, type InboundFlowEmulator } from '../emulator/server';
import type { StoredRecord } from '../emulator/data';
import { dispositionFileName } from '../nodes/shared/transport/download';
import { emulatorPerFile, executeNode, type Credentials } from './helpers';

let emulator: InboundFlowEmulator;
let credentials: Credentials;
let call: StoredRecord;

const file = emulatorPerFile({ seed: { calls: 3 } });
beforeAll(() => ({ emulator, credentials } = file));
beforeEach(() => {
	emulator.reset();
	call = emulator.add('calls', { status: 'completed' });
});

const download = (extra: IDataObject = {}, callId?: string): IDataObject => ({
	resource: 'call',
	operation: 'downloadRecording',
	callId: callId ?? call.id,
	binaryPropertyName: 'data',
	options: {},
	...extra,
});

async function run(parameters: IDataObject, continueOnFail = false): Promise<INodeExecutionData[]> {
	return (await executeNode(parameters, { credentials, continueOnFail }))[0];
}

async function failure(parameters: IDataObject): Promise<Error & IDataObject> {
	try {
		await run(parameters);
	} catch (error) {
		return error as Error & IDataObject;
	}
	throw new Error('expected the node to fail');
}

/** The bytes n8n stored (memory mode in this harness: base64 in `data`). */
function bytesOf(binary: IBinaryData): Buffer {
	return Buffer.from(binary.data, 'base64');
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** Who sent what where: [origin, path without query, whether it carried the key]. */
function capture(): Array<[string, string, boolean]> {
	return emulator.recordings.requests.map((r) => [r.origin, r.path, r.authorization !== undefined]);
}

describe.each<[string, Partial<EmulatorConfig>, Array<[string, boolean]>]>([
	['on the API origin (key required)', { recordingUrl: 'api' }, [['api', true]]],
	['on another origin (signed URL, no key)', { recordingUrl: 'storage' }, [['storage', false]]],
	['on the API origin answering 302 to storage', { recordingUrl: 'api', recordingRedirect: true }, [['api', true], ['storage', false]]],
	['without Content-Length', { recordingUrl: 'storage', recordingContentLength: false }, [['storage', false]]],
	['as a slow body', { recordingUrl: 'storage', recordingChunkDelayMs: 15, recordingBytes: 12 * 64 * 1024 }, [['storage', false]]],
	['as audio/wav', { recordingUrl: 'api', recordingContentType: 'audio/wav' }, [['api', true]]],
])('a recording %s', (_label, config, expected) => {
	it('arrives byte for byte, as audio with its name and size, and the key goes to the API origin only', async () => {
		emulator.configure(config);
		const [item] = await run(download());
		const binary = item.binary!.data;
		expect(sha256(bytesOf(binary))).toBe(emulator.recordings.checksum(call.id));
		expect(binary.bytes ?? bytesOf(binary).length).toBe(emulator.config.recordingBytes);
		const type = config.recordingContentType ?? 'audio/mpeg';
		expect(binary.mimeType).toBe(type);
		expect(binary.fileName).toBe(`call-${call.id}.${type === 'audio/wav' ? 'wav' : 'mp3'}`);
		expect(binary.fileSize).toBeDefined();
		// The call's fields as JSON beside the file.
		expect(item.json).toMatchObject({ id: call.id, status: 'completed', caller_phone: call.caller_phone });
		expect(item.pairedItem).toEqual({ item: 0 });
		// The capture: which origin saw a key.
		expect(capture().map(([origin, , key]) => [origin, key])).toEqual(expected);
		for (const r of emulator.recordings.requests) {
			if (r.authorization !== undefined) expect(r.authorization).toBe(`Bearer ${FULL_KEY}`);
		}
	});
});

describe('where the key goes', () => {
	it('never follows a redirect back to the API origin with the key once it has left it', async () => {
		emulator.configure({ recordingUrl: 'storage' });
		// A hostile storage host sends the download back to the API's recording URL.
		emulator.recordings.inject({ origin: 'storage', kind: 'redirect', location: `${emulator.url}/v1/calls/${call.id}/recording` });
		const error = await failure(download());
		expect(capture()).toEqual([['storage', `/recordings/${call.id}.mp3`, false]]);
		// The API origin saw the hop back without a key: refused as unauthenticated.
		expect(emulator.apiRequests({ path: `/v1/calls/${call.id}/recording` }).map((r) => r.status)).toEqual([401]);
		expect(error.message).toContain(`HTTP 401`);
		expect(JSON.stringify(error)).not.toContain(FULL_KEY);
	});

	it('sends no key to a capture server that the recording URL names, and follows its redirects without it', async () => {
		const seen: Array<{ path: string; authorization?: string }> = [];
		const server = http.createServer((req, res) => {
			seen.push({ path: req.url ?? '', authorization: req.headers.authorization });
			if (req.url === '/hop') {
				res.writeHead(307, { location: '/audio.wav' });
				res.end();
				return;
			}
			res.writeHead(200, { 'content-type': 'audio/wav', 'content-length': '5' });
			res.end('RIFF!');
		});
		await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
		try {
			const capturer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
			const elsewhere = emulator.add('calls', { status: 'completed', recording_url: `${capturer}/hop` });
			const [item] = await run(download({}, elsewhere.id));
			expect(bytesOf(item.binary!.data).toString()).toBe('RIFF!');
			// Named by the audio type, not by the last URL's path.
			expect(item.binary!.data.fileName).toBe(`call-${elsewhere.id}.wav`);
			expect(seen).toEqual([{ path: '/hop' }, { path: '/audio.wav' }]);
		} finally {
			await new Promise<void>((resolve) => server.close(() => resolve()));
		}
	});

	it('stops after 5 redirects, naming the last host and never the signed query', async () => {
		emulator.configure({ recordingUrl: 'storage' });
		const loop = `${emulator.recordings.storageUrl}/loop?signature=topsecret`;
		emulator.recordings.inject({ origin: 'storage', kind: 'redirect', location: loop, times: 10 });
		const error = await failure(download());
		expect(error.message).toContain('more than 5 redirects');
		expect(JSON.stringify(error)).not.toContain('topsecret');
		expect(emulator.recordings.requests).toHaveLength(6);
	});
});

describe('file names', () => {
	it('takes the server’s Content-Disposition name, reduced to a safe base name', async () => {
		emulator.configure({ recordingUrl: 'storage', recordingFileName: '../../etc/evil recording.mp3' });
		const [item] = await run(download());
		expect(item.binary!.data.fileName).toBe('evil recording.mp3');
		expect(sha256(bytesOf(item.binary!.data))).toBe(emulator.recordings.checksum(call.id));
	});

	it.each([
		['attachment; filename="a.mp3"', 'a.mp3'],
		["attachment; filename*=UTF-8''%C3%BCber.wav", 'über.wav'],
		['attachment; filename=..\\..\\x.mp3', 'x.mp3'],
		['attachment; filename="..."', undefined],
		['inline', undefined],
	])('Content-Disposition %s → %s', (value, expected) => {
		expect(dispositionFileName(value)).toBe(expected);
	});
});

describe('Max Size', () => {
	it('refuses a larger file by its Content-Length before reading the body', async () => {
		emulator.configure({ recordingUrl: 'storage', recordingBytes: 3_000_000 });
		const error = await failure(download({ options: { maxSizeMb: 1 } }));
		expect(error.message).toBe(`The recording of call "${call.id}" is 3 MB, more than Max Size (1 MB)`);
	});

	it('stops a download without Content-Length as soon as it passes the limit', async () => {
		emulator.configure({ recordingUrl: 'storage', recordingBytes: 3_000_000, recordingContentLength: false });
		const error = await failure(download({ options: { maxSizeMb: 1 } }));
		expect(error.message).toBe(
			`The recording of call "${call.id}" is larger than Max Size (1 MB): the download was stopped there`,
		);
	});

	it('accepts a file of exactly the limit', async () => {
		emulator.configure({ recordingUrl: 'storage', recordingBytes: 1_000_000, recordingContentLength: false });
		const [item] = await run(download({ options: { maxSizeMb: 1 } }));
		expect(bytesOf(item.binary!.data)).toHaveLength(1_000_000);
	});
});

describe('clear answers', () => {
	it('an expired signed URL (403) is refreshed once by reading the call again', async () => {
		emulator.configure({ recordingUrl: 'storage' });
		emulator.recordings.inject({ origin: 'storage', kind: 'status', status: 403 });
		const [item] = await run(download());
		expect(sha256(bytesOf(item.binary!.data))).toBe(emulator.recordings.checksum(call.id));
		expect(emulator.apiRequests({ path: `/v1/calls/${call.id}` })).toHaveLength(2);
		expect(emulator.recordings.requests.map((r) => r.status)).toEqual([403, 200]);
	});

	it('a URL that is still refused after the refresh names the call and the host, without the signature', async () => {
		// Every URL the API hands out has expired already.
		emulator.configure({ recordingUrl: 'storage', recordingTtlMs: -1000 });
		const error = await failure(download());
		expect(error.message).toBe(
			`The storage host ${emulator.recordings.storageUrl} refused the recording of call "${call.id}" (HTTP 403) even with a fresh URL read from InboundFlow`,
		);
		expect(emulator.apiRequests({ path: `/v1/calls/${call.id}` })).toHaveLength(2);
		expect(emulator.recordings.requests.map((r) => r.status)).toEqual([403, 403]);
		expect(JSON.stringify(error)).not.toMatch(/signature=/);
	});

	it.each(['failed', 'blocked', 'in-progress'])('a %s call has no recording: an error naming the call and its status', async (status) => {
		emulator.configure({ recordingUrl: 'storage' });
		const none = emulator.add('calls', { status });
		const error = await failure(download({}, none.id));
		expect(error.message).toBe(`Call "${none.id}" has no recording (status: ${status})`);
		expect(emulator.recordings.requests).toEqual([]);
	});

	it('If No Recording: skip outputs nothing, noFile outputs the call without a file', async () => {
		emulator.configure({ recordingUrl: 'storage' });
		const none = emulator.add('calls', { status: 'failed' });
		expect(await run(download({ options: { ifNoRecording: 'skip' } }, none.id))).toEqual([]);
		const [item] = await run(download({ options: { ifNoRecording: 'noFile' } }, none.id));
		expect(item.json).toMatchObject({ id: none.id, recording_url: null });
		expect(item.binary).toBeUndefined();
	});

	it('a 404 from storage names the call and the status', async () => {
		emulator.configure({ recordingUrl: 'storage' });
		emulator.recordings.inject({ origin: 'storage', kind: 'status', status: 404 });
		const error = await failure(download());
		expect(error.message).toBe(`The recording of call "${call.id}" was not found (HTTP 404 from ${emulator.recordings.storageUrl})`);
	});

	it('503s and a connection dropped mid-body are retried; persistent 503s name the call, status and attempts', async () => {
		emulator.configure({ recordingUrl: 'api', recordingRedirect: true });
		emulator.recordings.inject(
			{ origin: 'api', kind: 'status', status: 502 },
			{ origin: 'storage', kind: 'status', status: 503 },
			{ origin: 'storage', kind: 'dropMidBody' },
		);
		const [item] = await run(download());
		expect(sha256(bytesOf(item.binary!.data))).toBe(emulator.recordings.checksum(call.id));
		// The transport retries the request that failed (the same signed URL), not the whole chain.
		expect(emulator.recordings.requests.map((r) => `${r.origin} ${r.status}`)).toEqual([
			'api 502', 'api 302', 'storage 503', 'storage 200', 'storage 200',
		]);

		emulator.recordings.inject({ origin: 'storage', kind: 'status', status: 503, times: 10 });
		const error = await failure(download());
		expect(error.message).toBe(
			`Could not download the recording of call "${call.id}": ${emulator.recordings.storageUrl} answered HTTP 503, after 5 attempts`,
		);
	});

	it('a connection that keeps dropping mid-body ends in a clear error after the retries', async () => {
		emulator.configure({ recordingUrl: 'storage' });
		emulator.recordings.inject({ origin: 'storage', kind: 'dropMidBody', times: 10 });
		const error = await failure(download());
		expect(error.message).toBe(
			`Could not download the recording of call "${call.id}": the connection to ${emulator.recordings.storageUrl} dropped during the download, after 5 attempts`,
		);
		expect(emulator.recordings.requests).toHaveLength(5);
	});

	it('two executions at once, twenty recordings each across both origins, every file intact', async () => {
		emulator.configure({ recordingUrl: 'api', recordingRedirect: true, recordingChunkDelayMs: 1, recordingBytes: 4 * 64 * 1024 });
		const calls = Array.from({ length: 40 }, () => emulator.add('calls', { status: 'completed' }));
		const runOne = (list: StoredRecord[]) =>
			executeNode(download({}, '={{ $json.id }}'), { credentials, items: list.map((c) => ({ id: c.id })) });
		const outputs = await Promise.all([runOne(calls.slice(0, 20)), runOne(calls.slice(20))]);
		const items = outputs.flatMap((o) => o[0]);
		expect(items.map((item) => item.json.id)).toEqual(calls.map((c) => c.id));
		for (const item of items) {
			expect(sha256(bytesOf(item.binary!.data))).toBe(emulator.recordings.checksum(String(item.json.id)));
		}
		expect(emulator.recordings.requests.filter((r) => r.origin === 'storage' && r.authorization !== undefined)).toEqual([]);
		expect(emulator.recordings.requests).toHaveLength(80);
	});

	it('a call ID that is not a UUID is refused before any request', async () => {
		const error = await failure(download({}, 'not-an-id'));
		expect(error.message).toContain('Call ID: "not-an-id" is not a valid InboundFlow ID');
		expect(emulator.requests).toEqual([]);
	});

	it('continueOnFail: an error item per failing input, paired with it, and the file for the others', async () => {
		emulator.configure({ recordingUrl: 'storage' });
		const none = emulator.add('calls', { status: 'blocked' });
		const output = await executeNode(download({}, '={{ $json.id }}'), {
			credentials,
			continueOnFail: true,
			items: [{ id: none.id }, { id: call.id }],
		});
		const [first, second] = output[0];
		expect(first).toEqual({ json: { error: `Call "${none.id}" has no recording (status: blocked)` }, pairedItem: { item: 0 } });
		expect(second.pairedItem).toEqual({ item: 1 });
		expect(sha256(bytesOf(second.binary!.data))).toBe(emulator.recordings.checksum(call.id));
	});
});

describe('streaming', () => {
	/**
	 * Runs a download of `size` bytes with a consumer in place of n8n's binary data store
	 * that tracks the bytes in flight: sent by the emulator (which writes with
	 * backpressure) but not yet handed to the store. A node that buffers the body, or reads
	 * it without backpressure, holds them; a streaming node holds a few socket buffers.
	 */
	async function inFlight(size: number, slowConsumer: boolean): Promise<{ peak: number; received: number; digest: string }> {
		emulator.configure({ recordingUrl: 'storage', recordingBytes: size, recordingContentLength: false });
		const sent = () => emulator.recordings.requests.at(-1)?.sent ?? 0;
		let received = 0;
		let peak = 0;
		const hash = createHash('sha256');
		await executeNode(download({ options: { maxSizeMb: 1000 } }), {
			credentials,
			prepareBinaryData: async (data, fileName, mimeType) => {
				for await (const chunk of (Buffer.isBuffer(data) ? [data] : data) as AsyncIterable<Buffer>) {
					peak = Math.max(peak, sent() - received);
					received += chunk.length;
					hash.update(chunk);
					// A slow store: the emulator gets a turn to write between chunks.
					if (slowConsumer) await new Promise((resolve) => setImmediate(resolve));
				}
				return { data: '', mimeType: mimeType ?? '', fileName, bytes: received };
			},
		});
		return { peak, received, digest: hash.digest('hex') };
	}

	it.each([
		['a fast store', false],
		['a slow store', true],
	])('hands the body on as it arrives, with backpressure (%s): bytes in flight stay far below the file size', async (_label, slow) => {
		const size = 64 * 1024 * 1024;
		const { peak, received, digest } = await inFlight(size, slow);
		expect(received).toBe(size);
		expect(digest).toBe(emulator.recordings.checksum(call.id));
		// Buffered whole, the first chunk would arrive with all 64 MiB sent.
		expect(peak).toBeLessThan(size / 4);
	});
});

describe('the AI tool variant', () => {
	it('offers every Call operation but Download Recording (agents cannot use a file)', async () => {
		const { NodeHelpers } = await import('n8n-workflow');
		const { InboundFlow } = await import('../nodes/InboundFlow/InboundFlow.node');
		const description = new InboundFlow().description;
		const offered = (name: string) =>
			description.properties
				.filter((p) => p.name === 'operation')
				.filter((p) => NodeHelpers.displayParameter({ resource: 'call' }, p, null, { ...description, name }))
				.flatMap((p) => (p.options ?? []).map((o) => ('value' in o ? o.value : '')));
		expect(offered('inboundFlow')).toEqual(['getAll', 'get', 'downloadRecording']);
		expect(offered('inboundFlowTool')).toEqual(['getAll', 'get']);
		const action = description.properties
			.find((p) => p.name === 'operation' && (p.options ?? []).some((o) => 'value' in o && o.value === 'downloadRecording'))!
			.options!.find((o) => 'value' in o && o.value === 'downloadRecording') as { action: string };
		expect(action.action).toMatch(/returns an audio file/);
	});
});
