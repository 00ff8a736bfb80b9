// Field descriptions and value lists used by more than one node.
import type { INodeProperties } from 'n8n-workflow';

export const CALL_STATUSES = ['completed', 'failed', 'blocked', 'in-progress', 'forwarding'];
export const LEAD_STATUSES = ['new', 'contacted', 'qualified', 'converted', 'lost'];
export const URGENCIES = ['low', 'medium', 'high'];
export const APPOINTMENT_STATUSES = ['booked', 'confirmed', 'cancelled', 'completed', 'no_show'];

/** "in-progress" → "In Progress", "no_show" → "No Show". */
export function titleCase(value: string): string {
	return value
		.split(/[-_]/)
		.map((w) => w.charAt(0).toUpperCase() + w.slice(1))
		.join(' ');
}

/** The "Options" collection of rarely used settings. */
export function optionsCollection(options: INodeProperties[]): INodeProperties {
	return { displayName: 'Options', name: 'options', type: 'collection', placeholder: 'Add Option', default: {}, options };
}

export function statusFilter(noun: string, values: string[]): INodeProperties {
	const firstValue = values[0];
	return {
		displayName: 'Status',
		name: 'status',
		type: 'options',
		default: firstValue,
		description: `Only ${noun} with this status`,
		options: values.map((value) => ({
			name: titleCase(value),
			value,
		})),
	};
}

export const urgencyFilter: INodeProperties = {
	displayName: 'Urgency',
	name: 'urgency',
	type: 'options',
	default: 'high',
	description: 'Only leads with this urgency',
	options: URGENCIES.map((value) => ({ name: titleCase(value), value })),
};
