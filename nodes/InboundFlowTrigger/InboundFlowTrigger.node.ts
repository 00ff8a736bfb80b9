import type {
	IDataObject,
	INodeExecutionData,
	INodeProperties,
	INodeType,
	INodeTypeDescription,
	IPollFunctions,
} from 'n8n-workflow';
import { NodeConnectionTypes, NodeOperationError } from 'n8n-workflow';

import {
	APPOINTMENT_STATUSES,
	CALL_STATUSES,
	LEAD_STATUSES,
	optionsCollection,
	statusFilter,
	urgencyFilter,
} from '../shared/descriptions';
import { attachRecording, triggerRecordingFields, triggerRecordingSettings } from '../shared/recording';
import type { ListRequest } from '../shared/transport/pagination';
import {
	exclusivePoll,
	handOffPending,
	MAX_POLL_MS,
	newestRecord,
	noteHandOff,
	pollRecords,
	readState,
	shelfEntry,
	shelfFits,
	shelfKey,
} from './poller';
// Appointment Starting Soon (issue 26): its fields and its poll live in reminders.ts.
import { pollStartingSoon, REMINDER_EVENT, withReminderEvent } from './reminders';

interface EventSpec {
	/** Default lookback in minutes (see the Lookback option). */
	lookback: number;
	name: string;
	noun: string;
	path: string;
	scope: string;
	filters: INodeProperties[];
}

export const EVENTS: Record<string, EventSpec> = {
	newCall: {
		// A call's created_at is its start; with a status filter it shows up when it ends.
		lookback: 15,
		name: 'New Call',
		noun: 'call',
		path: '/v1/calls',
		scope: 'calls:read',
		filters: [statusFilter('calls', CALL_STATUSES)],
	},
	newLead: {
		lookback: 2,
		name: 'New Lead',
		noun: 'lead',
		path: '/v1/leads',
		scope: 'leads:read',
		filters: [statusFilter('leads', LEAD_STATUSES), urgencyFilter],
	},
	newAppointment: {
		lookback: 2,
		name: 'New Appointment',
		noun: 'appointment',
		path: '/v1/appointments',
		scope: 'appointments:read',
		filters: [statusFilter('appointments', APPOINTMENT_STATUSES)],
	},
	newContact: { lookback: 2, name: 'New Contact', noun: 'contact', path: '/v1/contacts', scope: 'contacts:read', filters: [] },
};

function filterProperties(): INodeProperties[] {
	return Object.entries(EVENTS)
		.filter(([, spec]) => spec.filters.length > 0)
		.map(([event, spec]) => ({
			displayName: 'Filters',
			name: `${event}Filters`,
			type: 'collection',
			placeholder: 'Add Filter',
			default: {},
			displayOptions: { show: { event: [event] } },
			options: spec.filters,
		}));
}

/** The lookback in minutes: the event's default unless a custom one is set (older: lookbackMinutes > 0). */
function lookbackMinutes(options: IDataObject, spec: EventSpec): number {
	const custom = Number(options.lookbackMinutes ?? 0);
	if (options.lookback === 'auto') return spec.lookback;
	return custom > 0 ? custom : spec.lookback;
}

/** A stable key of the settings a state belongs to. */
function settingsKey(event: string, filters: IDataObject, lookback: number): string {
	const sorted = Object.keys(filters)
		.sort()
		.map((k) => [k, filters[k]]);
	return JSON.stringify([event, sorted, lookback]);
}

export class InboundFlowTrigger implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'InboundFlow Trigger',
		name: 'inboundFlowTrigger',
		icon: { light: 'file:inboundflow-trigger.svg', dark: 'file:inboundflow-trigger.dark.svg' },
		// A full URL is used as it is; without one n8n appends ?utm_… after the codex URL's #anchor.
		documentationUrl: 'https://github.com/inboundflow/n8n-nodes-inboundflow#polling-trigger',
		group: ['trigger'],
		version: 1,
		subtitle: `={{${JSON.stringify(Object.fromEntries(Object.entries(EVENTS).map(([k, v]) => [k, v.name])))}[$parameter["event"]] || $parameter["event"]}}`,
		// n8n's nodes panel shows this on the InboundFlow entry, which also holds the actions.
		description:
			'Starts the workflow on a new call, lead, appointment or contact (checked on a schedule); the actions read and create them',
		defaults: { name: 'InboundFlow Trigger' },
		polling: true,
		inputs: [],
		outputs: [NodeConnectionTypes.Main],
		credentials: [{ name: 'inboundFlowApi', required: true }],
		properties: [
			{
				displayName: 'Event',
				name: 'event',
				type: 'options',
				noDataExpression: true,
				default: 'newLead',
				options: Object.entries(EVENTS).map(([value, spec]) => ({
					name: spec.name,
					value,
					description: `Triggers on every new ${spec.noun}`,
				})),
			},
			...filterProperties(),
			// New Call → Download Recording (issue 25): the file attached to each call.
			...triggerRecordingFields({ event: ['newCall'] }, 'each new call'),
			optionsCollection([
				{
					displayName: 'On Activation, Also Emit the Last (Hours)',
					name: 'firstRunHours',
					type: 'number',
					typeOptions: { minValue: 0 },
					default: 0,
					description:
						'On activation the trigger normally starts from now and emits nothing old. Set a number of hours to also emit the records created in that many hours before the first activation (a later change of settings never emits old records again).',
				},
				{
					displayName: 'Lookback',
					name: 'lookback',
					type: 'options',
					default: 'auto',
					description:
						'How far back each poll looks again for records that appear late. Automatic: 15 minutes for calls (a call is listed when it ends, but its created_at is its start), 2 minutes otherwise. Raise it above your longest calls when filtering on completed calls. Changing it starts a new baseline.',
					options: [
						{ name: 'Automatic (15 Min for Calls, 2 Min Otherwise)', value: 'auto' },
						{ name: 'Custom', value: 'custom' },
					],
				},
				{
					displayName: 'Lookback (Minutes)',
					name: 'lookbackMinutes',
					type: 'number',
					typeOptions: { minValue: 0.01 },
					default: 15,
					displayOptions: { show: { lookback: ['custom'] } },
					description: 'How far back each poll looks again for records that appear late, in minutes',
				},
				{
					displayName: 'Max Records per Poll',
					name: 'maxPerPoll',
					type: 'number',
					typeOptions: { minValue: 100 },
					default: 1000,
					description:
						'After a long pause (e.g. n8n was down) the backlog is emitted in portions of about this size (whole pages of 100), one per poll, without losing any',
				},
			]),
		],
	};

	constructor() {
		this.description = withReminderEvent(this.description);
	}

	async poll(this: IPollFunctions): Promise<INodeExecutionData[][] | null> {
		const event = this.getNodeParameter('event') as string;
		if (event === REMINDER_EVENT) return await pollStartingSoon.call(this);
		const spec = EVENTS[event];
		if (!spec) throw new NodeOperationError(this.getNode(), `Event: "${event}" is not a supported event`);
		const filters = spec.filters.length
			? ((this.getNodeParameter(`${event}Filters`, {}) as IDataObject) ?? {})
			: {};
		const options = this.getNodeParameter('options', {}) as IDataObject;
		const qs: IDataObject = {};
		for (const [name, value] of Object.entries(filters)) if (value !== '' && value !== undefined) qs[name] = value;
		const req: ListRequest = { path: spec.path, qs, scope: spec.scope, action: `list ${spec.noun}s` };
		// Checked before any request: a bad setting fails every poll with the field named.
		const recording = event === 'newCall' ? triggerRecordingSettings.call(this) : undefined;
		const started = Date.now();

		if (this.getMode() === 'manual') {
			const sample = await newestRecord.call(this, req);
			if (!sample) {
				throw new NodeOperationError(this.getNode(), `InboundFlow has no ${spec.noun} matching these filters yet`, {
					description: `Once there is one (e.g. after a test call to your InboundFlow number), "Fetch Test Event" shows the newest ${spec.noun} as a sample.`,
				});
			}
			if (!recording) return [this.helpers.returnJsonArray([sample])];
			const item = await attachRecording.call(this, sample, sample, recording, started + MAX_POLL_MS, 'the test event\'s time');
			return [[item ?? { json: sample }]];
		}

		const staticData = this.getWorkflowStaticData('node');
		const engineBudget = typeof this.getPollBudgetMs === 'function' ? this.getPollBudgetMs() : MAX_POLL_MS;
		const budgetMs = Math.min(MAX_POLL_MS, engineBudget * 0.8);
		const lookback = lookbackMinutes(options, spec);
		const key = settingsKey(event, qs, lookback);
		const guard = `${this.getWorkflow().id ?? ''}:${this.getNode().id}`;
		// Without a state of its own for these settings, a poll starts from the shelved one
		// when that was taken in place of exactly the state the node has (see poller.ts).
		const shelf = this.getWorkflowStaticData('global');
		const shelved = shelfKey(this.getNode().id);
		const ownRaw = staticData.state;
		const own = readState(ownRaw, key) !== undefined;
		if (own && shelf[shelved] !== undefined) delete shelf[shelved];
		const fromShelf = !own && shelfFits(shelf[shelved], key, ownRaw);
		const previous = fromShelf ? shelf[shelved] : ownRaw;
		// An earlier poll's records are still on their way into n8n's database: this tick
		// (fired together with it) would read them again.
		if (handOffPending(guard, key, previous)) return null;
		const result = await exclusivePoll(guard, budgetMs, async () => {
			const polled = await pollRecords.call(this, req, key, previous, {
				maxPerPoll: Math.max(100, Number(options.maxPerPoll ?? 1000)),
				firstRunHours: Math.max(0, Number(options.firstRunHours ?? 0)),
				budgetMs,
				overlapMs: lookback * 60_000,
			});
			// The recordings of the calls this poll selected, inside the poll's own budget (the
			// guard is still held, so no other poll of this trigger runs meanwhile). Each call is
			// emitted once whatever its download does: without the file when it fails or runs out
			// of time (see nodes/shared/recording.ts). The selection and the state stay as read.
			if (!recording || !polled.state || !polled.records.length) return { ...polled, items: undefined };
			const items: INodeExecutionData[] = [];
			for (const call of polled.records) {
				const item = await attachRecording.call(this, call, call, recording, started + budgetMs, 'the poll\'s time');
				if (item) items.push(item);
			}
			return { ...polled, items };
		});
		// Another poll of this trigger still runs, or time ran out before anything was read.
		if (!result?.state) return null;
		const { state } = result;
		const records = result.items ?? this.helpers.returnJsonArray(result.records);
		staticData.state = state as unknown as IDataObject;
		// Only a new starting point is shelved, with the state it replaces. A poll that
		// continued from the shelf leaves it as it was: if n8n then fails to store that poll's
		// execution, the next poll reads the same records again instead of skipping them.
		if (!own && !fromShelf) shelf[shelved] = shelfEntry(state, ownRaw);
		if (records.length) noteHandOff(guard, state);
		return records.length ? [records] : null;
	}
}
