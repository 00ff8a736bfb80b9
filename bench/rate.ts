// Rate-limit table of `npm run bench`: Return All under the documented limit (60
// requests per window, only X-RateLimit-Limit/-Remaining and Retry-After on a 429), at
// the real 60-s window and shrunk to 6 s, for a fixed and a sliding window: alone, two
// executions at once on the key (one n8n process), two workers (a second copy of the
// transport with its own pacing state: the stand-in for two queue-mode worker processes),
// and beside another app on the key at 1 request / 2 s (30 per minute), with the
// credential's default Rate Limit Use and with "wholeLimit". Runs on its own too:
// node build/bench/rate.js (BENCH_RATE_WINDOWS=6000 for the shrunk rows only;
// BENCH_RATE_MODELS=sliding, BENCH_RATE_KINDS="alone,two workers", BENCH_RATE_CALLS=9000).
import type { IDataObject } from 'n8n-workflow';

import { FULL_KEY, startEmulator, type InboundFlowEmulator } from '../emulator/server';
import * as pacing from '../nodes/shared/transport/pacing';
import * as helpers from '../test/helpers';

const { resetBudgets, settings } = pacing;
const { executeNode } = helpers;

type Kind = 'alone' | 'two executions' | 'two workers' | 'other app 1 req/2 s' | 'other app, whole limit';
const KINDS = (process.env.BENCH_RATE_KINDS?.split(',') as Kind[] | undefined) ?? [
	'alone',
	'two executions',
	'two workers',
	'other app 1 req/2 s',
	'other app, whole limit',
];

/**
 * A second copy of the node and its transport with its own pacing state, as a second
 * queue worker process would have: the stand-in for two workers (the compiled modules
 * loaded again, in this process; they share the key only through the server's answers).
 */
function secondWorker(): { execute: typeof executeNode; settings: typeof settings } {
	const saved = { ...require.cache };
	const ours = (id: string) => /[\\/](nodes|test|dist)[\\/]/.test(id) && !id.includes('node_modules');
	for (const id of Object.keys(require.cache)) if (ours(id)) delete require.cache[id];
	/* eslint-disable @typescript-eslint/no-require-imports */
	const h = require('../test/helpers') as typeof helpers;
	const p = require('../nodes/shared/transport/pacing') as typeof pacing;
	/* eslint-enable @typescript-eslint/no-require-imports */
	for (const id of Object.keys(require.cache)) if (ours(id)) delete require.cache[id];
	Object.assign(require.cache, saved);
	return { execute: h.executeNode, settings: p.settings };
}

const LIMIT = 60;
const WINDOWS = (process.env.BENCH_RATE_WINDOWS ?? '6000,60000').split(',').map(Number);
const MODELS = (process.env.BENCH_RATE_MODELS ?? 'fixed,sliding').split(',') as Array<'fixed' | 'sliding'>;
const CALLS = Number(process.env.BENCH_RATE_CALLS ?? 9000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Another app: GET /v1/me every `everyMs` on a fixed schedule; statuses with their send time. */
function otherApp(url: string, everyMs: number) {
	const log: Array<{ status: number; at: number }> = [];
	const started = Date.now();
	let n = 0;
	let stopped = false;
	const pending: Array<Promise<unknown>> = [];
	const tick = () => {
		if (stopped) return;
		const at = Date.now();
		pending.push(
			fetch(`${url}/v1/me`, { headers: { authorization: `Bearer ${FULL_KEY}` } })
				.then(async (r) => {
					await r.arrayBuffer();
					log.push({ status: r.status, at });
				})
				.catch(() => log.push({ status: -1, at })),
		);
		n++;
		setTimeout(tick, Math.max(0, started + n * everyMs - Date.now()));
	};
	tick();
	return {
		log,
		stop: async () => {
			stopped = true;
			await Promise.all(pending);
		},
	};
}

const returnAll = (calls: number, clients: number, since?: string) => ({
	resource: 'call',
	operation: 'getAll',
	returnAll: false,
	limit: Math.floor(calls / clients),
	simplify: false,
	...(since ? { filters: { createdAfter: since } } : {}),
});

async function scenario(
	emulator: InboundFlowEmulator,
	windowMs: number,
	model: 'fixed' | 'sliding',
	kind: Kind,
): Promise<IDataObject> {
	emulator.configure({ rateLimit: { limit: LIMIT, windowMs }, rateWindow: model, sendReset: false, retryAfter: 'seconds' });
	settings.rateWindowMs = windowMs;
	resetBudgets();
	const everyMs = windowMs / 30;
	const withOther = kind.startsWith('other app');
	const other = withOther ? otherApp(emulator.url, everyMs) : undefined;
	const worker = kind === 'two workers' ? secondWorker() : undefined;
	if (worker) Object.assign(worker.settings, settings);
	const calls = CALLS;
	const rateLimitUse = kind === 'other app, whole limit' ? { rateLimitUse: 'wholeLimit' } : {};
	// The other app runs a window first; otherwise start on a fresh window, as an idle key would.
	if (other) await sleep(windowMs);
	else await sleep(windowMs - (Date.now() % windowMs) + 50);
	emulator.clearLog();
	const started = Date.now();
	const clients = kind === 'two executions' || kind === 'two workers' ? 2 : 1;
	const runs = await Promise.allSettled(
		Array.from({ length: clients }, (_, i) =>
			(i === 1 && worker ? worker.execute : executeNode)(returnAll(calls, clients, i === 1 ? '2000-01-01T00:00:00.000Z' : undefined), {
				credentials: { apiKey: FULL_KEY, baseUrl: emulator.url, ...rateLimitUse },
			}),
		),
	);
	const seconds = (Date.now() - started) / 1000;
	await other?.stop();
	const log = emulator.requests.filter((r) => r.path === '/v1/calls');
	const ok = log.filter((r) => r.status === 200).length;
	const records = runs.reduce((n, r) => n + (r.status === 'fulfilled' ? r.value[0].length : 0), 0);
	const minimum = ((Math.ceil(ok / LIMIT) - 1) * windowMs) / 1000;
	const row: IDataObject = {
		window: `${windowMs / 1000} s ${model}`,
		run: kind,
		records,
		exact: records === Math.floor(calls / clients) * clients,
		requests: log.length,
		rateLimited429: log.filter((r) => r.status === 429).length,
		seconds: Number(seconds.toFixed(1)),
		minimumSeconds: minimum,
		shareOfCeiling: other ? 'n/a' : `${Math.min(100, (minimum / seconds) * 100).toFixed(1)} %`,
	};
	if (clients === 2) {
		const mine = (i: number) => log.filter((r) => (i === 1) === ('since' in r.query));
		const bothTo = Math.min(...[0, 1].map((i) => mine(i).at(-1)?.at ?? started));
		const okBoth = [0, 1].map((i) => mine(i).filter((r) => r.status === 200 && r.at <= bothTo).length);
		row.splitWhileBoth = okBoth.map((n) => `${Math.round((n / (okBoth[0] + okBoth[1])) * 100)} %`).join(' / ');
	}
	if (other) {
		const during = other.log.filter((r) => r.at >= started && r.at <= started + seconds * 1000);
		row.otherAppRequests = during.length;
		row.otherApp429 = during.filter((r) => r.status === 429).length;
		row.otherAppShare = `${((during.filter((r) => r.status === 200).length / ((seconds * 1000 * LIMIT) / windowMs)) * 100).toFixed(1)} %`;
		// In every whole window of the node's run (the server's own when fixed; one after
		// another from the node's first request when sliding): the node's part of what the
		// other app left; the least of them.
		const first = log[0]?.at ?? started;
		const last = log.at(-1)?.at ?? started;
		const okIn = (list: Array<{ status: number; at: number }>, from: number) =>
			list.filter((r) => r.status === 200 && r.at >= from && r.at < from + windowMs).length;
		const shares: number[] = [];
		for (let from = model === 'fixed' ? Math.ceil(first / windowMs) * windowMs : first; from + windowMs <= last; from += windowMs) {
			shares.push(okIn(log, from) / (LIMIT - okIn(other.log, from)));
		}
		row.shareOfWhatOtherLeft = shares.length ? `${(Math.min(...shares) * 100).toFixed(1)} % (least of ${shares.length} windows)` : 'n/a (run shorter than a window)';
	}
	return row;
}

export async function rateBench(say: (text: string) => void): Promise<IDataObject[]> {
	const emulator = await startEmulator({ seed: { calls: CALLS }, logRequests: true });
	const saved = { ...settings };
	const rows: IDataObject[] = [];
	try {
		for (const windowMs of WINDOWS) {
			for (const model of MODELS) {
				for (const kind of KINDS) {
					const row = await scenario(emulator, windowMs, model, kind);
					say(`  ${JSON.stringify(row)}`);
					rows.push(row);
				}
			}
		}
	} finally {
		Object.assign(settings, saved);
		await emulator.stop();
	}
	return rows;
}

if (require.main === module) {
	rateBench((text) => process.stdout.write(`${text}\n`))
		.then((rows) => {
			const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))];
			const line = (cells: unknown[]) => `| ${cells.map((c) => String(c ?? '')).join(' | ')} |`;
			process.stdout.write(`${[line(keys), line(keys.map(() => '---')), ...rows.map((r) => line(keys.map((k) => r[k])))].join('\n')}\n`);
		})
		.catch((error: unknown) => {
			process.stderr.write(`${String(error)}\n`);
			process.exit(1);
		});
}
