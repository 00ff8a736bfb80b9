// Client-side pacing by InboundFlow's X-RateLimit-* headers, shared by every request
// made with the same key in this n8n process, and the waits of the retry policy.
import { header } from '../utils';

export interface TransportSettings {
	/** Retries of a GET after 502/503/504, a dropped connection or a malformed body. */
	maxRetries: number;
	/** Retries after a 429. */
	maxRateLimitRetries: number;
	/** First backoff step; doubles on each retry, with jitter. */
	baseDelayMs: number;
	maxDelayMs: number;
	/** A 429 asking to wait longer than this fails at once, saying so. */
	maxRetryAfterMs: number;
	timeoutMs: number;
}

export const DEFAULT_SETTINGS: TransportSettings = {
	maxRetries: 4,
	maxRateLimitRetries: 6,
	baseDelayMs: 500,
	maxDelayMs: 20_000,
	maxRetryAfterMs: 120_000,
	timeoutMs: 30_000,
};

/** Mutable so the test suite and benchmarks can shorten the waits. */
export const settings: TransportSettings = { ...DEFAULT_SETTINGS };

interface Budget {
	limit: number;
	remaining: number;
	/** Epoch ms at which the window resets, when the server says. */
	resetAt?: number;
	/** Epoch ms before which nothing may be sent (after a 429). */
	blockedUntil?: number;
	/** A window end learned from a 429's Retry-After (the API documents no reset header). */
	boundary?: number;
	/** Window length learned from two such ends. */
	windowMs?: number;
	/** Epoch ms at which `remaining` was seen (a response, or a 429). */
	observedAt?: number;
}

const budgets = new Map<string, Budget>();

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
	budgets.clear();
}


/** X-RateLimit-Reset as epoch ms: unix seconds, unix ms, or seconds from now. */
export function parseReset(value: string | undefined, now: number): number | undefined {
	if (value === undefined) return undefined;
	const n = Number(value);
	if (!Number.isFinite(n) || n < 0) return undefined;
	if (n > 1e12) return n;
	if (n > 1e9) return n * 1000;
	return now + n * 1000;
}

/** Retry-After as a delay in ms: seconds, or an HTTP date. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
	if (value === undefined || value.trim() === '') return undefined;
	const seconds = Number(value);
	if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
	const date = Date.parse(value);
	if (Number.isNaN(date)) return undefined;
	return Math.max(0, date - now);
}

/** Records what a response says of the key's budget. */
export function observe(key: string, headers: Record<string, unknown>, now: number): void {
	const limit = Number(header(headers, 'x-ratelimit-limit'));
	const remaining = Number(header(headers, 'x-ratelimit-remaining'));
	if (!Number.isFinite(limit) || !Number.isFinite(remaining) || limit <= 0) return;
	const previous = budgets.get(key);
	budgets.set(key, {
		limit,
		remaining,
		resetAt: parseReset(header(headers, 'x-ratelimit-reset'), now),
		blockedUntil: previous?.blockedUntil,
		boundary: previous?.boundary,
		windowMs: previous?.windowMs,
		observedAt: now,
	});
}

/** After a 429: nothing more is sent with this key before `until`. */
export function block(key: string, until: number, now = Date.now()): void {
	const budget = budgets.get(key) ?? { limit: 0, remaining: 0 };
	budget.remaining = 0;
	budget.observedAt = now;
	budget.blockedUntil = Math.max(budget.blockedUntil ?? 0, until);
	budgets.set(key, budget);
}

/**
 * How long to wait before the next request with this key: none while the window has
 * room (a lone client reaches the ceiling); at zero, until the window in which it was
 * seen at zero resets: the X-RateLimit-Reset time when the server sends one, else the
 * window end learned from earlier 429s' Retry-After. Once that end has passed, the new
 * window has room (not a window later). With neither, the next request goes out and its
 * 429 tells.
 */
export function delayBefore(key: string, now: number): number {
	const budget = budgets.get(key);
	if (!budget) return 0;
	if (budget.blockedUntil !== undefined && now < budget.blockedUntil) return budget.blockedUntil - now;
	if (budget.limit <= 0 || budget.remaining > 0) return 0;
	if (budget.resetAt !== undefined) return now >= budget.resetAt ? 0 : budget.resetAt - now + 25;
	const end = windowEndAfter(budget, budget.observedAt ?? now);
	return end === undefined || now >= end ? 0 : end - now + 25;
}

/** The learned end of the window that holds the moment `at`, projected by the learned length. */
function windowEndAfter(budget: Budget, at: number): number | undefined {
	if (budget.boundary === undefined) return undefined;
	if (budget.boundary > at) return budget.boundary;
	if (!budget.windowMs) return undefined;
	return budget.boundary + (Math.floor((at - budget.boundary) / budget.windowMs) + 1) * budget.windowMs;
}

/** Exponential backoff with jitter for retry number `attempt` (0-based). */
export function backoff(attempt: number): number {
	const ceiling = Math.min(settings.maxDelayMs, settings.baseDelayMs * 2 ** attempt);
	return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/**
 * How long to wait after a 429: Retry-After, else X-RateLimit-Reset, else backoff.
 * A Retry-After without a reset header also teaches the key's window: its end, and,
 * from two ends a window or more apart, its length.
 */
export function rateLimitDelay(key: string, headers: Record<string, unknown>, attempt: number, now: number): number {
	const retryAfter = parseRetryAfter(header(headers, 'retry-after'), now);
	const reset = parseReset(header(headers, 'x-ratelimit-reset'), now);
	if (retryAfter !== undefined) {
		if (reset === undefined) learnWindowEnd(key, now + retryAfter);
		return Math.max(retryAfter, 50);
	}
	if (reset !== undefined && reset > now) return reset - now + 25;
	return backoff(attempt + 1);
}

function learnWindowEnd(key: string, end: number): void {
	const budget = budgets.get(key) ?? { limit: 0, remaining: 0 };
	const previous = budget.boundary;
	// Retry-After is in whole seconds: ends closer than that are the same window.
	if (previous !== undefined && end - previous > 1500) {
		const length = end - previous;
		budget.windowMs = budget.windowMs ? Math.min(budget.windowMs, length) : length;
	}
	if (previous === undefined || Math.abs(end - previous) > 1500) budget.boundary = end;
	budgets.set(key, budget);
}
