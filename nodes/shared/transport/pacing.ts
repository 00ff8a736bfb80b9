// Client-side pacing by InboundFlow's rate-limit headers, shared by every request made
// with the same key in this n8n process, and the waits of the retry policy.
//
// The node keeps, per key, a model of the server's window: its own requests (exact)
// and the other clients' (noticed when X-RateLimit-Remaining falls faster than its own
// requests explain). A request may take a slot for at most one window length; that
// holds for a fixed window and for a sliding one alike, so pacing by it reaches the
// ceiling either way. The window length is learned from the server (a 429's
// Retry-After against the oldest request the window still holds); until it is known,
// a spent key is asked (the next request goes, and its 429 says how long). A node that
// keeps a place open (below) never meets that 429; alone, a server that twice forgets its
// requests sooner than the documented window allows gives an upper bound on the length
// (learnUpperBound). Every wait the server asks for is bounded: a longer one fails that
// execution and is not kept.
//
// Other clients on the key (another integration of the business, or another n8n process
// of ours) keep room: unless the key's credential says to use the whole limit,
// - alone, the node keeps one request of the window open (limits of 20 and more), so a
//   client that starts while a long run holds the key gets its first request through and
//   is seen;
// - once others are seen, the node holds at most the limit less the most they held in the
//   last window and one more request, and never less than half the limit (see reserveOf);
//   for the first window after others appear it holds half, since a first look may show
//   only part of their use;
// - while others are new, and on a fixed window, the last few requests the window allows
//   go one by one across it, so the node also looks at the key later in the window;
// - a fixed window is recognised when the server forgets requests of ours a sliding window
//   would still hold; from then on the others' count since the window began is projected
//   over the whole window.
import { header } from '../utils';

/**
 * How much of the key's limit the node may take: `leaveRoom` (default) holds back what
 * other clients of the key were seen to use in the last window, plus one request;
 * `wholeLimit` takes every request the window allows.
 */
export type RateLimitUse = 'leaveRoom' | 'wholeLimit';
export const DEFAULT_RATE_LIMIT_USE: RateLimitUse = 'leaveRoom';

/** The credential's value, read leniently: anything but `wholeLimit` (a missing field too) leaves room. */
export function rateLimitUseOf(value: unknown): RateLimitUse {
	return value === 'wholeLimit' ? 'wholeLimit' : DEFAULT_RATE_LIMIT_USE;
}

export interface TransportSettings {
	/** Retries of a GET after 502/503/504, a dropped connection or a malformed body. */
	maxRetries: number;
	/** Retries after a 429. */
	maxRateLimitRetries: number;
	/** First backoff step; doubles on each retry, with jitter. */
	baseDelayMs: number;
	maxDelayMs: number;
	/**
	 * The longest single wait: a Retry-After or X-RateLimit-Reset asking for longer fails
	 * that execution at once (and is not learned); no wait of the node is ever longer.
	 */
	maxRetryAfterMs: number;
	timeoutMs: number;
	/**
	 * The window the documentation gives ("60 requests per minute"): the model's slots age
	 * by it until the server's answers teach the real length (waits never rest on it: a
	 * spent key is asked instead). Tests and benchmarks shrink it with the emulator's window.
	 */
	rateWindowMs: number;
}

export const DEFAULT_SETTINGS: TransportSettings = {
	maxRetries: 4,
	maxRateLimitRetries: 6,
	baseDelayMs: 500,
	maxDelayMs: 20_000,
	maxRetryAfterMs: 120_000,
	timeoutMs: 30_000,
	rateWindowMs: 60_000,
};

/** Mutable so the test suite and benchmarks can shorten the waits. */
export const settings: TransportSettings = { ...DEFAULT_SETTINGS };

/** Requests in the modelled window: ours (`ours`), or other clients' noticed at `at`. */
interface Slot {
	/** When the slot was taken: our request's answer (its send while in flight), or when others' were noticed. */
	at: number;
	count: number;
	ours: boolean;
	inFlight: boolean;
	/** Ours: its entry in `mine`. */
	sent?: Mine;
}

/** One of our requests of the last window. */
interface Mine {
	/** Its answer's time (its send's while in flight). */
	at: number;
	sentAt: number;
	answered: boolean;
	/** Its answer carried the rate-limit headers: the server counted it (one lost on the way was not). */
	counted?: boolean;
}

interface KeyState {
	/** X-RateLimit-Limit of the last answer (0: none seen yet). */
	limit: number;
	/** Our slots stay a grace period past their modelled end (see observe). */
	slots: Slot[];
	/** At least this long: learned from a Retry-After against the oldest slot held. */
	windowMs?: number;
	/**
	 * At most this long: learned when a request went through after the key was seen spent,
	 * or when the server forgot requests of ours sooner than documented (see learnUpperBound).
	 */
	windowUpperMs?: number;
	/** The key looked spent with no length known: the next answer tells (see observe). */
	probing?: boolean;
	/** A 429 of this key carried an accepted Retry-After (the server says how long). */
	retryAfterSeen?: boolean;
	/** After a 429 with an accepted Retry-After: nothing is sent before this. */
	blockedUntil?: number;
	/** An accepted X-RateLimit-Reset (epoch ms): the window in which the key was seen spent ends then. */
	resetAt?: number;
	/**
	 * Our own requests of the last window (a 429 dropped), by their answer's time (their
	 * send's while in flight): exact, never corrected by the server's answers, unlike `slots`.
	 */
	mine: Mine[];
	/**
	 * How many of the requests in the server's window were other clients' at each answer
	 * (X-RateLimit-Limit less Remaining, less ours of the last window), for one window.
	 */
	othersSeen: Array<{ at: number; count: number }>;
	/** The key's credential setting (the last one a request with the key carried). */
	use?: RateLimitUse;
	/** Other clients were first seen then, after a window with none: see reserveOf. */
	othersSince?: number;
	/** Our last send among the last few the window allows (see delayBefore). */
	lastStepAt?: number;
	/** The last answer that carried the rate-limit headers. */
	lastAnswerAt?: number;
	/**
	 * The key's window was seen to be fixed (the server forgot requests of ours a sliding
	 * window would still hold): the current one began then at the latest.
	 */
	fixedStart?: number;
	/** A spent key with no window length known is asked at this time (see probeTime). */
	probeAt?: number;
	/**
	 * The last time the server was seen to forget requests of ours (see observe): then
	 * (`at`), and a send time (`sent`) one of the requests it forgot was counted after.
	 */
	forgot?: { at: number; sent: number };
}

const states = new Map<string, KeyState>();

/** A short, non-reversible key for the budget map, so the API key is never stored in it. */
export function budgetKey(baseUrl: string, apiKey: string): string {
	let h = 0x811c9dc5;
	const text = `${baseUrl}\n${apiKey}`;
	for (let i = 0; i < text.length; i++) {
		h ^= text.charCodeAt(i);
		h = Math.imul(h, 0x01000193) >>> 0;
	}
	return h.toString(16);
}

export function resetBudgets(): void {
	states.clear();
}

function stateOf(key: string): KeyState {
	let state = states.get(key);
	if (!state) {
		state = { limit: 0, slots: [], mine: [], othersSeen: [] };
		states.set(key, state);
	}
	return state;
}

/** X-RateLimit-Reset as epoch ms: unix seconds, unix ms, or seconds from now. */
export function parseReset(value: string | undefined, now: number): number | undefined {
	if (value === undefined || value.length > 40) return undefined;
	const n = Number(value);
	if (!Number.isFinite(n) || n < 0) return undefined;
	if (n > 1e12) return n;
	if (n > 1e9) return n * 1000;
	return now + n * 1000;
}

/** Retry-After as a delay in ms: seconds, or an HTTP date; Infinity when no number holds it. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
	if (value === undefined || value.trim() === '' || value.length > 100) return undefined;
	const seconds = Number(value);
	if (!Number.isNaN(seconds)) return Math.max(0, seconds * 1000);
	const date = Date.parse(value);
	if (Number.isNaN(date)) return undefined;
	return Math.max(0, date - now);
}

/** A server-given wait the node accepts: finite and within the bound. */
function acceptable(ms: number | undefined): ms is number {
	return ms !== undefined && Number.isFinite(ms) && ms <= settings.maxRetryAfterMs;
}

/**
 * The window length the model uses: what the server's answers showed (the learned lower
 * bound, else the upper one), else the documented one; never beyond the bound.
 */
function windowOf(state: KeyState): number {
	const learned = state.windowMs ?? state.windowUpperMs;
	return Math.min(learned ?? settings.rateWindowMs, settings.maxRetryAfterMs);
}

/** Alone, the window proven shorter than documented, its length not yet said by a Retry-After. */
function shorter(state: KeyState): boolean {
	return state.windowMs === undefined && state.windowUpperMs !== undefined && state.windowUpperMs < settings.rateWindowMs && state.othersSeen.length === 0;
}

/** Whether the server's answers have said how long the window is. */
function known(state: KeyState): boolean {
	return state.windowMs !== undefined || state.windowUpperMs !== undefined;
}

const GRACE_MS = 1000;
const STEPS = 4;
/** From this limit up, a node alone keeps one request of the window open (at most 5 % of it). */
const SPARE_FROM_LIMIT = 20;

/** Slots still held at `now`: in flight, or taken less than a window ago. */
function live(state: KeyState, now: number): Slot[] {
	const windowMs = windowOf(state);
	return state.slots.filter((s) => s.inFlight || s.at + windowMs > now);
}

/** Forgets what has left the window by `now` (ours after a grace period, see observe). */
function expire(state: KeyState, now: number): void {
	const length = windowOf(state);
	if (state.fixedStart !== undefined && now >= state.fixedStart + length) {
		// A fixed window began again: what the last one held is gone (ours answered
		// before then; others' counts stay, the reserve rests on them).
		state.fixedStart += Math.floor((now - state.fixedStart) / length) * length;
		const start = state.fixedStart;
		state.slots = state.slots.filter((s) => s.inFlight || s.at >= start);
		state.mine = state.mine.filter((m) => !m.answered || m.at >= start);
	}
	// X-RateLimit-Reset says when the key opens again, not what leaves then (on a sliding
	// window only the oldest request): it sets a wait, never what the model holds.
	if (state.resetAt !== undefined && now >= state.resetAt) state.resetAt = undefined;
	const windowMs = windowOf(state);
	if (known(state)) state.slots = state.slots.filter((s) => s.inFlight || s.at + windowMs + (s.ours ? GRACE_MS : 0) > now);
	state.othersSeen = state.othersSeen.filter((s) => s.at + windowMs > now);
	state.mine = state.mine.filter((m) => m.at + windowMs > now);
}

const sum = (list: Array<{ count: number }>) => list.reduce((n, s) => n + s.count, 0);

/**
 * The requests the node leaves to other clients of the key: the most of the server's
 * window that was theirs at any answer in the last window, and one more; while they are
 * new (first seen less than a window ago), the most it ever leaves. At most what leaves
 * the node just under half the limit: a client taking more than half (another Return All
 * of ours in another process, which leaves room too) does not push the node below its
 * half, so two of them settle near half each. With none seen: one request, from a limit
 * of 20 up. With `wholeLimit`: none.
 */
function reserveOf(state: KeyState, now: number): number {
	if ((state.use ?? DEFAULT_RATE_LIMIT_USE) === 'wholeLimit') return 0;
	const windowMs = windowOf(state);
	const seen = Math.max(0, ...state.othersSeen.filter((s) => s.at + windowMs > now).map((s) => s.count));
	if (seen === 0) return state.limit >= SPARE_FROM_LIMIT ? 1 : 0;
	const floor = Math.max(1, Math.floor((state.limit - 1) / 2));
	const most = state.limit - floor;
	if (state.othersSince !== undefined && now - state.othersSince < windowMs) return most;
	return Math.min(seen + 1, most);
}

/** Other clients held `count` of the server's window at `now` (nothing when none). */
function noteOthers(state: KeyState, count: number, now: number): void {
	if (count <= 0) return;
	const windowMs = windowOf(state);
	if (!state.othersSeen.some((o) => o.at + windowMs > now)) state.othersSince = now;
	state.othersSeen.push({ at: now, count: state.fixedStart === undefined ? count : perWindow(state, count, now - state.fixedStart) });
}

/**
 * Against a fixed window, others' count `elapsed` ms after it began, projected over the
 * whole window; in its first half, as if half had passed (a request or two seen a moment
 * after the start says little of the rate, and overstates a light client's: the later looks
 * of the last window, which the node's last requests of each window give, count too).
 */
function perWindow(state: KeyState, count: number, elapsed: number): number {
	const windowMs = windowOf(state);
	return Math.min(state.limit, Math.ceil((count * windowMs) / Math.min(windowMs, Math.max(windowMs / 2, elapsed))));
}

/**
 * How long to wait before the next request with this key (0: send now). With room in
 * the window, none. Spent: until its oldest slot leaves, when the server has said how
 * long the window is (or when X-RateLimit-Reset says); if it has not, the request goes
 * and its answer tells (one at a time).
 */
export function delayBefore(key: string, now: number, use?: RateLimitUse): number {
	const state = states.get(key);
	if (use !== undefined && state) state.use = use;
	if (!state || state.limit <= 0) return 0;
	if (state.blockedUntil !== undefined && now < state.blockedUntil) return state.blockedUntil - now;
	expire(state, now);
	const held = live(state, now);
	const ours = held.filter((s) => s.ours);
	if (sum(held) < state.limit) {
		const reserve = reserveOf(state, now);
		if (reserve === 0) return 0;
		const windowMs = windowOf(state);
		// The last few requests of ours the window allows go one by one across it: each
		// answer shows the key at another moment (a fixed window beginning again, another
		// client's first request, the others' use growing) that a burst would not.
		const room = state.limit - reserve;
		const steps = Math.min(STEPS, Math.floor(room / 4));
		const stepping = state.fixedStart !== undefined || (state.othersSince !== undefined && now - state.othersSince < windowMs);
		if (stepping && steps > 0 && state.mine.length >= room - steps && state.mine.length < room) {
			const next = (state.lastStepAt ?? -Infinity) + windowMs / (steps + 1);
			if (now < next) return Math.max(1, Math.min(Math.ceil(next - now), settings.maxRetryAfterMs));
			state.lastStepAt = now;
			return 0;
		}
		if (state.mine.length + reserve < state.limit) return 0;
		// Room left only for the other clients: ours wait until one of ours leaves the
		// window, or the others' busiest moment does (and the reserve may shrink).
		const leaves = Math.min(...state.mine.map((m) => m.at), ...state.othersSeen.map((o) => o.at)) + windowMs - now + 25;
		return Math.max(1, Math.min(leaves, settings.maxRetryAfterMs));
	}
	if (state.resetAt !== undefined && state.resetAt > now) return Math.min(state.resetAt - now + 25, settings.maxRetryAfterMs);
	if (known(state)) return untilLeaves(state, held, now) ?? 50;
	// Other clients' requests are older than ours: a 429's Retry-After says when theirs
	// leave (and they take those places again), not ours. Ours leave one documented window
	// after they were taken.
	if (state.retryAfterSeen && ours.length > 0 && held.some((s) => !s.ours)) return untilLeaves(state, ours, now) ?? 50;
	// Spent, and the server has not said for how long: ask it, one request at a time.
	if (held.some((s) => s.inFlight)) return 50;
	const wait = probeTime(state, ours, now) - now;
	if (wait > 0) return wait;
	state.probeAt = undefined;
	state.probing = true;
	return 0;
}

/**
 * When to ask a spent key how long its window is. Retry-After comes in whole seconds,
 * rounded up: asked at a whole number of seconds (and a few ms) after our oldest answer,
 * the 429 names the very moment that request leaves a window of whole seconds, instead of
 * up to a second later. So the ask waits for that moment: less than a second, once.
 */
function probeTime(state: KeyState, ours: Slot[], now: number): number {
	if (state.probeAt !== undefined) return state.probeAt;
	const settled = ours.filter((s) => !s.inFlight);
	if (settled.length === 0) return now;
	const oldest = Math.min(...settled.map((s) => s.at));
	const offset = (((oldest + PROBE_OFFSET_MS - now) % 1000) + 1000) % 1000;
	state.probeAt = now + offset;
	return state.probeAt;
}

const PROBE_OFFSET_MS = 5;

/** When the oldest settled one of `slots` leaves the window. */
function untilLeaves(state: KeyState, slots: Slot[], now: number): number | undefined {
	const settled = slots.filter((s) => !s.inFlight);
	if (settled.length === 0) return undefined;
	const oldest = Math.min(...settled.map((s) => s.at));
	return Math.max(1, Math.min(oldest + windowOf(state) - now + 25, settings.maxRetryAfterMs));
}

/** A request with this key goes now: it holds a slot from now. Returns its handle for `observe`. */
export function taking(key: string, now: number): Slot {
	const sent: Mine = { at: now, sentAt: now, answered: false };
	const slot: Slot = { at: now, count: 1, ours: true, inFlight: true, sent };
	const state = stateOf(key);
	state.slots.push(slot);
	state.mine.push(sent);
	return slot;
}

/**
 * Records an answer: its slot is settled at the answer's time (a 429 holds none), and
 * X-RateLimit-Limit/Remaining (and an accepted X-RateLimit-Reset) correct the model:
 * more requests in the window than it holds are other clients' (after our own slots
 * just past their modelled end, which the server may still count); fewer means slots
 * left earlier than modelled: other clients' first (their times are only when the node
 * noticed them), then ours, oldest first.
 */
export function observe(key: string, slot: Slot | undefined, headers: Record<string, unknown>, status: number, now: number): void {
	const state = stateOf(key);
	const oldestBefore = Math.min(...state.slots.filter((s) => !s.inFlight).map((s) => s.at));
	// Ours the server may have counted when it answered (some time after this one was sent):
	// every one answered less than a window before this one's send, or still in flight.
	const sentAt = slot?.sent?.sentAt ?? now;
	const oursCounted = state.mine.filter((m) => m !== slot?.sent && m.at > sentAt - windowOf(state)).length;
	if (slot) {
		slot.inFlight = false;
		slot.at = now;
		// The server counted it between its send and now: it leaves one window after now at the latest.
		if (slot.sent) {
			slot.sent.at = now;
			slot.sent.answered = true;
		}
		if (status === 429) {
			state.slots = state.slots.filter((s) => s !== slot);
			state.mine = state.mine.filter((m) => m !== slot.sent);
		}
	}
	const answered = status >= 200 && status !== 429;
	// (Not while other clients use the key: one of theirs leaving may be what let it through.)
	if (state.probing && answered && Number.isFinite(oldestBefore) && state.othersSeen.length === 0) {
		// The key was spent and this one went through: the window is at most this long.
		const length = now - oldestBefore;
		if (length >= 1000 && acceptable(length)) state.windowUpperMs = Math.min(state.windowUpperMs ?? Infinity, length);
	}
	if (answered) state.probing = false;
	state.probeAt = undefined;
	const limit = Number(header(headers, 'x-ratelimit-limit'));
	const remaining = Number(header(headers, 'x-ratelimit-remaining'));
	if (!Number.isFinite(limit) || !Number.isFinite(remaining) || limit < 1 || limit > 1e6) return;
	if (slot?.sent) slot.sent.counted = true;
	state.limit = Math.floor(limit);
	// A 429: the window is full. What of it is not ours (of the last window) is other
	// clients' (0 when alone: the slot ours cannot yet take is not theirs).
	if (status === 429) {
		expire(state, now);
		noteOthers(state, state.limit - oursCounted, now);
		state.lastAnswerAt = now;
		return;
	}
	const reset = parseReset(header(headers, 'x-ratelimit-reset'), now);
	if (reset !== undefined && reset > now && acceptable(reset - now)) state.resetAt = reset;
	expire(state, now);
	const inWindow = Math.min(state.limit, Math.max(0, state.limit - Math.floor(remaining)));
	// Ours sent less than a window ago and answered before this one was sent: a sliding
	// window still held every one of them when it counted this one. Fewer in the server's
	// window: it is fixed and began since the last answer, forgetting ours answered by then.
	// (A length learned from Retry-After, whole seconds, is sure to a second; the
	// documented one is taken as exact.)
	const windowMs = windowOf(state);
	const sure = windowMs - (known(state) ? Math.min(windowMs / 2, Math.max(1000, windowMs / 10)) : 0);
	const young = state.mine.filter((m) => m.counted && m.at < sentAt && m.sentAt > now - sure);
	if (inWindow - 1 < young.length && state.lastAnswerAt !== undefined) {
		const before = state.lastAnswerAt;
		// A fixed window forgot every one answered by the last answer. Alone, with the window
		// proven shorter than documented, more held than that are ours still in a sliding
		// window shorter than modelled (not other clients'): the newest of them stay, among
		// those answered less than the bound ago (such a window holds no older ones).
		const after = new Set(state.mine.filter((m) => !m.answered || m.at > before || m === slot?.sent));
		const upper = state.windowUpperMs ?? 0;
		const excess = shorter(state) ? inWindow - after.size : 0;
		const older = state.mine.filter((m) => !after.has(m) && m.at > now - upper);
		const stay = new Set(excess > 0 ? older.sort((a, b) => b.at - a.at).slice(0, excess) : []);
		state.mine = state.mine.filter((m) => stay.has(m) || after.has(m));
		state.slots = state.slots.filter((s) => s.inFlight || s.at > before || s === slot || (s.sent !== undefined && stay.has(s.sent)));
		learnUpperBound(state, young, inWindow, now);
		// The first time: the others' counts seen in the window that just ended were counts
		// since its start (a window before now at the latest), not whole windows.
		if (state.fixedStart === undefined) {
			const start = now - windowMs;
			state.othersSeen = state.othersSeen.map((o) => ({ at: o.at, count: perWindow(state, o.count, o.at - start) }));
		}
		state.fixedStart = now;
	}
	state.lastAnswerAt = now;
	// Others' part of the window, against our own requests it may hold (this one among them).
	noteOthers(state, inWindow - oursCounted - 1, now);
	const held = live(state, now);
	const inFlight = sum(held.filter((s) => s.inFlight));
	const settled = held.filter((s) => !s.inFlight);
	const modelled = sum(settled);
	if (inWindow > modelled + inFlight) {
		let count = inWindow - modelled - inFlight;
		// Our own slots just past their modelled end first: the server may hold them a little longer.
		for (const s of state.slots.filter((o) => o.ours && !o.inFlight && o.at + windowMs <= now)) {
			if (count <= 0) break;
			s.at = now - windowMs + GRACE_MS;
			count -= s.count;
		}
		if (count > 0) state.slots.push({ at: now, count, ours: false, inFlight: false });
	} else if (inWindow < modelled) {
		let extra = modelled - inWindow;
		// Other clients' slots first (noticed late, their requests may be long gone), then ours.
		const order = (s: Slot) => (s.ours ? 1 : 0);
		for (const s of [...settled].sort((a, b) => order(a) - order(b) || a.at - b.at)) {
			if (extra <= 0) break;
			const take = Math.min(extra, s.count);
			s.count -= take;
			extra -= take;
		}
		state.slots = state.slots.filter((s) => s.count > 0);
	}
}

/**
 * The server forgot requests of ours (`young`: counted by it, answered before this one was
 * sent; the window held at most `inWindow` less this one of them). Forgetting goes oldest
 * first, so at least `gone` of them left, one of them sent at or after the `gone`-th
 * earliest send: kept as `forgot.sent`, whether the window is fixed (a new one began after
 * that request was counted) or sliding (a whole window had passed since). The second time,
 * with one forgotten that was sent after the first time: the window is shorter than the
 * time from the first `forgot.sent` to now (a fixed window began twice between them; a
 * sliding one passed whole). Alone only, and only a bound below the documented window is
 * kept. (A window shorter than documented is otherwise never learned by a node that keeps
 * one place open: it never meets a 429.)
 */
function learnUpperBound(state: KeyState, young: Mine[], inWindow: number, now: number): void {
	const gone = young.length - Math.max(0, inWindow - 1);
	const sent = young.map((m) => m.sentAt).sort((a, b) => a - b)[gone - 1];
	const before = state.forgot;
	if (before !== undefined && sent >= before.at && state.othersSeen.length === 0) {
		const length = now - before.sent;
		if (length >= 1000 && length < settings.rateWindowMs && acceptable(length)) state.windowUpperMs = Math.min(state.windowUpperMs ?? Infinity, length);
	}
	state.forgot = { at: now, sent };
}

/** Exponential backoff with jitter for retry number `attempt` (0-based). */
export function backoff(attempt: number): number {
	const ceiling = Math.min(settings.maxDelayMs, settings.baseDelayMs * 2 ** attempt);
	return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

export type RateLimitVerdict =
	| { wait: number }
	/** The server asks for longer than the node waits: fail this execution, keep nothing. */
	| { tooLong: string };

/**
 * After a 429: wait Retry-After, else X-RateLimit-Reset, else back off. An accepted
 * Retry-After holds every request with the key until then, and teaches the window's
 * length: the oldest request the window still holds leaves it then. A wait beyond the
 * bound (or one no timer can hold) is refused, and nothing of it is kept.
 */
export function rateLimited(key: string, headers: Record<string, unknown>, attempt: number, now: number): RateLimitVerdict {
	const retryAfterText = header(headers, 'retry-after');
	const retryAfter = parseRetryAfter(retryAfterText, now);
	const resetText = header(headers, 'x-ratelimit-reset');
	const reset = parseReset(resetText, now);
	const state = stateOf(key);
	if (retryAfter !== undefined) {
		if (!acceptable(retryAfter)) return { tooLong: describeWait(retryAfter, 'Retry-After') };
		const end = now + retryAfter;
		state.retryAfterSeen = true;
		learnWindow(state, end, now);
		state.blockedUntil = Math.max(state.blockedUntil ?? 0, end);
		return { wait: Math.max(retryAfter, 50) };
	}
	if (reset !== undefined && reset > now) {
		if (!acceptable(reset - now)) return { tooLong: describeWait(reset - now, 'X-RateLimit-Reset') };
		state.blockedUntil = Math.max(state.blockedUntil ?? 0, reset + 25);
		return { wait: reset - now + 25 };
	}
	if (resetText !== undefined && Number(resetText) === Infinity) {
		return { tooLong: describeWait(Infinity, 'X-RateLimit-Reset') };
	}
	return { wait: backoff(attempt + 1) };
}

function describeWait(ms: number, source: string): string {
	const limit = `${Math.round(settings.maxRetryAfterMs / 1000)} s`;
	return Number.isFinite(ms) && ms < 1e15
		? `asked to wait ${Math.round(ms / 1000)} s (${source}), longer than the node waits (${limit})`
		: `asked to wait longer than the node waits (${source}; the node waits at most ${limit})`;
}

/**
 * A Retry-After end against the oldest slot the window holds: the window is at least
 * that long. Only when that slot is ours (others' are noticed late, their time unknown).
 */
function learnWindow(state: KeyState, end: number, now: number): void {
	const held = live(state, now).filter((s) => !s.inFlight);
	// Other clients' requests, seen only as counts, may be the older ones the Retry-After is about.
	if (held.length === 0 || state.othersSeen.length > 0) return;
	const oldest = held.reduce((a, b) => (b.at < a.at ? b : a));
	if (!oldest.ours || held.some((s) => !s.ours && s.at <= oldest.at)) return;
	const length = end - oldest.at;
	if (length < 1000 || !acceptable(length)) return;
	state.windowMs = Math.max(state.windowMs ?? 0, length);
}
