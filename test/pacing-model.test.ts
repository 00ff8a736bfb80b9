// Issue 24's targets at the real 60-s window, in virtual time (test/pacing-sim.ts): the
// pacing module driven as the transport drives it, against a server keeping the
// emulator's rules (documented headers: X-RateLimit-Limit/-Remaining, Retry-After in whole
// seconds on a 429; X-RateLimit-Reset switched on and off), fixed and sliding windows, three
// seeds of 2–8 ms latencies (and one far slower network). Each
// run of minutes takes milliseconds and gives the same answer every time. The same
// targets are measured over real HTTP by pacing.test.ts and transport.test.ts (shrunk
// windows) and by `npm run bench` (rate table, both windows).
import type { PacingModule, SimClient, SimResult } from './pacing-sim';
import { shareOfCeiling, simulate } from './pacing-sim';

const W = 60_000;
const L = 60;
const models = ['fixed', 'sliding'] as const;
const seeds = [1, 2, 3];

/** A fresh copy of the pacing module: one n8n process (a queue worker) with its own state. */
function processOfOurs(): PacingModule {
	let loaded: PacingModule | undefined;
	jest.isolateModules(() => {
		// eslint-disable-next-line @typescript-eslint/no-require-imports
		loaded = require('../nodes/shared/transport/pacing') as PacingModule;
	});
	if (!loaded) throw new Error('pacing not loaded');
	loaded.settings.rateWindowMs = W;
	return loaded;
}

const node = (pacing: PacingModule, requests: number, startAt = 50): SimClient => ({ kind: 'node', pacing, key: 'k', requests, startAt });
/** Another app on the key at 1 request / 2 s (30 per window), on a fixed schedule. */
const app = (startAt: number, stopAt: number): SimClient => ({ kind: 'app', everyMs: W / 30, startAt, stopAt });

const ok = (log: SimResult['logs'][number], from = -Infinity, to = Infinity) =>
	log.filter((r) => r.status === 200 && r.at >= from && r.at < to).length;
const rejected = (log: SimResult['logs'][number], from = -Infinity, to = Infinity) =>
	log.filter((r) => r.status === 429 && r.at >= from && r.at <= to).length;

/**
 * Whole windows of a run, from `first` to `end`: the server's own when fixed; one after
 * another from the first request when sliding (any span of a window is one).
 */
function wholeWindows(model: (typeof models)[number], first: number, end: number): number[] {
	const starts: number[] = [];
	for (let from = model === 'fixed' ? Math.ceil(first / W) * W : first; from + W <= end; from += W) starts.push(from);
	return starts;
}

/**
 * Our clients' share of the ceiling (the least time their accepted requests need, whole
 * windows after the first, against the time taken), the least they took of any whole window
 * of the run, their 429s, and the smaller one's part while both ran.
 */
function ours(clients: SimClient[], result: SimResult, model: (typeof models)[number]) {
	const idx = clients.flatMap((c, i) => (c.kind === 'node' ? [i] : []));
	const first = Math.min(...idx.map((i) => clients[i].startAt));
	const end = Math.max(...idx.map((i) => result.doneAt[i]));
	const accepted = idx.reduce((n, i) => n + ok(result.logs[i]), 0);
	const from = Math.max(...idx.map((i) => clients[i].startAt));
	const to = Math.min(...idx.map((i) => result.doneAt[i]));
	const whileBoth = idx.map((i) => ok(result.logs[i], from, to));
	const firstSent = Math.min(...idx.map((i) => result.logs[i][0].at));
	const perWindow = wholeWindows(model, firstSent, end).map((from) => idx.reduce((n, i) => n + ok(result.logs[i], from, from + W), 0) / L);
	return {
		share: shareOfCeiling(accepted, L, W, (end - first) / 1000),
		leastWindow: Math.min(...perWindow),
		windows: perWindow.length,
		rejected: idx.reduce((n, i) => n + rejected(result.logs[i]), 0),
		smallerPart: idx.length < 2 ? 1 : Math.min(...whileBoth) / whileBoth.reduce((a, b) => a + b, 0),
		end,
	};
}

describe('rate limit model, alone at the real 60-s window (target 1: ≥ 98 % of the ceiling, ≤ 1 × 429)', () => {
	it.each(models.flatMap((m) => seeds.map((s) => [m, s] as const)))('%s window, seed %d: Return All of 90 pages, done within 2 % of the least time', (model, seed) => {
		const clients = [node(processOfOurs(), 90)];
		const run = ours(clients, simulate({ limit: L, windowMs: W, model }, clients, { seed }), model);
		expect(run.share).toBeGreaterThanOrEqual(0.98);
		expect(run.rejected).toBeLessThanOrEqual(1);
	});

	// The one request it keeps open for another client is 1 of 60: 98.3 % of every window.
	it.each(models.flatMap((m) => [false, true].map((reset) => [m, reset] as const)))(
		'%s window, X-RateLimit-Reset sent: %s: Return All of 300 pages takes ≥ 98 % of every whole window',
		(model, sendReset) => {
			const clients = [node(processOfOurs(), 300)];
			const run = ours(clients, simulate({ limit: L, windowMs: W, model, sendReset }, clients, { seed: 1 }), model);
			expect(run.windows).toBeGreaterThanOrEqual(3);
			expect(run.leastWindow).toBeGreaterThanOrEqual(0.98);
			expect(run.rejected).toBeLessThanOrEqual(1);
		},
	);
});

describe('rate limit model, beside another app (target 2: an app at 1 request / 2 s meets ≤ 1 × 429, the node takes ≥ 95 % of what it leaves)', () => {
	/** The node's least part, over the whole windows of its run after the first, of what the app left; the app's 429s and the node's. */
	function beside(model: (typeof models)[number], startAt: number, everyMs: number, options: { seed?: number; sendReset?: boolean; latencyMs?: [number, number] } = {}) {
		const clients = [node(processOfOurs(), 200, startAt), { ...app(0, 20 * W), everyMs }];
		const result = simulate({ limit: L, windowMs: W, model, sendReset: options.sendReset }, clients, options);
		const end = result.doneAt[0];
		// After its first window (while others are new it holds half the limit).
		const shares = wholeWindows(model, result.logs[0][0].at + W, end).map(
			(from) => ok(result.logs[0], from, from + W) / (L - ok(result.logs[1], from, from + W)),
		);
		return { app429: rejected(result.logs[1], startAt, end), node429: rejected(result.logs[0]), windows: shares.length, least: Math.min(...shares) };
	}

	// The app runs first; the node starts on a fresh window, or at any moment of one.
	const starts = [W + 50, 1.3 * W, 1.5 * W, 1.9 * W];
	it.each(models.flatMap((m) => starts.flatMap((at) => seeds.map((s) => [m, at, s] as const))))(
		'%s window, app at 30 a minute, the node starting at %d ms, seed %d',
		(model, startAt, seed) => {
			const run = beside(model, startAt, W / 30, { seed });
			expect(run.app429).toBeLessThanOrEqual(1);
			expect(run.node429).toBeLessThanOrEqual(1);
			expect(run.windows).toBeGreaterThanOrEqual(2);
			expect(run.least).toBeGreaterThanOrEqual(0.95);
		},
	);

	// Lighter apps leave more, and the node takes it (an estimate pinned at half the limit
	// would take 29 of their 50 or 40). Against a fixed window the node reads their rate
	// from a count since the window began, which overstates it by up to 2 requests a window
	// (a request just after the start): 85 % there, 95 % against a sliding window.
	it.each(models.flatMap((m) => [W / 10, W / 20].flatMap((every) => [W + 50, 1.5 * W].map((at) => [m, every, at] as const))))(
		'%s window, app every %d ms, the node starting at %d ms',
		(model, everyMs, startAt) => {
			const run = beside(model, startAt, everyMs);
			expect(run.app429).toBeLessThanOrEqual(1);
			expect(run.windows).toBeGreaterThanOrEqual(1);
			expect(run.least).toBeGreaterThanOrEqual(model === 'fixed' ? 0.85 : 0.95);
		},
	);

	it.each(models)('%s window, X-RateLimit-Reset sent: the same', (model) => {
		const run = beside(model, 1.5 * W, W / 30, { sendReset: true });
		expect(run.app429).toBeLessThanOrEqual(1);
		expect(run.least).toBeGreaterThanOrEqual(0.95);
	});

	it.each(models)('%s window, a slow network (each way 50–300 ms): the app still meets ≤ 1 × 429', (model) => {
		const run = beside(model, 1.5 * W, W / 30, { latencyMs: [50, 300] });
		expect(run.app429).toBeLessThanOrEqual(1);
		expect(run.node429).toBeLessThanOrEqual(1);
	});

	it.each(models)('%s window: an app that starts while a Return All holds the window gets in within a window, then meets no 429', (model) => {
		const clients = [node(processOfOurs(), 400), app(1.5 * W, 4 * W)];
		const result = simulate({ limit: L, windowMs: W, model }, clients, { seed: 1 });
		// Its first request takes the one place the node keeps open; the node, seeing it, makes
		// room once its own requests of that window leave (the app's requests until then: 30).
		expect(ok(result.logs[1], 1.5 * W, 1.5 * W + 10)).toBe(1);
		expect(rejected(result.logs[1], 1.5 * W, 2.6 * W)).toBeLessThanOrEqual(15);
		expect(rejected(result.logs[1], 2.6 * W, 4 * W)).toBe(0);
	});
});

describe('rate limit model, two runs of ours on one key (target 3: ≥ 98 % combined, ≤ 2 × 429, neither below 40 % while both run)', () => {
	const shapes = [
		['two executions in one process, 45 pages each', () => { const p = processOfOurs(); return [node(p, 45), node(p, 45)]; }],
		['two queue workers, 45 pages each', () => [node(processOfOurs(), 45), node(processOfOurs(), 45)]],
		['two queue workers, 100 pages each', () => [node(processOfOurs(), 100), node(processOfOurs(), 100)]],
	] as const;
	it.each(models.flatMap((m) => shapes.flatMap(([name, make]) => seeds.map((s) => [m, name, s, make] as const))))(
		'%s window, %s, seed %d',
		(model, _name, seed, make) => {
			const clients = make();
			const run = ours(clients, simulate({ limit: L, windowMs: W, model }, clients, { seed }), model);
			expect(run.share).toBeGreaterThanOrEqual(0.98);
			expect(run.rejected).toBeLessThanOrEqual(2);
			expect(run.smallerPart).toBeGreaterThanOrEqual(0.4);
		},
	);

	// Long runs: each keeps one place open for the other (it cannot tell a worker of ours
	// from another app, which needs it): 58 of every 60, 96.7 % (target 98 %: missed).
	it.each(models.flatMap((m) => [false, true].map((reset) => [m, reset] as const)))(
		'%s window, X-RateLimit-Reset sent: %s: two queue workers, 300 pages each, take 58 of every whole window of 60',
		(model, sendReset) => {
			const clients = [node(processOfOurs(), 300), node(processOfOurs(), 300)];
			const run = ours(clients, simulate({ limit: L, windowMs: W, model, sendReset }, clients, { seed: 1 }), model);
			expect(run.windows).toBeGreaterThanOrEqual(8);
			expect(run.leastWindow).toBeGreaterThanOrEqual(58 / 60);
			expect(run.rejected).toBeLessThanOrEqual(2);
			expect(run.smallerPart).toBeGreaterThanOrEqual(0.4);
		},
	);
});

// A request lost on the way (it never reached the server: no answer, no headers) is not
// one the server forgot. Before, the node took it for one: at the real minute, one lost
// request turned a 300-page Return All on a sliding window into 541 s (and 2 lost, 601 s).
describe('rate limit model, requests lost before the server counted them', () => {
	const cases = [[30], [10, 70], [56, 58], [61, 62]];
	it.each(models.flatMap((m) => cases.map((lost) => [m, lost.join(' and ')] as const)))('%s window, request %s lost: 300 pages as fast as with none, no 429', (model, lost) => {
		const numbers = lost.split(' and ').map(Number);
		const run = (drop: number[]) =>
			simulate({ limit: L, windowMs: W, model }, [node(processOfOurs(), 300)], { seed: 1, lost: (_client, nth) => drop.includes(nth) });
		const clean = run([]);
		const result = run(numbers);
		expect(ok(result.logs[0])).toBe(300);
		expect(rejected(result.logs[0])).toBe(0);
		expect(result.doneAt[0]).toBeLessThanOrEqual(clean.doneAt[0] + 2000);
	});
});

// A server whose window is shorter than the documented minute (the node paces by 60 s until
// the server's answers show otherwise). A node that keeps one place open never meets the 429
// whose Retry-After would say the length; twice forgetting the node's requests sooner than a
// minute allows bounds it (learnUpperBound). It is learned once the node looks at the key
// after a first whole minute, so long runs gain: 1,800 pages against a 6-s window took 433 s
// before (40 % of the ceiling).
describe('rate limit model, a window shorter than documented (the node told 60 s)', () => {
	const least = { fixed: 0.6, sliding: 0.48 } as const;
	it.each(models.flatMap((m) => seeds.map((s) => [m, s] as const)))('%s window of 6 s, seed %d: Return All of 1,800 pages alone, no 429', (model, seed) => {
		const result = simulate({ limit: L, windowMs: 6000, model }, [node(processOfOurs(), 1800)], { seed });
		const seconds = (result.doneAt[0] - 50) / 1000;
		expect(ok(result.logs[0])).toBe(1800);
		expect(rejected(result.logs[0])).toBe(0);
		expect(shareOfCeiling(1800, L, 6000, seconds)).toBeGreaterThanOrEqual(least[model]);
	});
});
