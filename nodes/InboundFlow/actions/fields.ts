// Fields of the action node's operations.
import type { INodeProperties } from 'n8n-workflow';

import { ID_EXAMPLE, ID_PATTERN, ID_PROBLEM } from './validation';

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

// ── Record locators (node version 2) ─────────────────────────────────────────────
// A record's ID as n8n's resource locator: From List (a searchable, paged list read by a
// listSearch method of the node) or By ID (checked in the panel with ID_PATTERN, the rule
// requireUuid applies at run time). requireUuid reads both shapes.

export interface LocatorSpec {
	/** Shown above the field, e.g. 'Call'. */
	displayName: string;
	/** Parameter name, e.g. 'callId' (the same as version 1's plain field). */
	name: string;
	/** Lower-case noun for texts, e.g. 'call'. */
	noun: string;
	/** Name of the node's `methods.listSearch` function that lists the records. */
	searchListMethod: string;
	/** What each entry of the list shows, for the description. */
	shows: string;
}

export function idLocator(spec: LocatorSpec): INodeProperties {
	return {
		displayName: spec.displayName,
		name: spec.name,
		type: 'resourceLocator',
		required: true,
		default: { mode: 'list', value: '' },
		description: `The ${spec.noun}: pick it from the list (${spec.shows}; search by name, or by an exact E.164 phone number) or enter its ID`,
		modes: [
			{
				displayName: 'From List',
				name: 'list',
				type: 'list',
				placeholder: `Select a ${spec.noun}...`,
				typeOptions: { searchListMethod: spec.searchListMethod, searchable: true },
			},
			{
				displayName: 'By ID',
				name: 'id',
				type: 'string',
				placeholder: ID_EXAMPLE,
				validation: [{ type: 'regex', properties: { regex: ID_PATTERN, errorMessage: `The value ${ID_PROBLEM}` } }],
			},
		],
	};
}

export const callLocator = idLocator({
	displayName: 'Call',
	name: 'callId',
	noun: 'call',
	searchListMethod: 'searchCalls',
	shows: 'newest first, as caller · phone · date · status',
});

export const contactLocator = idLocator({
	displayName: 'Contact',
	name: 'contactId',
	noun: 'contact',
	searchListMethod: 'searchContacts',
	shows: 'as name · phone',
});

/**
 * The ID field of an operation in each node version: version 1 keeps its plain text
 * field (saved workflows open and run unchanged), version 2 and later get `locator`.
 */
export function versionedIdFields(label: string, example: string, locator: INodeProperties): INodeProperties[] {
	return [
		{ ...idField(label, locator.name, example), displayOptions: { show: { '@version': [1] } } },
		{ ...locator, displayOptions: { show: { '@version': [{ _cnd: { gte: 2 } }] } } },
	];
}
