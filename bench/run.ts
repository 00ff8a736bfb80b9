// `npm run bench`: Return All and polling against the emulator, with and without the
// documented rate limit, side by side with a bare fetch loop and n8n's HTTP Request
// node. Prints a table and writes bench/results/latest.json.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

import type { IDataObject } from 'n8n-workflow';

import { FULL_KEY, type LoggedRequest } from '../emulator/server';
import { N8n, outputOf } from '../test/e2e/n8n';
import { CREDENTIAL_ID, credentials as e2eCredentials } from '../test/e2e/workflows';
import { executeNode, poll, type Credentials } from '../test/helpers';
import { queueBench } from './queue';
import { recordingBench } from './recordings';
import { webhookBench } from './webhook';
import { rateBench } from './rate';

const ROOT = path.resolve(__dirname, '..', '..');
const SIZES = (process.env.BENCH_SIZES ?? '1000,10000,100000').split(',').map(Number);
const LIMITED_RECORDS = Number(process.env.BENCH_LIMITED_RECORDS ?? 18_000);
const WINDOW = { limit: 60, windowMs: 6000 };
const say = (text: string) => process.stdout.write(`${text}\n`);

interface Child {
	url: string;
	credentials: Credentials;
	admin(method: string, route: string, body?: unknown): Promise<unknown>;
	requests(): Promise<LoggedRequest[]>;
	stop(): Promise<void>;
}

async function startChild(calls: number): Promise<Child> {
	const child: ChildProcess = spawn(process.execPath, [path.join(__dirname, 'emulator-child.js'), String(calls)], {
		stdio: ['ignore', 'pipe', 'inherit'],
	});
	const url = await new Promise<string>((resolve, reject) => {
		child.stdout!.once('data', (d: Buffer) => resolve((JSON.parse(d.toString()) as { url: string }).url));
		child.once('exit', () => reject(new Error('emulator child exited')));
	});
	const admin = async (method: string, route: string, body?: unknown) => {
		const response = await fetch(`${url}/__admin/${route}`, { method, body: body ? JSON.stringify(body) : undefined });
		return (await response.json()) as unknown;
	};
	return {
		url,
		credentials: { apiKey: FULL_KEY, baseUrl: url },
		admin,
		requests: async () => (await admin('GET', 'requests')) as LoggedRequest[],
		stop: async () => {
			child.kill('SIGTERM');
			await new Promise((r) => child.once('exit', r));
		},
	};
}

function memory(): number {
	const m = process.memoryUsage();
	return m.heapUsed + m.arrayBuffers;
}

async function measure<T>(fn: () => Promise<T>): Promise<{ result: T; ms: number; peak: number }> {
	const gc = (globalThis as { gc?: () => void }).gc;
	gc?.();
	gc?.();
	const base = memory();
	let peak = base;
	const timer = setInterval(() => (peak = Math.max(peak, memory())), 2);
	const started = performance.now();
	const result = await fn();
	const ms = performance.now() - started;
	peak = Math.max(peak, memory());
	clearInterval(timer);
	return { result, ms, peak: peak - base };
}

async function bareLoop(url: string): Promise<unknown[]> {
	const out: unknown[] = [];
	let cursor: string | null = null;
	do {
		const query: string = `limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
		const response = await fetch(`${url}/v1/calls?${query}`, { headers: { authorization: `Bearer ${FULL_KEY}` } });
		const body = (await response.json()) as { data: unknown[]; has_more: boolean; next_cursor: string | null };
		out.push(...body.data);
		cursor = body.has_more ? body.next_cursor : null;
	} while (cursor);
	return out;
}

const returnAll = { resource: 'call', operation: 'getAll', returnAll: true, simplify: false };
const mb = (bytes: number) => (bytes / 1_048_576).toFixed(1);

async function unlimited(): Promise<IDataObject[]> {
	const rows: IDataObject[] = [];
	for (const n of SIZES) {
		const child = await startChild(n);
		try {
			// Median of 3 alternating runs for time; memory and counts from the first.
			const oursTimes: number[] = [];
			const bareTimes: number[] = [];
			let requests = 0;
			let size = 0;
			let count = 0;
			let oursPeak = 0;
			let barePeak = 0;
			for (let round = 0; round < 3; round++) {
				await child.admin('DELETE', 'requests');
				const ours = await measure(async () => (await executeNode(returnAll, { credentials: child.credentials }))[0]);
				oursTimes.push(ours.ms);
				if (round === 0) {
					requests = (await child.requests()).length;
					size = Buffer.byteLength(JSON.stringify(ours.result.map((item) => item.json)));
					count = ours.result.length;
					oursPeak = ours.peak;
				}
				ours.result.length = 0;
				const bare = await measure(async () => await bareLoop(child.url));
				bareTimes.push(bare.ms);
				if (round === 0) barePeak = bare.peak;
			}
			const median = (list: number[]) => [...list].sort((a, b) => a - b)[1];
			const ours = { ms: median(oursTimes), peak: oursPeak };
			const bare = { ms: median(bareTimes), peak: barePeak };
			rows.push({
				records: n,
				returned: count,
				requests,
				expectedRequests: Math.ceil(n / 100),
				oursMs: Math.round(ours.ms),
				bareMs: Math.round(bare.ms),
				timeRatio: Number((ours.ms / bare.ms).toFixed(2)),
				oursPeakMB: Number(mb(ours.peak)),
				barePeakMB: Number(mb(bare.peak)),
				recordsMB: Number(mb(size)),
				peakToSize: Number((ours.peak / size).toFixed(2)),
			});
		} finally {
			await child.stop();
		}
	}
	return rows;
}

async function limitedOurs(child: Child, clients: number): Promise<IDataObject> {
	await child.admin('POST', 'config', { rateLimit: WINDOW });
	await child.admin('DELETE', 'requests');
	const perClient = Math.floor(LIMITED_RECORDS / clients);
	const started = performance.now();
	const results = await Promise.allSettled(
		Array.from({ length: clients }, async () =>
			(await executeNode({ ...returnAll, returnAll: false, limit: perClient }, { credentials: child.credentials }))[0]
				.length,
		),
	);
	const seconds = (performance.now() - started) / 1000;
	const log = await child.requests();
	return {
		client: clients === 1 ? 'InboundFlow node' : `InboundFlow node ×${clients}, shared key`,
		records: perClient * clients,
		...rateStats(log, seconds),
		runsFailed: results.filter((r) => r.status === 'rejected').length,
		runs: clients,
	};
}

/**
 * Against fixed windows of `limit` requests, n successful requests started at a
 * window's start cannot finish before (ceil(n / limit) - 1) windows have passed:
 * that minimum over the time taken is the share of the ceiling reached.
 */
function rateStats(log: LoggedRequest[], seconds: number): IDataObject {
	const ok = log.filter((r) => r.status === 200).length;
	const minimum = ((Math.ceil(ok / WINDOW.limit) - 1) * WINDOW.windowMs) / 1000;
	return {
		seconds: Number(seconds.toFixed(1)),
		minimumSeconds: minimum,
		requests: log.length,
		rateLimited429: log.filter((r) => r.status === 429).length,
		shareOfCeiling: seconds > 0 && minimum > 0 ? `${Math.min(100, (minimum / seconds) * 100).toFixed(1)} %` : 'n/a',
	};
}

async function limitedHttpRequestNode(child: Child): Promise<IDataObject> {
	if (!process.env.INBOUNDFLOW_N8N_BIN || !fs.existsSync(process.env.INBOUNDFLOW_N8N_BIN)) {
		return { client: "n8n HTTP Request node (skipped: n8n not installed; run `npm test` once)" };
	}
	const n8n = await N8n.create();
	await n8n.importCredentials(e2eCredentials(child.url, FULL_KEY, 'unused_secret_000'));
	const id = 'InbFlowBenchHttp1';
	await n8n.importWorkflows([
		{
			id,
			name: 'bench: HTTP Request node with pagination',
			settings: { executionOrder: 'v1' },
			active: false,
			connections: { Start: { main: [[{ node: 'HTTP Request', type: 'main', index: 0 }]] } },
			nodes: [
				{ id: 'b0000000-0000-4000-8000-000000000001', name: 'Start', type: 'n8n-nodes-base.manualTrigger', typeVersion: 1, position: [0, 0], parameters: {} },
				{
					id: 'b0000000-0000-4000-8000-000000000002',
					name: 'HTTP Request',
					type: 'n8n-nodes-base.httpRequest',
					typeVersion: 4.2,
					position: [220, 0],
					credentials: { inboundFlowApi: { id: CREDENTIAL_ID, name: 'InboundFlow account' } },
					parameters: {
						url: `${child.url}/v1/calls`,
						authentication: 'predefinedCredentialType',
						nodeCredentialType: 'inboundFlowApi',
						sendQuery: true,
						queryParameters: { parameters: [{ name: 'limit', value: '100' }] },
						options: {
							pagination: {
								pagination: {
									paginationMode: 'updateAParameterInEachRequest',
									parameters: {
										parameters: [{ type: 'qs', name: 'cursor', value: '={{ $response.body.next_cursor }}' }],
									},
									paginationCompleteWhen: 'other',
									completeExpression: '={{ !$response.body.has_more }}',
									limitPagesFetched: true,
									maxRequests: Math.ceil(LIMITED_RECORDS / 100),
								},
							},
						},
					},
				},
			],
		},
	]);
	await child.admin('POST', 'config', { rateLimit: WINDOW });
	await child.admin('DELETE', 'requests');
	const result = await n8n.execute(id);
	const log = await child.requests();
	const span = log.length > 1 ? (log[log.length - 1].at - log[0].at) / 1000 : 0;
	let records = 0;
	if (result.run) records = outputOf(result.run, 'HTTP Request').reduce((n, page) => n + ((page.data as unknown[])?.length ?? 0), 0);
	return {
		client: 'n8n HTTP Request node, pagination',
		records,
		...rateStats(log, span),
		runsFailed: result.code === 0 ? 0 : 1,
		runs: 1,
	};
}

async function limited(): Promise<IDataObject[]> {
	const child = await startChild(LIMITED_RECORDS);
	try {
		// Start on a fresh window, as a key that was idle would.
		await new Promise((r) => setTimeout(r, WINDOW.windowMs - (Date.now() % WINDOW.windowMs) + 50));
		const rows = [await limitedOurs(child, 1)];
		await new Promise((r) => setTimeout(r, WINDOW.windowMs - (Date.now() % WINDOW.windowMs) + 50));
		rows.push(await limitedOurs(child, 2));
		await new Promise((r) => setTimeout(r, WINDOW.windowMs - (Date.now() % WINDOW.windowMs) + 50));
		rows.push(await limitedHttpRequestNode(child));
		return rows;
	} finally {
		await child.stop();
	}
}

async function polling(): Promise<IDataObject[]> {
	const child = await startChild(200);
	const staticData: IDataObject = {};
	const parameters = { event: 'newCall' };
	const rows: IDataObject[] = [];
	try {
		const run = async (label: string, k: number) => {
			if (k > 0) await child.admin('POST', 'records/calls', Array.from({ length: k }, () => ({})));
			await child.admin('DELETE', 'requests');
			const out = await poll(parameters, { credentials: child.credentials, staticData });
			rows.push({ poll: label, newRecords: k, emitted: out?.[0]?.length ?? 0, requests: (await child.requests()).length });
		};
		await run('first (baseline)', 0);
		await run('idle', 0);
		for (const k of [1, 50, 250]) await run(`with ${k} new`, k);
		await run('idle again', 0);
		// New Call with the Completed filter: an idle poll reads the whole 15-minute lookback.
		const completed = { event: 'newCall', newCallFilters: { status: 'completed' } };
		const completedState: IDataObject = {};
		await poll(completed, { credentials: child.credentials, staticData: completedState });
		let inLookback = 0;
		for (const target of [50, 150, 250]) {
			await child.admin('POST', 'records/calls', Array.from({ length: target - inLookback }, () => ({ status: 'completed' })));
			inLookback = target;
			await poll(completed, { credentials: child.credentials, staticData: completedState }); // emits them
			await child.admin('DELETE', 'requests');
			const out = await poll(completed, { credentials: child.credentials, staticData: completedState });
			rows.push({
				poll: `idle, Completed filter, ${target} completed calls in the lookback`,
				newRecords: 0,
				emitted: out?.[0]?.length ?? 0,
				requests: (await child.requests()).length,
			});
		}
	} finally {
		await child.stop();
	}
	return rows;
}

/** The last soak of the polling trigger in a real n8n (written by `npm test`). */
function soak(): IDataObject[] {
	const file = path.join(ROOT, 'bench', 'results', 'soak.tmp');
	if (!fs.existsSync(file)) return [];
	const runs = JSON.parse(fs.readFileSync(file, 'utf8')) as Array<{
		engine: string;
		seconds: number;
		created: number;
		limited: number;
		overlapping: number;
		rows: IDataObject[];
		statuses: Record<string, number>;
	}>;
	return runs.flatMap((data) => {
		const failed = Object.entries(data.statuses)
			.filter(([status]) => status !== 'success')
			.reduce((n, [, count]) => n + Number(count), 0);
		return data.rows.map((row) => ({
			engine: data.engine,
			soak: `${data.seconds} s, restart, ${data.limited} × 429, ${data.overlapping} polls past a tick`,
			...row,
			failedExecutions: failed,
		}));
	});
}

function table(rows: IDataObject[]): string {
	if (rows.length === 0) return '';
	const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))];
	const line = (cells: unknown[]) => `| ${cells.map((c) => String(c ?? '')).join(' | ')} |`;
	return [line(keys), line(keys.map(() => '---')), ...rows.map((r) => line(keys.map((k) => r[k])))].join('\n');
}

async function main(): Promise<void> {
	if (!(globalThis as { gc?: unknown }).gc) say('(run with --expose-gc for stable memory readings: npm run bench does)');
	say('Return All without a rate limit (calls with transcripts; peaks are heap+buffers above the start)…');
	const a = await unlimited();
	say(table(a));
	say(`\nUnder the documented limit's shape, ${WINDOW.limit} requests per ${WINDOW.windowMs / 1000} s window (ceiling ${WINDOW.limit / (WINDOW.windowMs / 1000)} requests/s)…`);
	const b = await limited();
	say(table(b));
	say('\nPolling…');
	const c = await polling();
	say(table(c));
	// Call recordings (issue 25): a 100 MB download, per binary data mode.
	say('\nCall → Download Recording, 100 MB, vs a bare fetch to a file (peaks above the start)…');
	const recordings = process.env.BENCH_RECORDINGS === '0' ? [] : await recordingBench();
	say(table(recordings));
	const d = soak();
	say(d.length ? `\nPolling trigger soak in a real n8n (from the last npm test)…\n${table(d)}` : '\n(no soak figures: run npm test first)');
	say('');
	const queue = process.env.BENCH_QUEUE === '0' ? undefined : await queueBench(say);
	if (process.env.BENCH_WEBHOOK !== '0') say(`${table(await webhookBench(say))}\n(also in bench/results/webhook.json)`);
	// Rate limit at the real 60-s window and shrunk to 6 s, fixed and sliding (bench/rate.ts).
	let rate: IDataObject[] | undefined;
	if (process.env.BENCH_RATE !== '0') {
		say('\nRate limit: 60 requests per window, documented headers only, fixed and sliding windows (bench/rate.ts)…');
		rate = await rateBench(say);
		say(table(rate));
	}
	const results = { date: new Date().toISOString(), node: process.version, unlimited: a, rateLimited: b, polling: c, soak: d, queue, recordings, rate };
	const dir = path.join(ROOT, 'bench', 'results');
	fs.mkdirSync(dir, { recursive: true });
	fs.writeFileSync(path.join(dir, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
	say(`\nWritten to bench/results/latest.json`);
}

main().catch((error: unknown) => {
	process.stderr.write(`${String(error)}\n`);
	process.exit(1);
});
