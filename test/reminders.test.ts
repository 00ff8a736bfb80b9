// Appointment Starting Soon: the pure decision in randomized runs (booking, rescheduling,
// cancelling, polls, restarts, clock jumps, partial reads), then the event in n8n-core's
// PollContext over real HTTP to the emulator, in its switch settings, with its cost.
import type { IDataObject } from 'n8n-workflow';

import { rng } from '../emulator/data';
import type { EmulatorConfig, InboundFlowEmulator } from '../emulator/server';
import { resetBudgets } from '../nodes/shared/transport/pacing';
import { resetPollMemory } from '../nodes/InboundFlowTrigger/poller';
import {
	plan,
	PROBE_EVERY,
	readReminderState,
	remind,
	type ReminderSettings,
	type ReminderState,
} from '../nodes/InboundFlowTrigger/reminders';
import { emulatorPerFile, executeNode, json, poll, type Credentials } from './helpers';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

// A hand-off noted by one test's poll (see poller.ts) must not hold back the next test's.
beforeEach(() => resetPollMemory());

describe('remind (randomized runs)', () => {
	interface Appt {
		id: string;
		start: number;
		status: string;
	}

	/**
	 * One run: a simulated appointment book and clock; polls at random moments, with the
	 * server's clock jumping forwards and backwards, reads that end early, restarts (the
	 * state only as stored JSON) and an occasional read of every status.
	 */
	function run(seed: number, settings: ReminderSettings) {
		const next = rng(seed);
		const book = new Map<string, Appt>();
		let t = Date.UTC(2026, 11, 1, 8);
		let clock = 0;
		let state: ReminderState | undefined;
		let stored = '';
		let serial = 0;
		const emitted = new Set<string>();
		const violations: string[] = [];
		let maxState = 0;
		const live = (a: Appt) => a.status === 'booked' || a.status === 'confirmed';
		// What the trigger is set to remind.
		const open = (a: Appt) => settings.statuses.includes(a.status);
		const iso = (v: number, offset: boolean) =>
			offset ? `${new Date(v + 2 * HOUR).toISOString().slice(0, 23)}+02:00` : new Date(v).toISOString();
		for (let step = 0; step < 1000; step++) {
			const r = next();
			if (r < 0.25) {
				// Booked now: from already started (entered late) to six weeks ahead.
				const id = `a${++serial}`;
				const ahead = next() < 0.2 ? (next() - 0.3) * 3 * HOUR : next() * 42 * DAY;
				book.set(id, { id, start: Math.round(t + ahead), status: next() < 0.6 ? 'booked' : 'confirmed' });
			} else if (r < 0.35 && book.size) {
				const list = [...book.values()].filter(live);
				const a = list[Math.floor(next() * list.length)];
				if (a) a.start = Math.round(a.start + (next() * 2 - 1) * 2 * DAY);
			} else if (r < 0.42 && book.size) {
				const list = [...book.values()].filter(live);
				const a = list[Math.floor(next() * list.length)];
				if (a) a.status = 'cancelled';
			} else if (r < 0.47 && book.size) {
				const list = [...book.values()].filter(live);
				const a = list[Math.floor(next() * list.length)];
				if (a) a.status = a.status === 'booked' ? 'confirmed' : 'booked';
			} else if (r < 0.49 && book.size) {
				// A cancelled appointment booked again (open again, same start: already reminded for it).
				const list = [...book.values()].filter((a) => a.status === 'cancelled');
				const a = list[Math.floor(next() * list.length)];
				if (a) a.status = 'booked';
			} else if (r < 0.5) {
				// Restart: only the stored state survives (and with it the latest time it knew).
				state = stored ? readReminderState(JSON.parse(stored)) : undefined;
				clock = state ? Date.parse(state.clock) : 0;
			} else {
				// Time passes (sometimes a long pause), then a poll.
				t += next() < 0.05 ? next() * 2 * DAY : next() * 20 * MIN;
				// The server's clock as the poll sees it: sometimes behind (a clock corrected back).
				const serverNow = next() < 0.1 ? t - next() * 5 * HOUR : t;
				clock = Math.max(clock, serverNow);
				const everyStatus = next() < 0.3;
				let listed = [...book.values()].filter((a) => everyStatus || open(a));
				// (A read per status lists only the chosen statuses; a read of all lists every one.)
				// Pages in any order; a read that runs out of time lists only part.
				listed.sort(() => next() - 0.5);
				const partial = next() < 0.1;
				if (partial) listed = listed.slice(0, Math.floor(listed.length * next()));
				const offset = next() < 0.3;
				const records: IDataObject[] = listed.map((a) => ({
					id: a.id,
					status: a.status,
					appointment_time_start: iso(a.start, offset),
				}));
				const { due, state: after } = remind(state, records, serverNow, settings);
				for (const record of due) {
					const a = book.get(String(record.id))!;
					const key = `${a.id}@${a.start}`;
					if (emitted.has(key)) violations.push(`twice: ${key}`);
					if (!open(a)) violations.push(`not open: ${key} (${a.status})`);
					if (clock < a.start - settings.leadMs || clock >= a.start + settings.lateMs) {
						violations.push(`outside the window: ${key} at ${new Date(clock).toISOString()}`);
					}
					emitted.add(key);
				}
				// After a complete read, every open appointment in its window has been reminded for its start.
				if (!partial) {
					for (const a of book.values()) {
						if (!open(a) || clock < a.start - settings.leadMs || clock >= a.start + settings.lateMs) continue;
						if (!emitted.has(`${a.id}@${a.start}`)) violations.push(`missed: ${a.id}@${a.start}`);
					}
				}
				// The state holds only appointments starting within (clock - late, clock + lead].
				for (const [id, start] of after.reminded) {
					const s = Date.parse(start);
					if (s + settings.lateMs <= clock || s - settings.leadMs > clock) violations.push(`kept too long: ${id}`);
				}
				maxState = Math.max(maxState, after.reminded.length);
				state = after;
				// n8n stores the state with an emitting execution; a poll without one may be lost.
				if (due.length || next() < 0.5) stored = JSON.stringify(after);
			}
		}
		return { violations, emitted: emitted.size, maxState, appointments: book.size };
	}

	const cases: Array<[string, ReminderSettings]> = [
		['24 h before', { statuses: ['booked', 'confirmed'], leadMs: DAY, lateMs: 0, horizonMs: 60 * DAY }],
		['2 h before, booked only', { statuses: ['booked'], leadMs: 2 * HOUR, lateMs: 0, horizonMs: 60 * DAY }],
		['45 min before, up to 30 min late', { statuses: ['booked', 'confirmed'], leadMs: 45 * MIN, lateMs: 30 * MIN, horizonMs: 60 * DAY }],
	];

	it.each(cases)('%s: each appointment reminded once per start time, in its window, never when not open', (_name, settings) => {
		let total = 0;
		for (let seed = 1; seed <= 6; seed++) {
			const result = run(seed, settings);
			expect(result.violations.slice(0, 5)).toEqual([]);
			expect(result.maxState).toBeLessThan(result.appointments);
			total += result.emitted;
		}
		// The runs remind hundreds of appointments (the checks above are not vacuous).
		expect(total).toBeGreaterThan(150);
	});

	it('a stored state that cannot be read starts afresh', () => {
		expect(readReminderState({ version: 99, clock: 'x', reminded: [] })).toBeUndefined();
		expect(readReminderState(null)).toBeUndefined();
		expect(readReminderState({ version: 1, clock: '2026-12-01T00:00:00Z', reminded: [['a', 'b'], 5, ['c']] })?.reminded).toEqual([['a', 'b']]);
	});

	it('an appointment without a readable start is never emitted', () => {
		const settings = cases[0][1];
		const now = Date.UTC(2026, 11, 1);
		const { due } = remind(undefined, [{ id: 'x', status: 'booked', appointment_time_start: 'tomorrow' }, { id: 'y', status: 'booked' }], now, settings);
		expect(due).toEqual([]);
	});
});

describe('plan (reads per poll)', () => {
	const both = ['booked', 'confirmed'];
	const state = (counts: Record<string, number>, sinceProbe = 0): ReminderState => ({
		version: 1,
		clock: '2026-12-01T00:00:00Z',
		reminded: [],
		counts,
		sinceProbe,
	});

	it('one status: one read of it', () => {
		expect(plan(undefined, ['booked'])).toEqual({ reads: ['booked'] });
	});
	it('first poll: tries all statuses in one page, the reads per status after it', () => {
		expect(plan(undefined, both)).toEqual({ reads: [undefined, ...both], cap: 1 });
	});
	it('all statuses when that costs fewer pages', () => {
		expect(plan(state({ all: 90, booked: 50, confirmed: 30 }), both)).toEqual({ reads: [undefined] });
		expect(plan(state({ all: 900, booked: 150, confirmed: 30 }), both)).toEqual({ reads: both });
	});
	it('tries all statuses again every PROBE_EVERY polls, cut off before it costs more', () => {
		expect(plan(state({ all: 301, booked: 150, confirmed: 130 }, PROBE_EVERY), both)).toEqual({ reads: [undefined, ...both], cap: 3 });
		expect(plan(state({ all: 301, booked: 150, confirmed: 130 }, PROBE_EVERY - 1), both)).toEqual({ reads: both });
	});
});

// --- Over real HTTP, in n8n-core's PollContext ---

const shared = emulatorPerFile({ seed: { appointments: 0 } });
let emulator: InboundFlowEmulator;
let credentials: Credentials;
beforeAll(() => ({ emulator, credentials } = shared));

/** Node static data as n8n keeps it between polls (saved by emitting executions, and here by every poll). */
class Store {
	data: IDataObject = {};

	async poll(parameters: IDataObject, mode: 'trigger' | 'manual' = 'trigger') {
		const working = JSON.parse(JSON.stringify(this.data)) as IDataObject;
		const out = await poll({ event: 'appointmentStartingSoon', ...parameters }, { credentials, staticData: working, mode });
		if (mode !== 'manual') this.data = working;
		return json(out);
	}

	restart(): void {
		this.data = JSON.parse(JSON.stringify(this.data)) as IDataObject;
		resetPollMemory();
		resetBudgets();
	}
}

const ids = (records: IDataObject[]) => records.map((r) => r.id).sort();

const switches: Array<Partial<EmulatorConfig>> = [
	{ order: 'newest' },
	{ order: 'oldest', sinceMode: 'inclusive' },
	{ order: 'oldest', metaTimestamp: false, timestampFormat: 'offset' },
	{ order: 'newest', metaTimestamp: false, sendDate: false, timestampFormat: 'seconds' },
	{ filterAfterPaging: true },
];

describe.each(switches)('Appointment Starting Soon over HTTP, switches %o', (config) => {
	let store: Store;
	beforeEach(() => {
		emulator.reset({ appointments: 0 });
		emulator.configure(config);
		store = new Store();
	});

	it('emits an appointment once when it comes within 24 hours; never one further out, cancelled, or already started', async () => {
		const now = Date.now();
		const soon = emulator.book(now + 23 * HOUR);
		const confirmed = emulator.book(now + 2 * HOUR, { status: 'confirmed' });
		emulator.book(now + 25 * HOUR);
		const cancelled = emulator.book(now + 3 * HOUR);
		emulator.cancel(cancelled.id);
		emulator.book(now - 5 * MIN);
		emulator.add('appointments', { status: 'completed', appointment_time_start: new Date(now + HOUR).toISOString() });
		const first = await store.poll({});
		expect(ids(first)).toEqual(ids([soon, confirmed]));
		// Sorted by start.
		expect(first.map((r) => r.id)).toEqual([confirmed.id, soon.id]);
		expect(await store.poll({})).toEqual([]);
		store.restart();
		expect(await store.poll({})).toEqual([]);
	});

	it('a rescheduled appointment is emitted again for its new start; a cancelled one no more', async () => {
		const now = Date.now();
		const a = emulator.book(now + 30 * HOUR);
		const b = emulator.book(now + 20 * HOUR);
		expect(ids(await store.poll({}))).toEqual([b.id]);
		emulator.reschedule(a.id, now + 22 * HOUR);
		emulator.reschedule(b.id, now + 21 * HOUR);
		expect(ids(await store.poll({}))).toEqual(ids([a, b]));
		emulator.cancel(a.id);
		emulator.reschedule(a.id, now + 10 * HOUR);
		expect(await store.poll({})).toEqual([]);
	});

	it('custom lead time, status choice, and the late allowance', async () => {
		const now = Date.now();
		const booked = emulator.book(now + 50 * MIN);
		emulator.book(now + 40 * MIN, { status: 'confirmed' });
		emulator.book(now + 70 * MIN);
		const late = emulator.book(now - 5 * MIN);
		const params = { reminderLeadTime: 'custom', reminderLeadMinutes: 60, reminderStatuses: ['booked'] };
		expect(ids(await store.poll(params))).toEqual([booked.id]);
		// Another trigger (the helpers give every test node the same id): no hand-off of the first one's.
		resetPollMemory();
		const withLate = new Store();
		expect(ids(await withLate.poll({ ...params, reminderOptions: { lateMinutes: 10 } }))).toEqual(ids([booked, late]));
	});

	it('two polls at once emit each appointment once', async () => {
		const now = Date.now();
		const list = Array.from({ length: 30 }, (_, k) => emulator.book(now + (k + 1) * 30 * MIN));
		const working = JSON.parse(JSON.stringify(store.data)) as IDataObject;
		const params = { event: 'appointmentStartingSoon' };
		const outs = await Promise.all([
			poll(params, { credentials, staticData: working, mode: 'trigger' }),
			poll(params, { credentials, staticData: working, mode: 'trigger' }),
		]);
		const emitted = outs.flatMap((o) => json(o));
		expect(ids(emitted)).toEqual(ids(list.filter((a) => Date.parse(String(a.appointment_time_start)) <= now + DAY)));
		store.data = working;
		expect(await store.poll({})).toEqual([]);
	});

	it('ticks fired together (durable scheduler): the second starts from the state before the first was stored, and reminds nothing twice', async () => {
		const now = Date.now();
		const list = [emulator.book(now + HOUR), emulator.book(now + 2 * HOUR)];
		const before = JSON.parse(JSON.stringify(store.data)) as IDataObject;
		const first = await store.poll({});
		// n8n stores the first tick's state with its execution after the poll returned; the
		// second tick, fired together, got the state from before it.
		const second = json(await poll({ event: 'appointmentStartingSoon' }, { credentials, staticData: before, mode: 'trigger' }));
		expect(ids(first)).toEqual(ids(list));
		expect(second).toEqual([]);
		// Once the first is stored, polls go on from it.
		const later = emulator.book(now + 3 * HOUR);
		expect(ids(await store.poll({}))).toEqual([later.id]);
	});

	it('a failed page changes nothing: the next poll emits what that one would have', async () => {
		const a = emulator.book(Date.now() + HOUR);
		emulator.inject({ kind: 'status', status: 500, path: '/v1/appointments', times: 10 });
		await expect(store.poll({})).rejects.toThrow(/500/);
		emulator.faults = [];
		expect(ids(await store.poll({}))).toEqual([a.id]);
	});
});

describe('Appointment Starting Soon: settings, sample, horizon', () => {
	beforeEach(() => {
		emulator.reset({ appointments: 0 });
	});

	it('Fetch Test Event shows the next appointment to start and changes nothing', async () => {
		const store = new Store();
		await expect(store.poll({}, 'manual')).rejects.toThrow(/no open appointment starting after now/);
		const now = Date.now();
		emulator.book(now + 5 * DAY);
		const nextOne = emulator.book(now + 3 * DAY);
		expect(ids(await store.poll({}, 'manual'))).toEqual([nextOne.id]);
		expect(store.data).toEqual({});
	});

	it('refuses bad settings before any request, naming the field', async () => {
		const store = new Store();
		emulator.clearLog();
		await expect(store.poll({ reminderStatuses: [] })).rejects.toThrow(/^Statuses: choose at least one/);
		await expect(store.poll({ reminderLeadTime: 'custom', reminderLeadMinutes: 0 })).rejects.toThrow(/^Minutes Before:/);
		await expect(store.poll({ reminderOptions: { horizonDays: -1 } })).rejects.toThrow(/^Booked Within \(Days\):/);
		expect(emulator.requests).toHaveLength(0);
	});

	it('asks only for appointments booked within the horizon', async () => {
		const store = new Store();
		emulator.clearLog();
		await store.poll({ reminderOptions: { horizonDays: 10 } });
		const since = Date.parse(emulator.requests[0].query.since);
		expect(Math.abs(since - (Date.now() - 10 * DAY))).toBeLessThan(60_000);
	});
});

describe('Appointment Starting Soon: requests per poll', () => {
	const rows: string[] = [];
	afterAll(() => {
		process.stdout.write(
			`\nAppointment Starting Soon, requests per poll (booked + confirmed; as many closed ones again):\n` +
				`| open (booked/confirmed) | all in horizon | target Σ⌈n/100⌉ | 1st poll | steady polls |\n|---|---|---|---|---|\n${rows.join('\n')}\n`,
		);
	});

	it.each([
		[0, 0, 0],
		[30, 20, 20],
		[60, 30, 300],
		[150, 60, 210],
		[400, 250, 650],
		[1200, 800, 2000],
	])('%i booked, %i confirmed, %i closed', async (booked, confirmed, closed) => {
		emulator.reset({ appointments: 0 });
		const now = Date.now();
		const spread = (k: number) => now + DAY + ((k * 7919 * MIN) % (40 * DAY));
		for (let k = 0; k < booked; k++) emulator.book(spread(k));
		for (let k = 0; k < confirmed; k++) emulator.book(spread(k), { status: 'confirmed' });
		for (let k = 0; k < closed; k++) emulator.book(spread(k), { status: k % 2 ? 'cancelled' : 'completed' });
		// Booked before the horizon: never read.
		for (let k = 0; k < 50; k++) emulator.book(spread(k), { created_at: new Date(now - 90 * DAY).toISOString() });
		const store = new Store();
		const target = Math.max(1, Math.ceil(booked / 100)) + Math.max(1, Math.ceil(confirmed / 100));
		const counts: number[] = [];
		for (let p = 0; p < 4; p++) {
			emulator.clearLog();
			await store.poll({});
			counts.push(emulator.requests.length);
		}
		const steady = counts.slice(1);
		const all = booked + confirmed + closed;
		rows.push(`| ${booked + confirmed} (${booked}/${confirmed}) | ${all} | ${target} | ${counts[0]} | ${[...new Set(steady)].join(', ')} |`);
		for (const c of steady) expect(c).toBeLessThanOrEqual(target);
		// Where one page holds every appointment of the horizon, one request a poll.
		if (all <= 100) expect(counts).toEqual([1, 1, 1, 1]);
		// The first poll tries one page of all statuses at most before reading per status.
		expect(counts[0]).toBeLessThanOrEqual(target + 1);
	});
});

// --- Appointment → Get Many: Starts After / Starts Before ---

describe.each([{ order: 'newest' as const }, { order: 'oldest' as const, filterAfterPaging: true }])(
	'Appointment Get Many with Starts After / Before, switches %o',
	(config) => {
		const base = Date.UTC(2026, 11, 10, 12);
		const from = new Date(base + 2 * DAY).toISOString();
		const to = new Date(base + 5 * DAY).toISOString();
		const inWindow = (r: IDataObject) => {
			const s = Date.parse(String(r.appointment_time_start));
			return s >= Date.parse(from) && s < Date.parse(to);
		};
		/** The matching appointments in the order the API pages them. */
		const expected = (status?: string) => {
			const list = [...emulator.records.appointments].sort((a, b) =>
				a.created_at === b.created_at ? (a.id < b.id ? -1 : 1) : a.created_at < b.created_at ? -1 : 1,
			);
			if (config.order === 'newest') list.reverse();
			return list.filter((r) => inWindow(r) && (!status || r.status === status)).map((r) => r.id);
		};
		const getMany = (extra: IDataObject) =>
			executeNode({ resource: 'appointment', operation: 'getAll', ...extra }, { credentials }).then(json);

		beforeEach(() => {
			emulator.reset({ appointments: 0 });
			emulator.configure(config);
			const now = Date.now();
			// 350 appointments booked over the last days, starting over three weeks; one a minute apart.
			for (let k = 0; k < 350; k++) {
				emulator.book(base + ((k * 7919 * MIN) % (21 * DAY)), {
					created_at: new Date(now - (k + 1) * 60_000).toISOString(),
					status: k % 3 ? 'booked' : 'confirmed',
				});
			}
			emulator.book(base + 3 * DAY, { appointment_time_start: 'soon' });
			emulator.clearLog();
		});

		it('Limit counts matching appointments, reading pages only until it has them', async () => {
			const want = expected();
			expect(want.length).toBeGreaterThan(40);
			const out = await getMany({ limit: 40, filters: { startsAfter: from, startsBefore: to } });
			expect(out.map((r) => r.id)).toEqual(want.slice(0, 40));
			// Full pages (matches per page are unknown), no more of them than needed.
			expect(emulator.requests.every((r) => r.query.limit === '100')).toBe(true);
			const perPage = emulator.requests.length;
			expect(perPage).toBeLessThan(4);
			expect(emulator.requests.every((r) => r.query.startsAfter === undefined && r.query.startsBefore === undefined)).toBe(true);
		});

		it('Return All: every matching appointment across pages, each once; the API filters still sent', async () => {
			const out = await getMany({ returnAll: true, filters: { startsAfter: from, startsBefore: to, status: 'booked' } });
			expect(out.map((r) => r.id)).toEqual(expected('booked'));
			expect(emulator.requests.length).toBeGreaterThanOrEqual(config.filterAfterPaging ? 4 : 3);
			expect(emulator.requests.every((r) => r.query.status === 'booked')).toBe(true);
		});

		it('only one bound: Starts After alone, Starts Before alone', async () => {
			const after = await getMany({ returnAll: true, filters: { startsAfter: to } });
			expect(after.length).toBeGreaterThan(0);
			expect(after.every((r) => Date.parse(String(r.appointment_time_start)) >= Date.parse(to))).toBe(true);
			const before = await getMany({ returnAll: true, filters: { startsBefore: from } });
			expect(before.length + after.length + expected().length).toBe(350);
		});
	},
);

describe('Appointment Get Many start filters: dates and bad input', () => {
	beforeEach(() => {
		emulator.reset({ appointments: 0 });
		emulator.configure({});
	});
	const getMany = (filters: IDataObject) =>
		executeNode({ resource: 'appointment', operation: 'getAll', returnAll: true, filters }, { credentials }).then(json);

	it('a date without a zone is read in the workflow’s time zone', async () => {
		// n8n's default time zone (America/New_York): 2026-12-10 begins at 05:00 UTC.
		const early = emulator.book(Date.parse('2026-12-10T04:30:00Z'));
		const late = emulator.book(Date.parse('2026-12-10T05:30:00Z'));
		const nextDay = emulator.book(Date.parse('2026-12-11T06:00:00Z'));
		const out = await getMany({ startsAfter: '2026-12-10', startsBefore: '2026-12-11T00:00:00' });
		expect(out.map((r) => r.id)).toEqual([late.id]);
		expect([early.id, nextDay.id]).not.toContain(out[0].id);
	});

	it('refuses a bad date or an empty range before any request, naming the field', async () => {
		emulator.clearLog();
		await expect(getMany({ startsAfter: 'next week' })).rejects.toThrow(/^Starts After: "next week" is not a date/);
		await expect(getMany({ startsAfter: '2026-12-10T10:00:00Z', startsBefore: '2026-12-10T10:00:00Z' })).rejects.toThrow(
			/^Starts Before: .* is not later than Starts After/,
		);
		expect(emulator.requests).toHaveLength(0);
	});
});

describe('emulator: appointments over time', () => {
	beforeEach(() => emulator.reset({ appointments: 0 }));

	it('admin routes reschedule (start, end, date and updated_at change), cancel, and churn the book', async () => {
		const a = emulator.book(Date.now() + 3 * DAY);
		const before = String(a.updated_at);
		await new Promise((r) => setTimeout(r, 5));
		const start = Date.now() + 9 * DAY;
		const patched = await fetch(`${emulator.url}/__admin/records/appointments/${a.id}`, {
			method: 'PATCH',
			body: JSON.stringify({ appointment_time_start: new Date(start).toISOString() }),
		});
		expect(patched.status).toBe(200);
		expect(a.updated_at).not.toBe(before);
		expect(emulator.reschedule(a.id, start)).toMatchObject({
			appointment_time_start: new Date(start).toISOString(),
			appointment_time_end: new Date(start + HOUR).toISOString(),
			appointment_date: new Date(start).toISOString().slice(0, 10),
		});
		expect(emulator.cancel(a.id)?.status).toBe('cancelled');
		const missing = await fetch(`${emulator.url}/__admin/records/appointments/nope`, { method: 'PATCH', body: '{}' });
		expect(missing.status).toBe(404);
		const churn = (await (
			await fetch(`${emulator.url}/__admin/churn`, { method: 'POST', body: JSON.stringify({ book: 20, reschedule: 5, cancel: 3 }) })
		).json()) as { booked: string[]; rescheduled: string[]; cancelled: string[] };
		expect([churn.booked.length, churn.rescheduled.length, churn.cancelled.length]).toEqual([20, 5, 3]);
		const starts = emulator.records.appointments.map((r) => Date.parse(String(r.appointment_time_start)) - Date.now());
		// Booked an hour to six weeks ahead; rescheduled never into the past.
		expect(Math.min(...starts)).toBeGreaterThan(0);
		expect(Math.max(...starts)).toBeLessThanOrEqual(42 * DAY + HOUR + 8 * DAY);
		expect(emulator.records.appointments.filter((r) => r.status === 'cancelled').length).toBe(3 + 1);
	});
});
