// Rate limit shared with other clients of the key (issue 24): another app on the key keeps
// its share, the credential's Rate Limit Use lets the node take the whole key, and two
// n8n processes of ours (queue workers) on one key share it. Real HTTP to the emulator,
// the documented headers only (X-RateLimit-Limit/-Remaining, Retry-After on a 429), 60
// requests per window shrunk to 8 s (long enough that the event loop's jitter under load is small beside the other app's spacing); the node is told the shrunk window as the documented one.
import type { IDataObject } from 'n8n-workflow';

import type { InboundFlowEmulator } from '../emulator/server';
import { DEFAULT_SETTINGS, rateLimitUseOf, settings } from '../nodes/shared/transport/pacing';
import { executeNode, fastTimings, json, restoreTimings, smallerShareWhileBoth, withEmulator, type Credentials } from './helpers';

const WINDOW = { limit: 60, windowMs: 8000 };
const models = ['fixed', 'sliding'] as const;
const items = (n: number) => Array.from({ length: n }, () => ({}));
const account = { resource: 'account', operation: 'get' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let emulator: InboundFlowEmulator;
let credentials: Credentials;

beforeAll(async () => {
	({ emulator, credentials } = await withEmulator({ seed: { calls: 20 } }));
});
afterAll(async () => {
	await emulator.stop();
	restoreTimings();
});
beforeEach(() => {
	emulator.reset();
	fastTimings();
});

function setup(rateWindow: (typeof models)[number]): void {
	emulator.configure({ rateLimit: WINDOW, rateWindow, sendReset: false, retryAfter: 'seconds' });
	settings.rateWindowMs = WINDOW.windowMs;
}

/**
 * Another app on the key (a CRM sync, a dashboard): GET /v1/calls?limit=1 at 1 request
 * per 2 s scaled to the window (30 per window, half the limit), on a fixed schedule.
 */
function otherApp(everyMs = WINDOW.windowMs / 30) {
	const log: Array<{ status: number; at: number }> = [];
	const pending: Array<Promise<unknown>> = [];
	let timer: NodeJS.Timeout | undefined;
	const tick = () => {
		const at = Date.now();
		pending.push(
			fetch(`${emulator.url}/v1/calls?limit=1`, { headers: { authorization: `Bearer ${credentials.apiKey}` } }).then(
				async (r) => {
					await r.arrayBuffer();
					log.push({ status: r.status, at });
				},
			),
		);
		// A steady client: the next request a period after this one, never a burst to catch
		// up after the event loop (shared with the node under test) was late.
		timer = setTimeout(tick, everyMs);
	};
	tick();
	return {
		log,
		stop: async () => {
			clearTimeout(timer);
			await Promise.all(pending);
		},
	};
}

/**
 * The node's `count` requests (/v1/me) beside the other app, which runs one window first
 * (so the node starts at any moment of a fixed window).
 */
async function beside(creds: Credentials, model: (typeof models)[number], count = 60) {
	const other = otherApp();
	await sleep(WINDOW.windowMs);
	const started = Date.now();
	const out = await executeNode(account, { credentials: creds, items: items(count) });
	const ended = Date.now();
	await other.stop();
	const node = emulator.requests.filter((r) => r.path === '/v1/me' && r.at >= started);
	const first = node[0].at;
	const last = node[node.length - 1].at;
	const during = other.log.filter((r) => r.at >= started && r.at <= ended);
	const ok = (list: Array<{ status: number; at: number }>, from: number, to: number) =>
		list.filter((r) => r.status === 200 && r.at >= from && r.at < to).length;
	// The server's windows the node ran through from start to end (fixed: the server's own;
	// sliding: one window after another from the node's first request), and in each the
	// node's part of what the other app left.
	const windows: Array<[number, number]> = [];
	const step = WINDOW.windowMs;
	for (let from = model === 'fixed' ? Math.ceil(first / step) * step : first; from + step <= last; from += step) windows.push([from, from + step]);
	const shares = windows.map(([from, to]) => ok(node, from, to) / (WINDOW.limit - ok(other.log, from, to)));
	return {
		records: json(out).length,
		node429: node.filter((r) => r.status === 429).length,
		other429: during.filter((r) => r.status === 429).length,
		otherRequests: during.length,
		/** The node's successful requests in its first window. */
		nodeFirstWindow: ok(node, first, first + step),
		/** Whole windows the node ran through, and its least share of what the other app left in one. */
		windows: windows.length,
		worstShareOfLeft: Math.min(...shares),
	};
}

describe('another app on the key keeps its share (60 requests per 8-s window, the other app at 30 per window)', () => {
	// Real HTTP with real timers on a shared 2-core machine: while a cold `npm test` installs
	// n8n beside the unit suites, the app's requests can reach the server bunched (a cold run
	// saw the app meet 3 × 429 on a sliding window, where the same code meets none when the
	// machine is not starved). Such a run is tried again, at most twice, its failure logged.
	// The targets themselves are checked without timers by pacing-model.test.ts; the pacing
	// before issue 24 fails the fixed-window case here on every try (28–29 × 429 on each of 3).
	jest.retryTimes(2, { logErrorsBeforeRetry: true });

	it('reads a credential saved before the setting as "leave room"; only "wholeLimit" takes the whole key', () => {
		expect(rateLimitUseOf(undefined)).toBe('leaveRoom');
		expect(rateLimitUseOf('')).toBe('leaveRoom');
		expect(rateLimitUseOf('leaveRoom')).toBe('leaveRoom');
		expect(rateLimitUseOf('WHOLELIMIT')).toBe('leaveRoom');
		expect(rateLimitUseOf('wholeLimit')).toBe('wholeLimit');
	});

	// The other app runs a window first, so the node starts at any moment of a fixed window:
	// its first look shows only what the app took since the window began.
	it.each(models)(
		'default setting (%s window, credential without the field): the other app meets at most one 429, the node takes ≥ 80 % of what it leaves',
		async (model) => {
			setup(model);
			// 100 requests at the 29 a window the app leaves room for: about 3.5 windows.
			const run = await beside(credentials, model, 100);
			expect(run.records).toBe(100);
			// The app really ran beside the node (30 per window; fewer under load).
			expect(run.otherRequests).toBeGreaterThanOrEqual(60);
			expect(run.other429).toBeLessThanOrEqual(1);
			expect(run.windows).toBeGreaterThanOrEqual(2);
			// The node keeps room for the most the app held in the last window; under load the
			// app's timer falls behind and leaves more than that (a cold CI run: 29 of 34). The
			// 95 % target is the model's and the bench's (pacing-model.test.ts, bench/rate.ts).
			expect(run.worstShareOfLeft).toBeGreaterThanOrEqual(0.8);
			expect(run.node429).toBeLessThanOrEqual(1);
		},
		60_000,
	);

	it('"Use the Whole Limit": the node takes more than the room the default leaves', async () => {
		setup('sliding');
		const run = await beside({ ...credentials, rateLimitUse: 'wholeLimit' }, 'sliding');
		expect(run.records).toBe(60);
		// Leaving room, the node holds at most 60 - 30 - 1 = 29 in a window; with the whole key,
		// every free place (the 30 the other app leaves, more when it meets a 429).
		expect(run.nodeFirstWindow).toBeGreaterThanOrEqual(30);
	}, 60_000);
});

describe('two n8n processes of ours on one key (queue workers: each its own pacing state)', () => {
	/** A second copy of the node and its transport, as another worker process would load. */
	function worker(): { execute: typeof executeNode; settings: typeof settings } {
		let loaded: { execute: typeof executeNode; settings: typeof settings } | undefined;
		jest.isolateModules(() => {
			/* eslint-disable @typescript-eslint/no-require-imports */
			const helpers = require('./helpers') as typeof import('./helpers');
			const pacing = require('../nodes/shared/transport/pacing') as typeof import('../nodes/shared/transport/pacing');
			/* eslint-enable @typescript-eslint/no-require-imports */
			loaded = { execute: helpers.executeNode, settings: pacing.settings };
		});
		if (!loaded) throw new Error('worker not loaded');
		return loaded;
	}

	it.each(models)(
		'(%s window): ≤ 2 × 429 in total, neither below 40 % while both run, records exact',
		async (model) => {
			setup(model);
			const workers = [worker(), worker()];
			for (const w of workers) Object.assign(w.settings, settings, { rateWindowMs: WINDOW.windowMs });
			expect(workers[0].settings).not.toBe(workers[1].settings);
			await sleep(WINDOW.windowMs - (Date.now() % WINDOW.windowMs) + 20);
			// Worker A reads /v1/me, worker B /v1/calls (one record per page): the log tells them apart.
			const params: IDataObject[] = [account, { resource: 'call', operation: 'getAll', returnAll: false, limit: 1, simplify: false }];
			const runs = await Promise.all(
				workers.map((w, i) => w.execute(params[i], { credentials, items: items(60) })),
			);
			expect(runs.map((out) => json(out).length)).toEqual([60, 60]);
			const log = emulator.requests;
			expect(log.filter((r) => r.status === 429).length).toBeLessThanOrEqual(2);
			expect(smallerShareWhileBoth(log)).toBeGreaterThanOrEqual(0.4);
		},
		60_000,
	);
});

// A request lost on the way (a refused or reset connection: it never reached the API, so
// no answer and no headers) is not one the server forgot. Before, the node took it for one:
// on a sliding window the next answers then looked like a fixed window beginning, and the
// node dropped its own requests of the window from its model and counted them as another
// client's (the model, 300 pages at the real minute: 541 s instead of 300 s).
describe('a request lost before the API counted it', () => {
	it.each(models)(
		'(%s window): 180 requests, the 30th lost on the way: no 429, records exact, no slower than the window allows',
		async (model) => {
			setup(model);
			emulator.inject({ kind: 'drop', path: '/v1/me', skip: 29, uncounted: true });
			const started = Date.now();
			const out = await executeNode(account, { credentials, items: items(180) });
			const seconds = (Date.now() - started) / 1000;
			expect(json(out).length).toBe(180);
			const log = emulator.requests.filter((r) => r.path === '/v1/me');
			expect(log.filter((r) => r.status === -1).length).toBe(1);
			expect(log.filter((r) => r.status === 429).length).toBe(0);
			// 59 a window (one place kept open): 3 windows and a few requests, 24 s; the lost
			// request taken for one the server forgot cost a whole window more (32 s, sliding).
			expect(seconds).toBeLessThan(3 * WINDOW.windowMs / 1000 + 3);
		},
		90_000,
	);
});

// A server whose window is shorter than the documented one (the node told 20 s, the server
// 20 requests per 2-s fixed window). Keeping one place open, the node never meets the 429
// that would say the length; alone, the server twice forgetting its requests sooner than
// the told window bounds it (pacing.ts learnUpperBound). Paced by the told window, as
// before, 300 requests took about 92 s (the model; 55 s with the bound; the least is 28 s).
describe('a window shorter than documented (the node told 20 s, the server 20 per 2-s window)', () => {
	it('300 requests in under 75 s, no 429, records exact', async () => {
		emulator.configure({ rateLimit: { limit: 20, windowMs: 2000 }, rateWindow: 'fixed', sendReset: false, retryAfter: 'seconds' });
		settings.rateWindowMs = 20_000;
		const started = Date.now();
		const out = await executeNode(account, { credentials, items: items(300) });
		const seconds = (Date.now() - started) / 1000;
		expect(json(out).length).toBe(300);
		expect(emulator.requests.filter((r) => r.status === 429).length).toBe(0);
		expect(seconds).toBeLessThan(75);
	}, 150_000);
});

afterAll(() => {
	settings.rateWindowMs = DEFAULT_SETTINGS.rateWindowMs;
});
