// Benchmark of Call → Download Recording (issue 25): a large recording downloaded by our
// node in n8n-core's execution context into n8n's binary data store, side by side with a
// bare `fetch` streamed to a file, in one binary data mode per process (n8n keeps its
// binary data service per process). `recordingBench()` runs one child per mode and returns
// the rows; the child (`node bench/recordings.js <mode> <bytes>`) prints one JSON row.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import type { IDataObject } from 'n8n-workflow';

import { FULL_KEY } from '../emulator/server';

type Mode = 'filesystem' | 'default';
const MODES: Mode[] = ['filesystem', 'default'];

/** JS heap plus everything outside it (Buffers, and strings n8n builds from them, such as base64). */
function memory(): { js: number; rss: number } {
	const m = process.memoryUsage();
	return { js: m.heapUsed + m.external, rss: m.rss };
}

interface Measured<T> {
	result: T;
	seconds: number;
	/** Peak growth of heap + external memory (MB). */
	peakMB: number;
	/** Peak growth of the resident set (MB). */
	rssMB: number;
}

/**
 * Time and peak growth above a forced-GC start while `fn` runs, sampled every few ms.
 * `lazy`: as the process grows when V8 collects when it likes — freed stream chunks
 * (external Buffers) linger until V8's external-memory trigger, some 30–60 MB whatever
 * the file size. `live`: each sample runs a young-generation GC first, so chunks already
 * passed on are gone; what remains is what the pipeline holds, plus dead buffers that
 * got promoted (an upper bound on the live set, never below it). A full GC per sample
 * would be exact but takes 100s of ms each on this machine and stalls the download.
 */
async function measure<T>(fn: () => Promise<T>, how: 'lazy' | 'live'): Promise<Measured<T>> {
	const gc = (globalThis as { gc?: (options?: { type: 'minor' | 'major' }) => void }).gc;
	if (!gc) throw new Error('run with node --expose-gc');
	gc();
	gc();
	const base = memory();
	let peak = base;
	const sample = () => {
		if (how === 'live') gc({ type: 'minor' });
		const now = memory();
		peak = { js: Math.max(peak.js, now.js), rss: Math.max(peak.rss, now.rss) };
	};
	const timer = setInterval(sample, how === 'live' ? 5 : 2);
	const started = performance.now();
	const result = await fn();
	const seconds = (performance.now() - started) / 1000;
	sample();
	clearInterval(timer);
	return { result, seconds, peakMB: (peak.js - base.js) / 1e6, rssMB: (peak.rss - base.rss) / 1e6 };
}

async function emulatorChild(): Promise<{ url: string; stop: () => Promise<void> }> {
	const child: ChildProcess = spawn(process.execPath, [path.join(__dirname, 'emulator-child.js'), '1'], {
		stdio: ['ignore', 'pipe', 'inherit'],
	});
	const url = await new Promise<string>((resolve, reject) => {
		child.stdout!.once('data', (d: Buffer) => resolve((JSON.parse(d.toString()) as { url: string }).url));
		child.once('exit', () => reject(new Error('emulator child exited')));
	});
	return {
		url,
		stop: async () => {
			child.kill('SIGTERM');
			await new Promise((r) => child.once('exit', r));
		},
	};
}

/** One mode, in this process: prints a JSON row. */
async function child(mode: Mode, bytes: number): Promise<void> {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inboundflow-bench-rec-'));
	// n8n-core's binary data service, as n8n sets it up from these settings.
	process.env.N8N_USER_FOLDER = dir;
	process.env.N8N_ENCRYPTION_KEY = 'bench';
	process.env.N8N_DEFAULT_BINARY_DATA_MODE = mode;
	process.env.N8N_BINARY_DATA_STORAGE_PATH = path.join(dir, 'binary');
	// eslint-disable-next-line @typescript-eslint/no-require-imports
	require('reflect-metadata');
	// eslint-disable-next-line @typescript-eslint/no-require-imports
	const { Container } = require('@n8n/di') as { Container: { get<T>(c: new (...a: never[]) => T): T } };
	// eslint-disable-next-line @typescript-eslint/no-require-imports
	const { BinaryDataService } = require('n8n-core') as { BinaryDataService: new () => { init(): Promise<void> } };
	await Container.get(BinaryDataService).init();
	// eslint-disable-next-line @typescript-eslint/no-require-imports
	const { executeNode } = require('../test/helpers') as typeof import('../test/helpers');

	const emulator = await emulatorChild();
	try {
		await fetch(`${emulator.url}/__admin/config`, {
			method: 'POST',
			body: JSON.stringify({ recordingUrl: 'storage', recordingBytes: bytes }),
		});
		const list = (await (
			await fetch(`${emulator.url}/v1/calls?limit=1&status=completed`, { headers: { authorization: `Bearer ${FULL_KEY}` } })
		).json()) as { data: IDataObject[] };
		let call = list.data[0];
		if (!call) {
			const added = await fetch(`${emulator.url}/__admin/records/calls`, { method: 'POST', body: JSON.stringify({ status: 'completed' }) });
			call = ((await added.json()) as IDataObject[])[0];
		}
		const id = String(call.id);
		// A bare fetch of the same recording, streamed to a file, and our node, measured alike:
		// timed with the lazy measure (twice, alternating), then once with the live one.
		const bare = async () => {
			const one = (await (await fetch(`${emulator.url}/v1/calls/${id}`, { headers: { authorization: `Bearer ${FULL_KEY}` } })).json()) as {
				data: IDataObject;
			};
			const response = await fetch(String(one.data.recording_url));
			const file = path.join(dir, 'bare.mp3');
			await pipeline(Readable.fromWeb(response.body as never), fs.createWriteStream(file));
			return fs.statSync(file).size;
		};
		const node = async () => {
			const output = await executeNode(
				{ resource: 'call', operation: 'downloadRecording', callId: id, binaryPropertyName: 'data', options: { maxSizeMb: 1000 } },
				{ credentials: { apiKey: FULL_KEY, baseUrl: emulator.url } },
			);
			return output[0][0].binary!.data;
		};
		// Timed twice, alternating, on a shared machine: the faster run's time, the higher peak.
		const twice = <T>(first: Measured<T>, second: Measured<T>): Measured<T> => ({
			...second,
			seconds: Math.min(first.seconds, second.seconds),
			peakMB: Math.max(first.peakMB, second.peakMB),
			rssMB: Math.max(first.rssMB, second.rssMB),
		});
		const bare1 = await measure(bare, 'lazy');
		const ours1 = await measure(node, 'lazy');
		const bareLazy = twice(bare1, await measure(bare, 'lazy'));
		const ours = twice(ours1, await measure(node, 'lazy'));
		const bareLive = await measure(bare, 'live');
		const oursLive = await measure(node, 'live');
		const stored = Number(ours.result.bytes ?? 0);
		const mb = bytes / 1e6;
		const r1 = (x: number) => Math.round(x * 10) / 10;
		const share = (x: number) => `${r1((x / mb) * 100)} %`;
		const row: IDataObject = {
			binaryMode: mode,
			fileMB: Math.round(mb),
			storedMB: r1(stored / 1e6),
			oursSeconds: Math.round(ours.seconds * 100) / 100,
			bareFetchSeconds: Math.round(bareLazy.seconds * 100) / 100,
			timeRatio: Math.round((ours.seconds / bareLazy.seconds) * 100) / 100,
			oursLiveMB: r1(oursLive.peakMB),
			oursLiveToSize: share(oursLive.peakMB),
			bareLiveMB: r1(bareLive.peakMB),
			oursLazyMB: r1(ours.peakMB),
			oursLazyToSize: share(ours.peakMB),
			bareLazyMB: r1(bareLazy.peakMB),
			oursRssMB: r1(ours.rssMB),
			bareRssMB: r1(bareLazy.rssMB),
		};
		process.stdout.write(`${JSON.stringify(row)}\n`);
	} finally {
		await emulator.stop();
		fs.rmSync(dir, { recursive: true, force: true });
	}
}

/** Runs each binary mode in its own process; the rows, or an error row per failed mode. */
export async function recordingBench(bytes = Number(process.env.BENCH_RECORDING_BYTES ?? 100_000_000)): Promise<IDataObject[]> {
	const rows: IDataObject[] = [];
	// Both modes at the size asked, and filesystem at three times it: what grows with the file.
	const runs: Array<[Mode, number]> = [...MODES.map((mode): [Mode, number] => [mode, bytes]), ['filesystem', bytes * 3]];
	for (const [mode, size] of runs) {
		const proc = spawn(process.execPath, ['--expose-gc', __filename, mode, String(size)], {
			stdio: ['ignore', 'pipe', 'inherit'],
		});
		let out = '';
		proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
		const code = await new Promise<number | null>((resolve) => proc.on('close', resolve));
		const line = out.trim().split('\n').pop() ?? '';
		try {
			rows.push(JSON.parse(line) as IDataObject);
		} catch {
			rows.push({ binaryMode: mode, error: `exit ${code}: ${out.slice(-300)}` });
		}
	}
	return rows;
}

if (require.main === module) {
	const [mode, bytes] = process.argv.slice(2);
	if (MODES.includes(mode as Mode)) {
		child(mode as Mode, Number(bytes)).catch((error: unknown) => {
			process.stderr.write(`${String(error instanceof Error ? error.stack : error)}\n`);
			process.exit(1);
		});
	} else {
		void recordingBench().then((rows) => {
			const keys = [...new Set(rows.flatMap((row) => Object.keys(row)))];
			const lines = [keys, keys.map(() => '---'), ...rows.map((row) => keys.map((k) => String(row[k] ?? '')))];
			process.stdout.write(`${lines.map((cells) => `| ${cells.join(' | ')} |`).join('\n')}\n`);
		});
	}
}
