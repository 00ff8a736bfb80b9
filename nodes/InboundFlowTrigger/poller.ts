// What a poll of the trigger does, kept apart from the node's description so it can be
// tested on its own. Never misses and never repeats a record, whatever the service's
// `since` (inclusive or exclusive), page order, timestamp format or clock headers:
//  - the watermark is the newest created_at seen, never the local clock;
//  - each poll asks for `since = watermark - lookback` and drops the ids it already
//    emitted (kept for the lookback window);
//  - a backlog larger than one poll's share is drained across polls by keeping the
//    cursor; the watermark moves only when a traversal is complete, and never past
//    the server time at which that traversal started: records created while it ran
//    may sit behind its cursor (oldest-first pages), so the next poll reads them again;
//  - a stored cursor the server no longer accepts (400/410) is dropped and the read
//    starts again from the watermark (the seen ids keep it from repeating);
//  - state is written only after every page of the poll arrived, so a failed poll
//    changes nothing;
//  - a state that n8n may drop (the activation poll's, with durable poll cursors) is
//    also shelved in the workflow's global static data (see shelfKey);
//  - at most one poll per workflow trigger runs at a time in this process (n8n starts
//    a tick even while the previous poll still waits), and a poll ends inside its time
//    budget, keeping its cursor when it has to stop early.
import type { IDataObject, IPollFunctions } from 'n8n-workflow';

import { DeadlineError } from '../shared/transport';
import { toNodeError } from '../shared/transport/errors';
import { paginate, type ListRequest } from '../shared/transport/pagination';
import { isObject } from '../shared/utils';

export const STATE_VERSION = 2;
/** How far before the watermark each poll looks again, unless the node says otherwise. */
export const OVERLAP_MS = 2 * 60_000;
/**
 * The longest a poll may run, whatever n8n allows: shorter than n8n's shortest poll
 * interval (one minute), so a poll never outlives its tick by design.
 */
export const MAX_POLL_MS = 45_000;

export interface PollState {
	version: number;
	/** The settings the state belongs to; other settings start a new baseline. */
	key: string;
	/** Newest created_at of a complete traversal (ISO). */
	watermark: string;
	/** Ids already emitted (or present at the baseline), with their created_at, as [id, at] pairs. */
	seen: Array<[string, string]>;
	/** A traversal left unfinished by the previous poll; startedAt is server time. */
	drain?: { cursor: string; since: string; max: string; startedAt?: string };
}

export interface PollOptions {
	/** Stop fetching after this many records in one poll; the rest comes next poll. */
	maxPerPoll: number;
	/** On the first run, emit records created in the last N hours (0: none). */
	firstRunHours: number;
	/** Time this poll may spend, all waits included. */
	budgetMs: number;
	/** How far before the watermark each poll looks again (default OVERLAP_MS). */
	overlapMs?: number;
}

function isPair(value: unknown): value is [string, string] {
	return Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && typeof value[1] === 'string';
}

/** The stored state, if it belongs to these settings; version 1 (seen as an object) is upgraded. */
export function readState(value: unknown, key: string): PollState | undefined {
	if (!isObject(value) || value.key !== key || typeof value.watermark !== 'string') return undefined;
	let seen: Array<[string, string]>;
	if (value.version === STATE_VERSION && Array.isArray(value.seen)) {
		seen = value.seen.filter(isPair);
	} else if (value.version === 1 && isObject(value.seen)) {
		seen = Object.entries(value.seen).filter((pair): pair is [string, string] => typeof pair[1] === 'string');
	} else {
		return undefined;
	}
	const drain = isObject(value.drain) && typeof value.drain.cursor === 'string' ? (value.drain as PollState['drain']) : undefined;
	return { version: STATE_VERSION, key, watermark: value.watermark, seen, ...(drain ? { drain } : {}) };
}

function createdAt(record: IDataObject): string {
	return typeof record.created_at === 'string' ? record.created_at : '';
}

/** Epoch ms of an ISO 8601 time (Z or an offset, with or without milliseconds); 0 if unreadable. */
export function ms(iso: string | undefined): number {
	const value = iso === undefined ? NaN : Date.parse(iso);
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

function prune(seen: Map<string, string>, cutoffMs: number): Array<[string, string]> {
	const out: Array<[string, string]> = [];
	for (const [id, at] of seen) if (ms(at) >= cutoffMs) out.push([id, at]);
	return out;
}

function iso(epochMs: number): string {
	return new Date(epochMs).toISOString();
}

/** True when a page lists records oldest first. */
function ascending(records: IDataObject[]): boolean {
	return records.length > 1 && byCreatedAt(records[0], records[records.length - 1]) < 0;
}

/**
 * The server's "now" for a baseline: its clock (meta.timestamp or the Date header);
 * without one, the newest record's created_at (following oldest-first pages to the
 * end); with no record at all, n8n's clock (there is nothing to flood with).
 */
async function serverNow(this: IPollFunctions, req: ListRequest): Promise<string> {
	let newest: IDataObject | undefined;
	for await (const page of paginate.call(this, req)) {
		if (page.serverTime) return page.serverTime;
		for (const record of page.records) if (!newest || byCreatedAt(record, newest) > 0) newest = record;
		if (!ascending(page.records)) break;
	}
	const newestAt = newest ? createdAt(newest) : '';
	return ms(newestAt) > 0 ? newestAt : iso(Date.now());
}

/** First live run: records what exists now, so activation does not flood the workflow. */
async function baseline(this: IPollFunctions, req: ListRequest, key: string, options: PollOptions): Promise<PollState> {
	const overlap = options.overlapMs ?? OVERLAP_MS;
	const now = await serverNow.call(this, { ...req, qs: { ...req.qs } });
	if (options.firstRunHours > 0) {
		const from = ms(now) - options.firstRunHours * 3_600_000;
		return { version: STATE_VERSION, key, watermark: iso(from + overlap), seen: [] };
	}
	const since = iso(ms(now) - overlap);
	const seen: Array<[string, string]> = [];
	for await (const page of paginate.call(this, { ...req, qs: { ...req.qs, since } })) {
		for (const record of page.records) {
			// Records newer than the baseline instant are left to the next poll.
			if (typeof record.id === 'string' && ms(createdAt(record)) <= ms(now)) seen.push([record.id, createdAt(record)]);
		}
	}
	return { version: STATE_VERSION, key, watermark: now, seen };
}

function isExpiredCursor(error: unknown): boolean {
	const code = isObject(error) ? String((error as { httpCode?: unknown }).httpCode ?? '') : '';
	return code === '400' || code === '410';
}

/**
 * One poll. Returns the records to emit (oldest first) and the state to keep;
 * throws, changing nothing, when a page fails. When the time budget runs out it
 * returns what it read completely and keeps the cursor, or (before any page) nothing
 * and the unchanged state.
 */
export async function pollRecords(
	this: IPollFunctions,
	req: ListRequest,
	key: string,
	previous: unknown,
	options: PollOptions,
): Promise<{ records: IDataObject[]; state: PollState | undefined }> {
	const deadline = Date.now() + options.budgetMs;
	const timed: ListRequest = { ...req, deadline };
	const overlap = options.overlapMs ?? OVERLAP_MS;
	let state = readState(previous, key);
	if (!state) {
		try {
			state = await baseline.call(this, timed, key, options);
		} catch (error) {
			if (error instanceof DeadlineError) return { records: [], state: undefined };
			throw toNodeError(this.getNode(), error);
		}
		if (options.firstRunHours <= 0) return { records: [], state };
	}

	try {
		return await traverse.call(this, timed, key, state, options, overlap);
	} catch (error) {
		if (!state.drain || !isExpiredCursor(error)) throw toNodeError(this.getNode(), error);
		// The stored cursor expired: read again from the watermark (seen ids prevent repeats).
		const fresh: PollState = { version: STATE_VERSION, key, watermark: state.watermark, seen: state.seen };
		return await traverse.call(this, timed, key, fresh, options, overlap);
	}
}

async function traverse(
	this: IPollFunctions,
	req: ListRequest,
	key: string,
	state: PollState,
	options: PollOptions,
	overlap: number,
): Promise<{ records: IDataObject[]; state: PollState | undefined }> {
	const since = state.drain?.since ?? iso(ms(state.watermark) - overlap);
	const seen = new Map<string, string>(state.seen);
	const fresh: IDataObject[] = [];
	let max = state.drain?.max ?? state.watermark;
	let complete = false;
	let cursor: string | undefined;
	let startedAt = state.drain ? state.drain.startedAt : undefined;
	let pages = 0;
	try {
		for await (const page of paginate.call(this, { ...req, qs: { ...req.qs, since } }, { cursor: state.drain?.cursor })) {
			if (pages++ === 0 && !state.drain) startedAt = page.serverTime;
			for (const record of page.records) {
				max = laterOf(max, createdAt(record));
				if (typeof record.id !== 'string' || seen.has(record.id)) continue;
				seen.set(record.id, createdAt(record));
				fresh.push(record);
			}
			if (!page.nextCursor) {
				complete = true;
				break;
			}
			cursor = page.nextCursor;
			// Only new records count toward the cap: an idle poll reads the whole overlap window.
			if (fresh.length >= options.maxPerPoll) break;
		}
	} catch (error) {
		if (!(error instanceof DeadlineError)) throw toNodeError(this.getNode(), error);
		// Out of time: keep what was read completely (the drain resumes from `cursor`).
		if (cursor === undefined) return { records: [], state: undefined };
	}
	fresh.sort(byCreatedAt);

	if (complete) {
		// Not past the traversal's start (see above); never backwards.
		const capped = startedAt && ms(startedAt) > 0 && ms(max) > ms(startedAt) ? startedAt : max;
		const watermark = laterOf(state.watermark, capped);
		return {
			records: fresh,
			state: { version: STATE_VERSION, key, watermark, seen: prune(seen, ms(watermark) - overlap) },
		};
	}
	return {
		records: fresh,
		state: {
			version: STATE_VERSION,
			key,
			watermark: state.watermark,
			seen: prune(seen, ms(since)),
			drain: { cursor: cursor!, since, max, ...(startedAt ? { startedAt } : {}) },
		},
	};
}

/** The newest record matching the filters, for "Fetch Test Event". */
export async function newestRecord(this: IPollFunctions, req: ListRequest): Promise<IDataObject | undefined> {
	let newest: IDataObject | undefined;
	let pages = 0;
	for await (const page of paginate.call(this, req)) {
		for (const record of page.records) if (!newest || byCreatedAt(record, newest) > 0) newest = record;
		// Newest-first pages put the newest record on page one; oldest-first ones need more pages.
		if (!ascending(page.records) || ++pages >= 20) break;
	}
	return newest;
}

/**
 * Where a poll's state is shelved in the workflow's global static data, by node id.
 *
 * With n8n's durable poll cursors (2.41+, N8N_POLLER_DURABLE_CURSORS_ENABLED), the node's
 * static data is a private copy per poll, kept only when the poll emits or when a
 * scheduled poll returns nothing; the activation poll's copy is dropped when it returns
 * nothing. The baseline taken at activation would be lost, and the next poll would take
 * another one, counting every record created in between as already there. So a poll
 * that starts without any state of its own and takes a new starting point also shelves it
 * in the workflow's global static data (n8n saves that at the end of an activation and
 * with every emit), and a poll without a state of its own starts from the shelf. A poll
 * that continued from the shelf does not move it (if n8n fails to store its execution,
 * the next poll reads those records again). Once the node has a state of its own, the
 * shelf is cleared and never used again, also after a change of settings.
 */
export function shelfKey(nodeId: string): string {
	return `inboundFlowTrigger:${nodeId}`;
}

/** Polls running in this n8n process, by workflow and node, with their start time. */
const inFlight = new Map<string, { token: number; started: number }>();
let pollCounter = 0;

/**
 * Runs `poll` unless a poll of the same workflow trigger is still running in this
 * process; then returns undefined at once (no request, nothing emitted). A guard
 * older than `staleMs` (a poll that never ended) no longer blocks.
 */
export async function exclusivePoll<T>(key: string, staleMs: number, poll: () => Promise<T>): Promise<T | undefined> {
	const running = inFlight.get(key);
	if (running !== undefined && Date.now() - running.started < staleMs) return undefined;
	const token = ++pollCounter;
	inFlight.set(key, { token, started: Date.now() });
	try {
		return await poll();
	} finally {
		if (inFlight.get(key)?.token === token) inFlight.delete(key);
	}
}

/** Forgets running polls: what a restart of n8n does (tests). */
export function resetPollMemory(): void {
	inFlight.clear();
}
