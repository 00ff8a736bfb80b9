import type { IDataObject, IExecuteFunctions } from 'n8n-workflow';

import { CALL_STATUSES, statusFilter } from '../../shared/descriptions';
import { getManyOperation, getOperation, pick } from './factories';
import { callLocator, createdAfterFilter, phoneField, simplifyField } from './fields';
import type { Resource } from './types';

const simplifyCall = pick([
	'id',
	'caller_phone',
	'caller_name',
	'status',
	'duration_seconds',
	'summary',
	'transfer_status',
	'recording_url',
	'started_at',
	'ended_at',
	'contact_id',
	'created_at',
]);

function callOutput(this: IExecuteFunctions, record: IDataObject, i: number): IDataObject[] {
	const output = this.getNodeParameter('output', i, 'call') as string;
	if (output === 'messages') {
		const messages = Array.isArray(record.messages) ? (record.messages as IDataObject[]) : [];
		return messages.map((message, index) => ({ call_id: record.id, index, ...message }));
	}
	return (this.getNodeParameter('simplify', i, false) as boolean) ? [simplifyCall(record)] : [record];
}

export const callResource: Resource = {
	value: 'call',
	name: 'Call',
	operations: [
		getManyOperation({
			noun: 'calls',
			path: '/v1/calls',
			scope: 'calls:read',
			simplify: simplifyCall,
			returns: 'caller, status, duration and summary of each; filter by status, caller phone or created after',
			filters: [
				createdAfterFilter('calls'),
				phoneField('Phone', 'phone', 'Only calls from this number (exact match, E.164)'),
				statusFilter('calls', CALL_STATUSES),
			],
		}),
		getOperation({
			what: 'Call',
			path: '/v1/calls',
			scope: 'calls:read',
			idName: 'callId',
			example: '07f51470-ef1d-421c-a847-36e98732bb9b',
			locator: callLocator,
			returns: 'the call with its summary, transcript and the whole conversation as messages',
			extraProperties: [
				{
					displayName: 'Output',
					name: 'output',
					type: 'options',
					default: 'call',
					options: [
						{ name: 'Call With Messages', value: 'call', description: 'One item: the call and its conversation' },
						{ name: 'One Item per Message', value: 'messages', description: 'One item for each message of the conversation' },
					],
				},
				{ ...simplifyField, default: false, displayOptions: { show: { output: ['call'] } } },
			],
			output: callOutput,
		}),
	],
};
