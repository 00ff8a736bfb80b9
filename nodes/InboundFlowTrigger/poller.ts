// What a poll of the trigger does, kept apart from the node's description so it can be
// tested on its own. Never misses and never repeats a record, whatever the service's
// `since` (inclusive or exclusive), page order, timestamp format or clock headers:
//  - the watermark is the server time at which the last complete traversal started
//    (without server time: the newest created_at seen), never the local clock;
//  - each poll asks for `since = watermark - lookback` and drops the ids it already
//    emitted (kept for the lookback window);
//  - a backlog larger than one poll's share is drained across polls by keeping the
//    cursor; the watermark moves only when a traversal is complete, and never past
//    the server time at which that traversal started: records created while it ran
//    may sit behind its cursor (oldest-first pages), so the next poll reads them again;
//    an idle poll so reads the records created in the lookback before the previous
//    poll, not those before the newest record (a burst is not read again and again);
//  - a cursor the server no longer accepts (400/410), stored or in the middle of a
//    poll, never fails the poll: the read starts again from the last point read
//    completely (oldest-first pages) or from the watermark, in the same poll when time
//    is left, else in the next; the seen ids keep it from repeating;
//  - a poll whose stored state is older than what an earlier poll in this process
//    handed to n8n with an execution (n8n commits it with that execution, later)
//    returns nothing and changes nothing (see handOffPending);
//  - a change of settings (event, filters, lookback) starts a new baseline at that
//    moment, also when changed back, and never backfills (On Activation, Also Emit the
//    Last N Hours is for the first activation): no record is emitted twice across
//    changes, and a record is emitted when the settings active at its creation select it;
//  - state is written only after every page of the poll arrived, so a failed poll
//    changes nothing;
//  - a state that n8n may drop (the activation poll's, with durable poll cursors) is
//    also shelved in the workflow's global static data (see shelfKey);
//  - at most one poll per workflow trigger runs at a time in this process (n8n starts
//    a tick even while the previous poll still waits), and a poll ends inside its time
//    budget (every request, its body included, is cut off at the deadline), keeping its
//    cursor when it has to stop early.
import type { IDataObject, IPollFunctions } from 'n8n-workflow';
import { sleep } from 'n8n-workflow';

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
	/** Server time at which the last complete traversal started, else its newest created_at (ISO). */
	watermark: string;
	/** Ids already emitted (or present at the baseline), with their created_at, as [id, at] pairs. */
	seen: Array<[string, string]>;
	/**
	 * A traversal left unfinished by the previous poll; startedAt is server time. Without
	 * a cursor (it expired) the traversal goes on from `since`.
	 */
	drain?: { cursor?: string; since: string; max: string; startedAt?: string };
	/** Counts the states written: tells a state n8n has not stored yet from one it has. */
	rev?: number;
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
	const drain =
		isObject(value.drain) && (typeof value.drain.cursor === 'string' || typeof value.drain.since === 'string')
			? (value.drain as PollState['drain'])
			: undefined;
	const rev = typeof value.rev === 'number' ? value.rev : undefined;
	return { version: STATE_VERSION, key, watermark: value.watermark, seen, ...(drain ? { drain } : {}), ...(rev ? { rev } : {}) };
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

/**
 * True when a page shows it lists records newest first: by created_at alone, since the
 * order of ids within one timestamp tells nothing (a page of one timestamp tells no order).
 */
function newestFirst(records: IDataObject[]): boolean {
	return records.length > 1 && ms(createdAt(records[0])) > ms(createdAt(records[records.length - 1]));
}

/**
 * The server's "now" for a baseline: its clock (meta.timestamp or the Date header).
 * Without one, the newest record's created_at: page one holds it when it is the only
 * page or lists newest first; otherwise (oldest first, or a page of one shared
 * created_at that tells no order) the history is not walked (it may be longer than a
 * poll can read): only the records created in the lookback before n8n's clock are,
 * and with none there, n8n's clock is "now" (there is nothing recent to flood with).
 */
async function serverNow(this: IPollFunctions, req: ListRequest, overlap: number): Promise<string> {
	let first: IDataObject[] = [];
	let more = false;
	for await (const page of paginate.call(this, req)) {
		if (page.serverTime) return page.serverTime;
		first = page.records;
		more = page.nextCursor !== undefined;
		break;
	}
	let newest = newestOf(first);
	if (more && !newestFirst(first)) {
		newest = undefined;
		const since = iso(Date.now() - overlap);
		for await (const page of paginate.call(this, { ...req, qs: { ...req.qs, since } })) {
			if (page.serverTime) return page.serverTime;
			newest = newestOf(newest ? [newest, ...page.records] : page.records);
		}
		if (!newest) return iso(Date.now());
	}
	const newestAt = newest ? createdAt(newest) : '';
	return ms(newestAt) > 0 ? newestAt : iso(Date.now());
}

function newestOf(records: IDataObject[]): IDataObject | undefined {
	let newest: IDataObject | undefined;
	for (const record of records) if (!newest || byCreatedAt(record, newest) > 0) newest = record;
	return newest;
}

/** First live run: records what exists now, so activation does not flood the workflow. */
async function baseline(this: IPollFunctions, req: ListRequest, key: string, options: PollOptions): Promise<PollState> {
	const overlap = options.overlapMs ?? OVERLAP_MS;
	const now = await serverNow.call(this, { ...req, qs: { ...req.qs } }, overlap);
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
	const stored = readState(previous, key);
	const rev = (stored?.rev ?? (isObject(previous) && typeof previous.rev === 'number' ? previous.rev : 0)) + 1;
	let state = stored;
	if (!state) {
		// The backfill (the last N hours) is for the first activation only: after a change of
		// settings (a state of other settings is stored) it would emit again what the earlier
		// settings emitted. Settings changed and changed back start from now, like any change.
		const firstRunHours = isObject(previous) && typeof previous.key === 'string' ? 0 : options.firstRunHours;
		try {
			state = await baseline.call(this, timed, key, { ...options, firstRunHours });
		} catch (error) {
			if (error instanceof DeadlineError) return { records: [], state: undefined };
			throw toNodeError(this.getNode(), error);
		}
		if (firstRunHours <= 0) return { records: [], state: { ...state, rev } };
	}
	// A cursor refused (expired) never fails the poll: the read goes on from the last point
	// read completely, in this poll while time is left (at most three reads), else the next.
	let records: IDataObject[] = [];
	let current: PollState | undefined;
	for (let attempt = 0; attempt < 3; attempt++) {
		const result = await traverse.call(this, timed, key, current ?? state, options, overlap);
		if (!result.state) break;
		records = [...records, ...result.records];
		current = result.state;
		if (!result.expired || Date.now() >= deadline) break;
	}
	records.sort(byCreatedAt);
	return { records, state: current ? { ...current, rev } : undefined };
}

async function traverse(
	this: IPollFunctions,
	req: ListRequest,
	key: string,
	state: PollState,
	options: PollOptions,
	overlap: number,
): Promise<{ records: IDataObject[]; state: PollState | undefined; expired?: boolean }> {
	const since = state.drain?.since ?? iso(ms(state.watermark) - overlap);
	// Ids kept while the traversal is unfinished: all the next complete one may read again (a
	// drain going on from a later point than its window's start still ends on that window).
	const keepFrom = Math.min(ms(since), ms(state.watermark) - overlap);
	const seen = new Map<string, string>(state.seen);
	const fresh: IDataObject[] = [];
	let max = state.drain?.max ?? state.watermark;
	let complete = false;
	let cursor: string | undefined;
	let startedAt = state.drain ? state.drain.startedAt : undefined;
	let pages = 0;
	// Oldest-first pages read so far: where to go on from when the cursor expires.
	let ascendingSoFar = true;
	let lastAt: string | undefined;
	try {
		for await (const page of paginate.call(this, { ...req, qs: { ...req.qs, since } }, { cursor: state.drain?.cursor })) {
			if (pages++ === 0 && !state.drain) startedAt = page.serverTime;
			for (const record of page.records) {
				const at = createdAt(record);
				if (lastAt !== undefined && ms(at) < ms(lastAt)) ascendingSoFar = false;
				lastAt = at;
				max = laterOf(max, at);
				if (typeof record.id !== 'string' || seen.has(record.id)) continue;
				seen.set(record.id, at);
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
		const cursorInUse = cursor !== undefined || state.drain?.cursor !== undefined;
		if (cursorInUse && isExpiredCursor(error)) {
			// The cursor expired (e.g. while a page waited on the rate limit). Go on without it:
			// from the newest record read when pages come oldest first (ties are read again, and
			// dropped as seen), else from the traversal's start.
			const resume = ascendingSoFar && lastAt !== undefined && ms(lastAt) > ms(since) ? iso(ms(lastAt) - 1) : since;
			const drain = { since: resume, max, ...(startedAt ? { startedAt } : {}) };
			return {
				records: fresh,
				state: { version: STATE_VERSION, key, watermark: state.watermark, seen: prune(seen, keepFrom), drain },
				expired: true,
			};
		}
		if (!(error instanceof DeadlineError)) throw toNodeError(this.getNode(), error);
		// Out of time: keep what was read completely (the drain resumes from `cursor`).
		if (cursor === undefined) return { records: [], state: undefined };
	}
	fresh.sort(byCreatedAt);

	if (complete) {
		// The traversal's start in server time: every record visible then was read, so the next
		// window need only go back a lookback from there, however old the newest record is
		// (anchored at the newest record, an idle poll would re-read a burst until the next
		// record came). Without server time, the newest record read. Never backwards.
		const anchor = startedAt && ms(startedAt) > 0 ? startedAt : max;
		const watermark = laterOf(state.watermark, anchor);
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
			seen: prune(seen, keepFrom),
			drain: { cursor: cursor!, since, max, ...(startedAt ? { startedAt } : {}) },
		},
	};
}

/** The newest record matching the filters, for "Fetch Test Event". */
export async function newestRecord(this: IPollFunctions, req: ListRequest): Promise<IDataObject | undefined> {
	let newest: IDataObject | undefined;
	let pages = 0;
	for await (const page of paginate.call(this, req)) {
		newest = newestOf(newest ? [newest, ...page.records] : page.records);
		// Newest-first pages put the newest record on page one; oldest-first ones need more pages.
		if (newestFirst(page.records) || ++pages >= 20) break;
	}
	return newest;
}

/**
 * Where a poll's state is shelved in the workflow's global static data, by node id.
 *
 * With n8n's durable poll cursors (2.41+, N8N_POLLER_DURABLE_CURSORS_ENABLED), the node's
 * static data is a private copy per poll, kept only when the poll emits or when a
 * scheduled poll returns nothing; the activation poll's copy is dropped when it returns
 * nothing. The baseline taken at activation (the first, or after a change of settings,
 * when n8n activates the workflow again and the node's stored state is for the old
 * settings) would be lost, and the next poll would take another one, counting every
 * record created in between as already there. So a poll that takes a new starting point
 * also shelves it in the workflow's global static data (n8n saves that at the end of an
 * activation and with every emit), together with a fingerprint of the state it replaces,
 * and a poll without a state of its own for its settings starts from the shelf when the
 * shelf replaces exactly the state the node has (an older shelf, e.g. settings changed and
 * changed back, is never used). A poll that continued from the shelf does not move it (if
 * n8n fails to store its execution, the next poll reads those records again). Once the
 * node has a state of its own for its settings, the shelf is cleared.
 */
export function shelfKey(nodeId: string): string {
	return `inboundFlowTrigger:${nodeId}`;
}

/** Identifies a stored state ('' for none). */
function fingerprint(state: unknown): string {
	if (!isObject(state)) return '';
	return JSON.stringify([state.key ?? null, state.watermark ?? null, state.rev ?? null, state.drain ?? null]);
}

/** The shelf entry for a new starting point that replaces the node's state `replaced`. */
export function shelfEntry(state: PollState, replaced: unknown): IDataObject {
	return { ...(JSON.parse(JSON.stringify(state)) as IDataObject), replaces: fingerprint(replaced) };
}

/** May a poll with these settings and this state of its own start from the shelf? */
export function shelfFits(entry: unknown, key: string, own: unknown): boolean {
	if (!isObject(entry) || readState(entry, key) === undefined) return false;
	return (typeof entry.replaces === 'string' ? entry.replaces : '') === fingerprint(own);
}

/** Polls running in this n8n process, by workflow and node. */
const inFlight = new Map<string, number>();
let pollCounter = 0;

/** Tunable by tests: how long past its budget a poll may run before it is abandoned. */
export const pollTimings = {
	/** Grace after the budget before a poll that has not ended is abandoned (its result dropped). */
	abandonAfterMs: 5_000,
	/** How long a state handed to n8n with an execution may stay unstored before polls go on without it. */
	handOffWaitMs: 5 * 60_000,
};

/**
 * Runs `poll` unless a poll of the same workflow trigger is still running in this
 * process; then returns undefined at once (no request, nothing emitted). The guard is
 * held for as long as the poll runs; a poll still running `abandonAfterMs` past its
 * budget (which the transport's deadline makes impossible) is abandoned: the guard is
 * released and its result, whenever it comes, is dropped, so it can emit nothing.
 */
export async function exclusivePoll<T>(key: string, budgetMs: number, poll: () => Promise<T>): Promise<T | undefined> {
	if (inFlight.has(key)) return undefined;
	const token = ++pollCounter;
	inFlight.set(key, token);
	const timer = new AbortController();
	const abandoned = Symbol('abandoned');
	try {
		const outcome = await Promise.race([
			poll(),
			sleep(budgetMs + pollTimings.abandonAfterMs, timer.signal).then(
				() => abandoned,
				() => abandoned,
			),
		]);
		return outcome === abandoned ? undefined : (outcome as T);
	} finally {
		timer.abort();
		if (inFlight.get(key) === token) inFlight.delete(key);
	}
}

/**
 * States this process handed to n8n with an execution, by workflow trigger. n8n stores
 * such a state after the poll returned: with its durable scheduler, with the execution
 * (durable poll cursors) or with the workflow's static data, both asynchronously. Ticks
 * fired together (missed ones after a restart, several poll times at once) then start
 * from the state before it, read from the same point and emit the same records again.
 */
const handedOff = new Map<string, { key: string; rev: number; at: number }>();

/**
 * True when the stored state is older than one this process handed to n8n for these
 * settings in the last `handOffWaitMs`: n8n has not stored it yet, and a poll from the
 * older state would repeat its records. Such a poll returns nothing and changes nothing
 * (n8n then stores nothing for it). Past the wait (n8n failed to store that execution)
 * polls go on from the stored state and read those records again.
 */
export function handOffPending(guard: string, key: string, stored: unknown): boolean {
	const pending = handedOff.get(guard);
	if (!pending) return false;
	const rev = isObject(stored) && stored.key === key && typeof stored.rev === 'number' ? stored.rev : 0;
	if (pending.key !== key || rev >= pending.rev || Date.now() - pending.at > pollTimings.handOffWaitMs) {
		handedOff.delete(guard);
		return false;
	}
	return true;
}

/** Notes a state handed to n8n with an execution (see handOffPending). */
export function noteHandOff(guard: string, state: Pick<PollState, 'key' | 'rev'>): void {
	handedOff.set(guard, { key: state.key, rev: state.rev ?? 0, at: Date.now() });
}

/** Forgets running polls and hand-offs: what a restart of n8n does (tests). */
export function resetPollMemory(): void {
	inFlight.clear();
	handedOff.clear();
}
