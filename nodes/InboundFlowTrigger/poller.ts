// What a poll of the trigger does, kept apart from the node's description so it can be
// tested on its own. Never misses and never repeats a record, whatever the service's
// `since` (inclusive or exclusive) and page order:
//  - the watermark is the newest created_at seen, never the local clock;
//  - each poll asks for `since = watermark - lookback` and drops the ids it already
//    emitted (kept for the lookback window);
//  - a backlog larger than one poll's share is drained across polls by keeping the
//    cursor; the watermark moves only when a traversal is complete, and never past
//    the server time at which that traversal started: records created while it ran
//    may sit behind its cursor (oldest-first pages), so the next poll reads them again;
//  - state is written only after every page arrived, so a failed poll changes nothing.
import type { IDataObject, IPollFunctions } from 'n8n-workflow';

import { paginate, type ListRequest } from '../shared/transport/pagination';

export const STATE_VERSION = 1;
/** How far before the watermark each poll looks again, unless the node says otherwise. */
export const OVERLAP_MS = 2 * 60_000;

export interface PollState {
	version: number;
	/** The settings the state belongs to; other settings start a new baseline. */
	key: string;
	/** Newest created_at of a complete traversal (ISO). */
	watermark: string;
	/** Ids already emitted (or present at the baseline), with their created_at. */
	seen: Record<string, string>;
	/** A traversal left unfinished by the previous poll; startedAt is server time. */
	drain?: { cursor: string; since: string; max: string; startedAt?: string };
}

export interface PollOptions {
	/** Stop fetching after this many records in one poll; the rest comes next poll. */
	maxPerPoll: number;
	/** On the first run, emit records created in the last N hours (0: none). */
	firstRunHours: number;
	/** Time this poll may spend fetching. */
	budgetMs: number;
	/** How far before the watermark each poll looks again (default OVERLAP_MS). */
	overlapMs?: number;
}

export function isPollState(value: unknown, key: string): value is PollState {
	if (typeof value !== 'object' || value === null) return false;
	const state = value as Partial<PollState>;
	return (
		state.version === STATE_VERSION &&
		state.key === key &&
		typeof state.watermark === 'string' &&
		typeof state.seen === 'object' &&
		state.seen !== null
	);
}

function createdAt(record: IDataObject): string {
	return typeof record.created_at === 'string' ? record.created_at : '';
}

function ms(iso: string): number {
	const value = Date.parse(iso);
	return Number.isNaN(value) ? 0 : value;
}

function laterOf(a: string, b: string): string {
	return ms(b) > ms(a) ? b : a;
}

export function byCreatedAt(a: IDataObject, b: IDataObject): number {
	const t = ms(createdAt(a)) - ms(createdAt(b));
	if (t !== 0) return t;
	return String(a.id) < String(b.id) ? -1 : String(a.id) > String(b.id) ? 1 : 0;
}

function prune(seen: Record<string, string>, cutoffMs: number): Record<string, string> {
	const out: Record<string, string> = {};
	for (const [id, at] of Object.entries(seen)) if (ms(at) >= cutoffMs) out[id] = at;
	return out;
}

/** First live run: records what exists now, so activation does not flood the workflow. */
async function baseline(
	this: IPollFunctions,
	req: ListRequest,
	key: string,
	options: PollOptions,
): Promise<PollState> {
	const overlap = options.overlapMs ?? OVERLAP_MS;
	let serverTime: string | undefined;
	for await (const page of paginate.call(this, req, { limit: 1, pageSize: 1 })) {
		serverTime = page.serverTime ?? page.records.map(createdAt).sort().pop();
	}
	const now = serverTime && ms(serverTime) > 0 ? serverTime : new Date().toISOString();
	if (options.firstRunHours > 0) {
		const from = ms(now) - options.firstRunHours * 3_600_000;
		return { version: STATE_VERSION, key, watermark: new Date(from + overlap).toISOString(), seen: {} };
	}
	const since = new Date(ms(now) - overlap).toISOString();
	const seen: Record<string, string> = {};
	for await (const page of paginate.call(this, { ...req, qs: { ...req.qs, since } })) {
		for (const record of page.records) {
			// Records newer than the baseline instant are left to the next poll.
			if (typeof record.id === 'string' && ms(createdAt(record)) <= ms(now)) seen[record.id] = createdAt(record);
		}
	}
	return { version: STATE_VERSION, key, watermark: now, seen };
}

/**
 * One poll. Returns the records to emit (oldest first) and the state to keep;
 * throws, changing nothing, when a page fails.
 */
export async function pollRecords(
	this: IPollFunctions,
	req: ListRequest,
	key: string,
	previous: unknown,
	options: PollOptions,
): Promise<{ records: IDataObject[]; state: PollState }> {
	const started = Date.now();
	const overlap = options.overlapMs ?? OVERLAP_MS;
	let state: PollState;
	if (isPollState(previous, key)) {
		state = previous;
	} else {
		state = await baseline.call(this, req, key, options);
		if (options.firstRunHours <= 0) return { records: [], state };
	}

	const since = state.drain?.since ?? new Date(ms(state.watermark) - overlap).toISOString();
	const seen = { ...state.seen };
	const fresh: IDataObject[] = [];
	let max = state.drain?.max ?? state.watermark;
	let complete = false;
	let cursor: string | undefined;
	let startedAt = state.drain ? state.drain.startedAt : undefined;
	let firstPage = !state.drain;
	for await (const page of paginate.call(this, { ...req, qs: { ...req.qs, since } }, { cursor: state.drain?.cursor })) {
		if (firstPage) startedAt = page.serverTime;
		firstPage = false;
		for (const record of page.records) {
			max = laterOf(max, createdAt(record));
			if (typeof record.id !== 'string' || record.id in seen) continue;
			seen[record.id] = createdAt(record);
			fresh.push(record);
		}
		if (!page.nextCursor) {
			complete = true;
			break;
		}
		cursor = page.nextCursor;
		// Only new records count toward the cap: an idle poll reads the whole overlap window.
		if (fresh.length >= options.maxPerPoll || Date.now() - started > options.budgetMs / 2) break;
	}
	fresh.sort(byCreatedAt);

	let next: PollState;
	if (complete) {
		// Not past the traversal's start (see above); never backwards.
		const capped = startedAt && ms(startedAt) > 0 && ms(max) > ms(startedAt) ? startedAt : max;
		const watermark = laterOf(state.watermark, capped);
		next = { version: STATE_VERSION, key, watermark, seen: prune(seen, ms(watermark) - overlap) };
	} else {
		next = {
			version: STATE_VERSION,
			key,
			watermark: state.watermark,
			seen: prune(seen, ms(since)),
			drain: { cursor: cursor!, since, max, ...(startedAt ? { startedAt } : {}) },
		};
	}
	return { records: fresh, state: next };
}

/** The newest record matching the filters, for "Fetch Test Event". */
export async function newestRecord(this: IPollFunctions, req: ListRequest): Promise<IDataObject | undefined> {
	let newest: IDataObject | undefined;
	let pages = 0;
	for await (const page of paginate.call(this, req)) {
		for (const record of page.records) if (!newest || byCreatedAt(record, newest) > 0) newest = record;
		const ascending =
			page.records.length > 1 && byCreatedAt(page.records[0], page.records[page.records.length - 1]) < 0;
		// Newest-first pages put the newest record on page one; oldest-first ones need more pages.
		if (!ascending || ++pages >= 20) break;
	}
	return newest;
}
