// Fields of the action node's operations.
import type { INodeProperties } from 'n8n-workflow';

export const returnAllField: INodeProperties = {
	displayName: 'Return All',
	name: 'returnAll',
	type: 'boolean',
	default: false,
	description: 'Whether to return all results or only up to a given limit',
};

export const limitField: INodeProperties = {
	displayName: 'Limit',
	name: 'limit',
	type: 'number',
	typeOptions: { minValue: 1 },
	default: 50,
	description: 'Max number of results to return',
	displayOptions: { show: { returnAll: [false] } },
};

export const simplifyField: INodeProperties = {
	displayName: 'Simplify',
	name: 'simplify',
	type: 'boolean',
	default: true,
	description:
		'Whether to return a simplified version of the response instead of the raw data (drops the transcript and messages)',
};

export function idField(displayName: string, name: string, example: string): INodeProperties {
	return {
		displayName,
		name,
		type: 'string',
		required: true,
		default: '',
		placeholder: example,
		description: `The ID (a UUID) of the ${displayName.replace(/ ID$/, '').toLowerCase()}`,
	};
}

export function phoneField(displayName: string, name: string, description: string, required = false): INodeProperties {
	return {
		displayName,
		name,
		type: 'string',
		default: '',
		required,
		placeholder: '+14155551234',
		description,
	};
}

export function createdAfterFilter(noun: string): INodeProperties {
	return {
		displayName: 'Created After',
		name: 'createdAfter',
		type: 'dateTime',
		default: '',
		description: `Only ${noun} created after this moment (sent to InboundFlow as \`since\`)`,
	};
}

/** Starts After / Starts Before: filters on an appointment's start that the node applies itself. */
export const startsFilters: INodeProperties[] = [
	{
		displayName: 'Starts After',
		name: 'startsAfter',
		type: 'dateTime',
		default: '',
		description:
			'Only appointments starting at or after this moment (a date without a time zone is read in the workflow’s time zone). Filtered by the node after InboundFlow’s own filters, as InboundFlow cannot filter by start time: it reads every page the other filters leave, so combine it with Created After where you can. Limit counts the matching appointments.',
	},
	{
		displayName: 'Starts Before',
		name: 'startsBefore',
		type: 'dateTime',
		default: '',
		description:
			'Only appointments starting before this moment (a date without a time zone is read in the workflow’s time zone). Filtered by the node after InboundFlow’s own filters, as InboundFlow cannot filter by start time: it reads every page the other filters leave, so combine it with Created After where you can. Limit counts the matching appointments.',
	},
];
