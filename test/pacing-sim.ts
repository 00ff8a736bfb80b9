// A virtual-time model of the rate-limited API and its clients, driving the pacing module
// exactly as the transport does (delayBefore → taking → answer → observe, and on a 429
// rateLimited's wait), so a run of minutes at the real 60-s window takes milliseconds and
// gives the same answer every time. The server keeps the emulator's rules (emulator/
// server.ts rateHeaders): a fixed window aligned to multiples of its length, or a sliding
// one; X-RateLimit-Limit and -Remaining on every answer and Retry-After in whole seconds,
// rounded up, on a 429. The real-HTTP tests (pacing.test.ts) and `npm run bench` measure
// the same targets against the emulator; this model lets the 60-s targets be tests.
import { rng } from '../emulator/data';
import type * as Pacing from '../nodes/shared/transport/pacing';

export type PacingModule = typeof Pacing;

export interface SimServer {
	limit: number;
	windowMs: number;
	model: 'fixed' | 'sliding';
	/** X-RateLimit-Reset (unix seconds, rounded up), as the emulator's `sendReset` switch. */
	sendReset?: boolean;
}

/** Virtual time starts here (a multiple of every window used): X-RateLimit-Reset reads as unix seconds. */
const EPOCH = 1_700_000_040_000;

/** One client: an execution of ours (paced by `pacing`, `requests` one after another) or another app (a fixed period, not paced). */
export type SimClient =
	| { kind: 'node'; pacing: PacingModule; key: string; requests: number; startAt: number; use?: Pacing.RateLimitUse }
	| { kind: 'app'; everyMs: number; startAt: number; stopAt: number };

export interface SimResult {
	/** Per client: [send time, status] of every request (times from the start of the run). */
	logs: Array<Array<{ at: number; status: number }>>;
	/** Per client: when its last request was answered (node clients). */
	doneAt: number[];
}

export interface SimOptions {
	seed?: number;
	/** Each way of a request takes between these (ms; seeded): 2–8 by default, as on loopback. */
	latencyMs?: [number, number];
	untilMs?: number;
	/** Node client `client`'s `nth` send (from 1) never reaches the server: a dropped connection, answered with no headers. */
	lost?: (client: number, nth: number) => boolean;
}

/** Runs the clients against one key until every node client is done (or `untilMs`). */
export function simulate(server: SimServer, clients: SimClient[], options: SimOptions = {}): SimResult {
	const rand = rng(options.seed ?? 1);
	const [low, high] = options.latencyMs ?? [2, 8];
	const untilMs = EPOCH + (options.untilMs ?? 30 * 60_000);
	const latency = () => low + rand() * (high - low);
	let now = EPOCH;
	let sequence = 0;
	const queue: Array<{ at: number; seq: number; run: () => void }> = [];
	const at = (time: number, run: () => void) => {
		queue.push({ at: time, seq: sequence++, run });
	};
	// The server.
	let fixed = { start: -1, count: 0 };
	let sliding: number[] = [];
	const handle = (): { status: number; headers: Record<string, string> } => {
		const { limit, windowMs } = server;
		let count: number;
		let limited: boolean;
		let resetMs: number;
		if (server.model === 'sliding') {
			sliding = sliding.filter((t) => t > now - windowMs);
			limited = sliding.length >= limit;
			if (!limited) sliding.push(now);
			count = sliding.length;
			resetMs = (sliding[0] ?? now) + windowMs;
		} else {
			const start = Math.floor(now / windowMs) * windowMs;
			if (fixed.start !== start) fixed = { start, count: 0 };
			fixed.count++;
			count = fixed.count;
			limited = count > limit;
			resetMs = start + windowMs;
		}
		const headers: Record<string, string> = {
			'x-ratelimit-limit': String(limit),
			'x-ratelimit-remaining': String(Math.max(0, limit - count)),
		};
		if (server.sendReset) headers['x-ratelimit-reset'] = String(Math.ceil(resetMs / 1000));
		if (!limited) return { status: 200, headers };
		headers['retry-after'] = String(Math.max(1, Math.ceil((resetMs - now) / 1000)));
		return { status: 429, headers };
	};
	const logs: SimResult['logs'] = clients.map(() => []);
	const doneAt = clients.map(() => NaN);
	const sends = clients.map(() => 0);
	/** A request: reaches the server after a latency, is answered after another (unless lost on the way). */
	const request = (i: number, then: (status: number, headers: Record<string, string>) => void) => {
		const sentAt = now;
		if (options.lost?.(i, ++sends[i])) {
			at(now + 2 * latency(), () => then(0, {}));
			return;
		}
		at(now + latency(), () => {
			const answer = handle();
			logs[i].push({ at: sentAt - EPOCH, status: answer.status });
			at(now + latency(), () => then(answer.status, answer.headers));
		});
	};
	clients.forEach((client, i) => {
		if (client.kind === 'app') {
			const tick = () => {
				if (now >= EPOCH + client.stopAt) return;
				request(i, () => undefined);
				at(now + client.everyMs, tick);
			};
			at(EPOCH + client.startAt, tick);
			return;
		}
		const { pacing, key } = client;
		let left = client.requests;
		let retries = 0;
		const next = () => {
			if (left === 0) {
				doneAt[i] = now - EPOCH;
				return;
			}
			const d = pacing.delayBefore(key, now, client.use ?? 'leaveRoom');
			if (d > 0) {
				at(now + Math.min(d, pacing.settings.maxRetryAfterMs), next);
				return;
			}
			const slot = pacing.taking(key, now);
			request(i, (status, headers) => {
				pacing.observe(key, slot, headers, status, now);
				// A dropped connection: the transport tries the GET again after a backoff.
				if (status === 0) {
					at(now + 500, next);
					return;
				}
				if (status === 429) {
					const verdict = pacing.rateLimited(key, headers, retries, now);
					if ('tooLong' in verdict || retries >= pacing.settings.maxRateLimitRetries) throw new Error(`client ${i}: gave up`);
					retries++;
					at(now + Math.min(verdict.wait, pacing.settings.maxRetryAfterMs), next);
					return;
				}
				retries = 0;
				left--;
				next();
			});
		};
		at(EPOCH + client.startAt, next);
	});
	while (queue.length > 0) {
		let best = 0;
		for (let j = 1; j < queue.length; j++) {
			if (queue[j].at < queue[best].at || (queue[j].at === queue[best].at && queue[j].seq < queue[best].seq)) best = j;
		}
		const event = queue.splice(best, 1)[0];
		now = event.at;
		if (now > untilMs) break;
		event.run();
	}
	return { logs, doneAt };
}

/** Share of the ceiling: the least time `ok` accepted requests need (whole windows after the first), against the time taken. */
export function shareOfCeiling(ok: number, limit: number, windowMs: number, seconds: number): number {
	const minimum = ((Math.ceil(ok / limit) - 1) * windowMs) / 1000;
	return Math.min(1, minimum / seconds);
}
