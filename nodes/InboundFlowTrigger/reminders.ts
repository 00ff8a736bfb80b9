// The polling trigger's "Appointment Starting Soon" event, kept apart from the node's
// description (the decision `remind` is pure and tested on its own). InboundFlow filters
// appointments only by creation time and status, so:
//  - every poll lists the open appointments (booked / confirmed, as chosen) created within
//    the horizon, whole, and picks those whose appointment_time_start lies within the lead
//    time; a cancelled one is no longer listed as open, so it is never reminded;
//  - each appointment is emitted once per start time: the state keeps, per id, the start
//    it was reminded for; a new start (rescheduled) is due again; an entry is dropped once
//    that start (plus the late allowance) has passed, when it can never be due again, so
//    the state holds at most the appointments starting within lead + late;
//  - one that has already started (or started more than the late allowance ago) is not
//    reminded, also when the trigger first sees it;
//  - the time is InboundFlow's (meta.timestamp, else the Date header; n8n's clock only when
//    the server gives none) and never moves backwards (a clock that jumps back cannot
//    bring back a dropped entry);
//  - the state is written only when the read ends (a failed page changes nothing), into the
//    node's static data, which every n8n poll engine saves with the emitted execution
//    (n8n 2.41: saveStaticData on emit; durable cursors: committed in the execution's
//    transaction); one poll per trigger at a time in a process (the trigger's guard).
import type { IDataObject, INodeExecutionData, INodeProperties, INodeTypeDescription, IPollFunctions } from 'n8n-workflow';
import { NodeOperationError } from 'n8n-workflow';

import { titleCase } from '../shared/descriptions';
import { DeadlineError } from '../shared/transport';
import { toNodeError } from '../shared/transport/errors';
import { MAX_PAGE_SIZE, paginate, type ListRequest } from '../shared/transport/pagination';
import { isObject } from '../shared/utils';
import { exclusivePoll, handOffPending, MAX_POLL_MS, ms, noteHandOff } from './poller';

export const REMINDER_EVENT = 'appointmentStartingSoon';
export const OPEN_STATUSES = ['booked', 'confirmed'];
export const REMINDER_STATE_VERSION = 1;
/** Where the event keeps its state in the node's static data (apart from the other events' `state`). */
export const STATE_KEY = 'reminders';
/** With two statuses and a cheaper read per status, every this many polls the read of all statuses is tried again. */
export const PROBE_EVERY = 60;
/** counts.all of a read of all statuses that was cut off: not cheaper than the reads per status. */
const NOT_CHEAPER = -1;

export interface ReminderSettings {
	statuses: string[];
	/** Remind this long before the start. */
	leadMs: number;
	/** Also remind appointments that started less than this long ago (0: only before the start). */
	lateMs: number;
	/** List appointments created within this long before now. */
	horizonMs: number;
}

export interface ReminderState {
	version: number;
	/** The latest server time seen (ISO): the clock never moves backwards. */
	clock: string;
	/** [id, start] of each appointment reminded, until that start plus the late allowance has passed. */
	reminded: Array<[string, string]>;
	/** Open appointments the last complete reads found, per status, and of all statuses (`all`). */
	counts?: Record<string, number>;
	/** Polls since the last read of all statuses. */
	sinceProbe?: number;
	/** Which hand-off this state is (see poller.ts's handOffPending): ticks fired together. */
	key?: string;
	rev?: number;
}

/** The hand-off key of this event's state (one state per trigger, whatever the settings). */
const HAND_OFF_KEY = 'reminders';

function isPair(value: unknown): value is [string, string] {
	return Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && typeof value[1] === 'string';
}

/** The stored state, or undefined (none yet, or unreadable: start afresh). */
export function readReminderState(value: unknown): ReminderState | undefined {
	if (!isObject(value) || value.version !== REMINDER_STATE_VERSION || typeof value.clock !== 'string') return undefined;
	const reminded = Array.isArray(value.reminded) ? value.reminded.filter(isPair) : [];
	const counts = isObject(value.counts) ? (value.counts as Record<string, number>) : undefined;
	const sinceProbe = typeof value.sinceProbe === 'number' ? value.sinceProbe : undefined;
	return { version: REMINDER_STATE_VERSION, clock: value.clock, reminded, ...(counts ? { counts } : {}), ...(sinceProbe !== undefined ? { sinceProbe } : {}) };
}

function startOf(record: IDataObject): number {
	return typeof record.appointment_time_start === 'string' ? ms(record.appointment_time_start) : 0;
}

/**
 * The decision of one poll: which of the listed appointments to emit now, and the state
 * to keep. `listed` may be partial (a poll that ran out of time) and may hold other
 * statuses (they are skipped). Emitted appointments are sorted by start.
 */
export function remind(
	previous: ReminderState | undefined,
	listed: IDataObject[],
	serverNowMs: number,
	settings: ReminderSettings,
): { due: IDataObject[]; state: ReminderState } {
	const now = Math.max(serverNowMs, previous ? ms(previous.clock) : 0);
	const reminded = new Map<string, string>(previous?.reminded ?? []);
	const due: IDataObject[] = [];
	const picked = new Set<string>();
	for (const record of listed) {
		const id = record.id;
		const start = startOf(record);
		if (typeof id !== 'string' || start === 0 || picked.has(id)) continue;
		if (!settings.statuses.includes(String(record.status))) continue;
		if (now < start - settings.leadMs || now >= start + settings.lateMs) continue;
		const before = reminded.get(id);
		if (before !== undefined && ms(before) === start) continue;
		picked.add(id);
		reminded.set(id, String(record.appointment_time_start));
		due.push(record);
	}
	due.sort((a, b) => startOf(a) - startOf(b) || (String(a.id) < String(b.id) ? -1 : 1));
	const kept: Array<[string, string]> = [];
	for (const [id, start] of reminded) if (ms(start) + settings.lateMs > now) kept.push([id, start]);
	const state: ReminderState = { version: REMINDER_STATE_VERSION, clock: new Date(now).toISOString(), reminded: kept };
	if (previous?.counts) state.counts = previous.counts;
	if (previous?.sinceProbe !== undefined) state.sinceProbe = previous.sinceProbe;
	return { due, state };
}

function pages(records: number): number {
	return Math.max(1, Math.ceil(records / MAX_PAGE_SIZE));
}

/**
 * The reads of one poll: one per status, or one of all statuses (undefined) when the last
 * reads say that costs fewer pages. Without a count of all statuses (first poll), and again
 * every PROBE_EVERY polls, it tries the read of all statuses first, cut off after `cap`
 * pages (fewer than the reads per status cost); if it does not end by then, the reads per
 * status follow in the same poll.
 */
export function plan(state: ReminderState | undefined, statuses: string[]): { reads: Array<string | undefined>; cap?: number } {
	if (statuses.length < 2) return { reads: statuses };
	const counts = state?.counts ?? {};
	const byStatus = statuses.reduce((sum, status) => sum + pages(counts[status] ?? 0), 0);
	if (counts.all !== undefined && counts.all !== NOT_CHEAPER && pages(counts.all) < byStatus) return { reads: [undefined] };
	if (counts.all === undefined || (state?.sinceProbe ?? 0) >= PROBE_EVERY) {
		return { reads: [undefined, ...statuses], cap: byStatus - 1 };
	}
	return { reads: statuses };
}

export interface ReadResult {
	records: IDataObject[];
	/** The latest server time of the answers (0: none sent one). */
	serverNowMs: number;
	/** Open appointments per status (and `all`) of each read that completed. */
	counts: Record<string, number>;
	/** Whether every read completed (false: the time budget ran out). */
	complete: boolean;
	requests: number;
}

/** Lists the appointments of the planned reads, created within the horizon. */
export async function readOpen(
	this: IPollFunctions,
	planned: { reads: Array<string | undefined>; cap?: number },
	settings: ReminderSettings,
	deadline: number,
): Promise<ReadResult> {
	// The horizon is days long: n8n's clock is close enough to ask from where (the decision uses the server's).
	const since = new Date(Date.now() - settings.horizonMs).toISOString();
	const out: ReadResult = { records: [], serverNowMs: 0, counts: {}, complete: true, requests: 0 };
	for (const status of planned.reads) {
		const qs: IDataObject = { since };
		if (status) qs.status = status;
		const req: ListRequest = { path: '/v1/appointments', qs, scope: 'appointments:read', action: 'list appointments', deadline };
		const cap = status === undefined ? planned.cap : undefined;
		const found: IDataObject[] = [];
		let whole = false;
		let read = 0;
		try {
			for await (const page of paginate.call(this, req)) {
				out.requests++;
				read++;
				if (page.serverTime) out.serverNowMs = Math.max(out.serverNowMs, ms(page.serverTime));
				found.push(...page.records);
				out.records.push(...page.records);
				if (!page.nextCursor) whole = true;
				else if (cap !== undefined && read >= cap) break;
			}
		} catch (error) {
			if (!(error instanceof DeadlineError)) throw toNodeError(this.getNode(), error);
			out.complete = false;
			// A read of all statuses that does not fit one poll costs more than reads per status.
			if (!status) out.counts.all = NOT_CHEAPER;
			break;
		}
		if (status) {
			out.counts[status] = found.filter((r) => r.status === status).length;
		} else if (whole) {
			out.counts.all = found.length;
			for (const open of OPEN_STATUSES) out.counts[open] = found.filter((r) => r.status === open).length;
			// Everything is read: the reads per status that followed as a fallback are not needed.
			break;
		} else {
			// Cut off after `cap` pages: it costs at least as much as the reads per status.
			out.counts.all = NOT_CHEAPER;
		}
	}
	return out;
}

/** One live poll: reads, decides, and returns what to emit and the state to keep. */
export async function pollDue(
	this: IPollFunctions,
	previousValue: unknown,
	settings: ReminderSettings,
	budgetMs: number,
): Promise<{ due: IDataObject[]; state: ReminderState; requests: number }> {
	const previous = readReminderState(previousValue);
	const planned = plan(previous, settings.statuses);
	const read = await readOpen.call(this, planned, settings, Date.now() + budgetMs);
	const serverNow = read.serverNowMs > 0 ? read.serverNowMs : Date.now();
	const { due, state } = remind(previous, read.records, serverNow, settings);
	state.counts = { ...(previous?.counts ?? {}), ...read.counts };
	state.sinceProbe = planned.reads.includes(undefined) ? 0 : (previous?.sinceProbe ?? 0) + 1;
	return { due, state, requests: read.requests };
}

// --- The event in the node's panel ---

const show = { displayOptions: { show: { event: [REMINDER_EVENT] } } };

export const REMINDER_PROPERTIES: INodeProperties[] = [
	{
		displayName:
			'InboundFlow cannot filter appointments by start time: each poll lists the open appointments created within the horizon (about one request per 100 per status) and the trigger picks those starting soon',
		name: 'reminderNotice',
		type: 'notice',
		default: '',
		...show,
	},
	{
		displayName: 'Remind',
		name: 'reminderLeadTime',
		type: 'options',
		default: '1440',
		description: 'How long before its start an appointment is emitted (once per start time)',
		options: [
			{ name: '24 Hours Before', value: '1440' },
			{ name: '2 Hours Before', value: '120' },
			{ name: 'Custom', value: 'custom' },
		],
		...show,
	},
	{
		displayName: 'Minutes Before',
		name: 'reminderLeadMinutes',
		type: 'number',
		typeOptions: { minValue: 1 },
		default: 60,
		description: 'How many minutes before its start an appointment is emitted',
		displayOptions: { show: { event: [REMINDER_EVENT], reminderLeadTime: ['custom'] } },
	},
	{
		displayName: 'Statuses',
		name: 'reminderStatuses',
		type: 'multiOptions',
		default: ['booked', 'confirmed'],
		description: 'Which appointments are reminded; cancelled ones never are',
		options: OPEN_STATUSES.map((value) => ({ name: titleCase(value), value })),
		...show,
	},
	{
		displayName: 'Options',
		name: 'reminderOptions',
		type: 'collection',
		placeholder: 'Add Option',
		default: {},
		...show,
		options: [
			{
				displayName: 'Booked Within (Days)',
				name: 'horizonDays',
				type: 'number',
				typeOptions: { minValue: 1 },
				default: 60,
				description:
					'Appointments booked (created in InboundFlow) within this many days are watched; one booked earlier is not reminded. Each poll reads about one request per 100 open appointments booked in that time, per status.',
			},
			{
				displayName: 'Also Remind Started Less Than (Minutes) Ago',
				name: 'lateMinutes',
				type: 'number',
				typeOptions: { minValue: 0 },
				default: 0,
				description:
					'An appointment that has already started is normally not reminded (e.g. n8n was down, or it was booked at the last minute). Set a number of minutes to still remind those that started less than that long ago.',
			},
		],
	},
];

/** Adds the event to the trigger's description: the Event option, its fields, the subtitle. */
export function withReminderEvent(description: INodeTypeDescription): INodeTypeDescription {
	const properties = [...description.properties];
	const eventIndex = properties.findIndex((p) => p.name === 'event');
	const eventProperty = { ...properties[eventIndex] };
	eventProperty.options = [
		...(eventProperty.options ?? []),
		{
			name: 'Appointment Starting Soon',
			value: REMINDER_EVENT,
			description: 'Triggers once per appointment when its start comes within the chosen time (e.g. 24 hours before)',
		},
	];
	properties[eventIndex] = eventProperty;
	// The other events' Options do not apply to this one.
	const optionsIndex = properties.findIndex((p) => p.name === 'options');
	if (optionsIndex >= 0) {
		const options = properties[optionsIndex];
		properties[optionsIndex] = {
			...options,
			displayOptions: { ...options.displayOptions, hide: { ...options.displayOptions?.hide, event: [REMINDER_EVENT] } },
		};
	}
	properties.splice(optionsIndex >= 0 ? optionsIndex : properties.length, 0, ...REMINDER_PROPERTIES);
	const names = Object.fromEntries(
		(eventProperty.options as Array<{ name: string; value: string }>).map((o) => [o.value, o.name]),
	);
	return {
		...description,
		subtitle: `={{${JSON.stringify(names)}[$parameter["event"]] || $parameter["event"]}}`,
		properties,
	};
}

/** The event's settings from the node's parameters; a clear error for each bad one. */
export function readSettings(this: IPollFunctions): ReminderSettings {
	const node = this.getNode();
	const fail = (field: string, problem: string) =>
		new NodeOperationError(node, `${field}: ${problem}`, { description: `Fix the "${field}" field of this trigger.` });
	const raw = this.getNodeParameter('reminderStatuses', OPEN_STATUSES) as unknown;
	const statuses = Array.isArray(raw) ? raw.map(String) : [];
	if (!statuses.length) throw fail('Statuses', 'choose at least one (Booked, Confirmed)');
	for (const status of statuses) {
		if (!OPEN_STATUSES.includes(status)) throw fail('Statuses', `"${status}" is not an open status (Booked, Confirmed)`);
	}
	const lead = String(this.getNodeParameter('reminderLeadTime', '1440'));
	const leadMinutes = lead === 'custom' ? Number(this.getNodeParameter('reminderLeadMinutes', 60)) : Number(lead);
	if (!Number.isFinite(leadMinutes) || leadMinutes <= 0) throw fail('Minutes Before', `${String(leadMinutes)} is not a number of minutes above 0`);
	const options = this.getNodeParameter('reminderOptions', {}) as IDataObject;
	const horizonDays = Number(options.horizonDays ?? 60);
	if (!Number.isFinite(horizonDays) || horizonDays <= 0) throw fail('Booked Within (Days)', `${String(options.horizonDays)} is not a number of days above 0`);
	const lateMinutes = Number(options.lateMinutes ?? 0);
	if (!Number.isFinite(lateMinutes) || lateMinutes < 0) {
		throw fail('Also Remind Started Less Than (Minutes) Ago', `${String(options.lateMinutes)} is not a number of minutes of 0 or more`);
	}
	return {
		statuses: [...new Set(statuses)].sort(),
		leadMs: leadMinutes * 60_000,
		lateMs: lateMinutes * 60_000,
		horizonMs: horizonDays * 86_400_000,
	};
}

/** The poll of this event (the node's poll() hands over to it). */
export async function pollStartingSoon(this: IPollFunctions): Promise<INodeExecutionData[][] | null> {
	const settings = readSettings.call(this);
	if (this.getMode() === 'manual') {
		// Fetch Test Event: the next open appointment to start, as a sample; changes nothing.
		const read = await readOpen.call(this, { reads: settings.statuses }, settings, Date.now() + MAX_POLL_MS);
		const now = read.serverNowMs || Date.now();
		const upcoming = read.records
			.filter((r) => settings.statuses.includes(String(r.status)) && startOf(r) > now)
			.sort((a, b) => startOf(a) - startOf(b));
		if (!upcoming.length) {
			throw new NodeOperationError(this.getNode(), 'InboundFlow has no open appointment starting after now', {
				description: `None of the ${settings.statuses.join(' or ')} appointments booked within the horizon starts in the future. Once one does, "Fetch Test Event" shows the next one to start as a sample.`,
			});
		}
		return [this.helpers.returnJsonArray([upcoming[0]])];
	}
	const staticData = this.getWorkflowStaticData('node');
	const engineBudget = typeof this.getPollBudgetMs === 'function' ? this.getPollBudgetMs() : MAX_POLL_MS;
	const budgetMs = Math.min(MAX_POLL_MS, engineBudget * 0.8);
	const guard = `${this.getWorkflow().id ?? ''}:${this.getNode().id}`;
	const stored = staticData[STATE_KEY];
	// An earlier poll's reminders are still on their way into n8n's database (ticks fired
	// together by the durable scheduler start from the state before them): nothing now.
	if (handOffPending(guard, HAND_OFF_KEY, stored)) return null;
	const result = await exclusivePoll(guard, 3 * MAX_POLL_MS, async () => await pollDue.call(this, stored, settings, budgetMs));
	// Another poll of this trigger still runs in this process: it emits, this one does nothing.
	if (!result) return null;
	const rev = isObject(stored) && typeof stored.rev === 'number' ? stored.rev : 0;
	const state: ReminderState = { ...result.state, key: HAND_OFF_KEY, rev: rev + 1 };
	staticData[STATE_KEY] = state as unknown as IDataObject;
	if (result.due.length) noteHandOff(guard, state as { key: string; rev: number });
	return result.due.length ? [this.helpers.returnJsonArray(result.due)] : null;
}
