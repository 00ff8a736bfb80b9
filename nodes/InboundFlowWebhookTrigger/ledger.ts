// Which deliveries a webhook trigger has taken, per workflow trigger, in this process
// and in the workflow's static data. No n8n context and no I/O, so it can be tested
// on its own.
//
// - A delivery is *pending* from the moment the node takes it until n8n has answered
//   it, then *done* (2xx: n8n accepted its run) or forgotten (anything else: the
//   sender's retry must run). A copy that arrives meanwhile waits for that outcome.
// - Remembered by time (REMEMBER_HOURS) and bounded in count (MAX_REMEMBERED per
//   trigger); the oldest go first.
// - Saved as one compact object: per hour, the 10-character fingerprints of the keys.
//   What is saved is always everything this process remembers (a union, never an older
//   copy). Saves are issued one at a time (the next one only after n8n answered the
//   request that carried the previous one; n8n saves static data before answering), so a
//   delivery that arrives while a save is in flight adds no database write: a later
//   request carries its key. One exception, for the end of a burst: the last request n8n
//   reads while a save is in flight, when no later request could carry the rest, saves
//   it too. With one write connection (SQLite) that newer copy lands last; with several
//   (Postgres) the two may land in either order, and then the burst's last keys are saved
//   with the next delivery (every save holds the whole union).
import { createHash, randomUUID } from 'crypto';

/** How long a delivery is remembered: longer than the redelivery schedule assumed (72 h). */
export const REMEMBER_HOURS = 72;
/** Most deliveries remembered (and saved) per trigger: about 110 kB of static data. */
export const MAX_REMEMBERED = 10_000;
const FINGERPRINT_CHARS = 10;
const HOUR_MS = 3_600_000;
/** A pending delivery whose answer never came is given up after this. */
const PENDING_MAX_MS = 10 * 60_000;
/** A save whose request never got an answer no longer blocks the next one after this. */
const FLIGHT_MAX_MS = 60_000;

/** A delivery key as stored: 60 bits of its SHA-256 (no collision in practice among 10,000). */
export function fingerprint(key: string): string {
	return createHash('sha256').update(key).digest('base64url').slice(0, FINGERPRINT_CHARS);
}

/** What the trigger keeps in the workflow's static data. */
export interface SavedDeliveries {
	v: 2;
	/** The process that wrote it, and its save number: a copy already merged is skipped. */
	writer: string;
	seq: number;
	/** Hour (epoch hours) → concatenated fingerprints of the deliveries taken in that hour. */
	hours: Record<string, string>;
}

export type Claim =
	| { kind: 'new'; fp: string }
	| { kind: 'done' }
	| { kind: 'pending'; outcome: Promise<boolean> };

interface Entry {
	hour: number;
	pending?: {
		since: number;
		outcome: Promise<boolean>;
		resolve: (ok: boolean) => void;
		/** Puts a snapshot into this delivery's own copy of the static data (saved before n8n answers it). */
		carry?: (snapshot: SavedDeliveries) => void;
		/** n8n has read this request's answer, so it has decided whether to save its copy: carrying is too late. */
		passed?: boolean;
	};
}

class Trigger {
	entries = new Map<string, Entry>();
	/** Changes made (keys added or forgotten) and the last change a save is known to hold. */
	changes = 0;
	saved = 0;
	/** Saves in flight: the delivery whose request carries each, and the change count its copy holds. */
	flights = new Map<string, { changes: number; since: number }>();
	merged = '';
}

const hourOf = (ms: number) => Math.floor(ms / HOUR_MS);

function isSaved(value: unknown): value is SavedDeliveries {
	if (typeof value !== 'object' || value === null) return false;
	const saved = value as Partial<SavedDeliveries>;
	return saved.v === 2 && typeof saved.hours === 'object' && saved.hours !== null;
}

/** Whether a saved copy (this format, or the list of keys version 1.0 kept) holds the key. */
export function savedHas(saved: unknown, key: string): boolean {
	if (Array.isArray(saved)) return saved.includes(key);
	if (!isSaved(saved)) return false;
	const fp = fingerprint(key);
	return Object.values(saved.hours).some((list) => typeof list === 'string' && fingerprintsOf(list).includes(fp));
}

function fingerprintsOf(list: string): string[] {
	const out: string[] = [];
	for (let i = 0; i + FINGERPRINT_CHARS <= list.length; i += FINGERPRINT_CHARS) out.push(list.slice(i, i + FINGERPRINT_CHARS));
	return out;
}

export class DeliveryLedger {
	private triggers = new Map<string, Trigger>();
	/** Tells this process's saves apart from other processes' (queue mode). */
	readonly writer = randomUUID();

	constructor(
		private readonly limits = { maxKeys: MAX_REMEMBERED, hours: REMEMBER_HOURS, maxTriggers: 1000 },
	) {}

	private trigger(id: string): Trigger {
		let t = this.triggers.get(id);
		if (t) {
			this.triggers.delete(id); // most recently used last
		} else {
			t = new Trigger();
		}
		this.triggers.set(id, t);
		while (this.triggers.size > this.limits.maxTriggers) this.triggers.delete(this.triggers.keys().next().value as string);
		return t;
	}

	/** Adds what the workflow's static data holds (saved by an earlier run of n8n, or by another process). */
	absorb(id: string, saved: unknown, nowMs: number): void {
		const t = this.trigger(id);
		const found: Array<[string, number]> = [];
		if (Array.isArray(saved)) {
			if (t.merged === 'v1') return;
			t.merged = 'v1';
			for (const key of saved) if (typeof key === 'string') found.push([fingerprint(key), hourOf(nowMs)]);
		} else if (isSaved(saved)) {
			const tag = `${saved.writer}:${saved.seq}`;
			if (saved.writer === this.writer || tag === t.merged) return;
			t.merged = tag;
			for (const [hour, list] of Object.entries(saved.hours)) {
				if (typeof list === 'string' && Number.isSafeInteger(Number(hour))) {
					for (const fp of fingerprintsOf(list)) found.push([fp, Number(hour)]);
				}
			}
		}
		const fresh = found.filter(([fp]) => !t.entries.has(fp));
		if (fresh.length === 0) return;
		// Kept oldest first, so expiry and the count bound drop the oldest.
		const all = [...fresh.map(([fp, hour]) => [fp, { hour }] as [string, Entry]), ...t.entries];
		all.sort((a, b) => a[1].hour - b[1].hour);
		t.entries = new Map(all);
		t.changes++;
		this.prune(t, nowMs);
	}

	/**
	 * Takes a delivery, or says it was taken (done) or is being taken (pending, with its
	 * outcome). `carry` lets a later save ride on this delivery's request.
	 */
	claim(id: string, key: string, nowMs: number, carry?: (snapshot: SavedDeliveries) => void): Claim {
		const t = this.trigger(id);
		this.prune(t, nowMs);
		const fp = fingerprint(key);
		const entry = t.entries.get(fp);
		if (entry && !entry.pending) return { kind: 'done' };
		if (entry?.pending && nowMs - entry.pending.since < PENDING_MAX_MS) return { kind: 'pending', outcome: entry.pending.outcome };
		if (entry) this.settle(id, fp, false);
		let resolve: (ok: boolean) => void = () => undefined;
		const outcome = new Promise<boolean>((r) => (resolve = r));
		t.entries.delete(fp);
		t.entries.set(fp, { hour: hourOf(nowMs), pending: { since: nowMs, outcome, resolve, carry } });
		t.changes++;
		this.prune(t, nowMs);
		return { kind: 'new', fp };
	}

	/** n8n's answer to a delivery taken by `claim`: 2xx keeps it (done), anything else forgets it. */
	settle(id: string, fp: string, accepted: boolean, nowMs = Date.now()): void {
		const t = this.trigger(id);
		const entry = t.entries.get(fp);
		const pending = entry?.pending;
		if (entry && pending) {
			if (accepted) {
				delete entry.pending;
			} else {
				t.entries.delete(fp);
				t.changes++;
			}
			pending.resolve(accepted);
		}
		const flight = t.flights.get(fp);
		if (flight) {
			// n8n saves static data before it answers, and only when it answers 2xx.
			t.flights.delete(fp);
			if (accepted) t.saved = Math.max(t.saved, flight.changes);
			this.expireFlights(t, nowMs);
			// Keys taken while the saves were in flight ride on the newest delivery still
			// waiting for n8n's answer (not yet read by n8n), so the end of a burst is saved
			// without waiting for the next delivery.
			if (t.flights.size === 0 && t.changes > t.saved) {
				const carrier = [...t.entries].reverse().find(([key, e]) => key !== fp && e.pending?.carry && !e.pending.passed);
				if (carrier) carrier[1].pending!.carry!(this.snapshot(id, carrier[0], nowMs));
			}
		}
	}

	/** Whether the delivery just taken should carry a save: something unsaved, and no save in flight. */
	shouldSave(id: string, nowMs: number): boolean {
		const t = this.trigger(id);
		this.expireFlights(t, nowMs);
		return t.changes > t.saved && t.flights.size === 0;
	}

	/** Gives up saves whose request never got an answer. */
	private expireFlights(t: Trigger, nowMs: number): void {
		for (const [fp, flight] of t.flights) if (nowMs - flight.since > FLIGHT_MAX_MS) t.flights.delete(fp);
	}

	/**
	 * n8n reads a request's answer right before it decides whether to save that request's
	 * copy of the static data (n8n 2.x after it created the run; 1.x as soon as the node
	 * returns, then saves and answers while the run is created). Returns a snapshot this
	 * request must carry, or undefined:
	 * - the request already carries a save: the newest union, if keys came since;
	 * - no save in flight and something unsaved: this request saves it;
	 * - saves in flight that hold everything: nothing;
	 * - a save in flight, more taken since, and no other request that could still carry
	 *   the rest (none pending that n8n has not read): this request saves the rest now.
	 *   Without it, the end of a burst on n8n 1.x (every copy read before the save in flight
	 *   ends) stayed unsaved until the next delivery. With one write connection (SQLite) the
	 *   newer copy lands last; with several (Postgres) it may land first, and then the rest
	 *   is saved with the next delivery.
	 * Only the first read decides; n8n reads the answer once.
	 */
	atSavePoint(id: string, fp: string, nowMs: number): SavedDeliveries | undefined {
		const t = this.trigger(id);
		const pending = t.entries.get(fp)?.pending;
		if (pending) {
			if (pending.passed) return undefined;
			pending.passed = true;
		}
		this.expireFlights(t, nowMs);
		if (t.changes <= t.saved) return undefined;
		const mine = t.flights.get(fp);
		if (mine) return t.changes > mine.changes ? this.snapshot(id, fp, nowMs) : undefined;
		if (t.flights.size > 0) {
			if ([...t.flights.values()].some((flight) => flight.changes >= t.changes)) return undefined;
			const laterCarrier = [...t.entries].some(([key, e]) => key !== fp && e.pending?.carry && !e.pending.passed);
			if (laterCarrier) return undefined;
		}
		return this.snapshot(id, fp, nowMs);
	}

	/** Everything remembered, to be saved with the request of delivery `fp` (now in flight). */
	snapshot(id: string, fp: string, nowMs: number): SavedDeliveries {
		const t = this.trigger(id);
		this.prune(t, nowMs);
		t.flights.set(fp, { changes: t.changes, since: nowMs });
		const hours: Record<string, string> = {};
		for (const [key, entry] of t.entries) hours[entry.hour] = (hours[entry.hour] ?? '') + key;
		return { v: 2, writer: this.writer, seq: t.changes, hours };
	}

	/** Remembered deliveries of a trigger (pending and done). */
	size(id: string): number {
		return this.triggers.get(id)?.entries.size ?? 0;
	}

	clear(): void {
		this.triggers.clear();
	}

	private prune(t: Trigger, nowMs: number): void {
		const oldest = hourOf(nowMs) - this.limits.hours;
		let excess = t.entries.size - this.limits.maxKeys;
		for (const [fp, entry] of t.entries) {
			if (entry.hour >= oldest && excess <= 0) break;
			if (entry.pending) continue;
			t.entries.delete(fp);
			t.changes++;
			excess--;
		}
	}
}
