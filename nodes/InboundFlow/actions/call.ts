import type { IDataObject, IExecuteFunctions } from 'n8n-workflow';

import { CALL_STATUSES, optionsCollection, statusFilter } from '../../shared/descriptions';
import { binaryPropertyField, callWithRecording, checkRecordingSettings, recordingOptions } from '../../shared/recording';
import { apiRequest } from '../../shared/transport';
import { asRecord, getManyOperation, getOperation, pick } from './factories';
import { callLocator, createdAfterFilter, phoneField, simplifyField, versionedIdFields } from './fields';
import type { FileOperation, Resource } from './types';
import { collection, locatorValue, requireUuid } from './validation';

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

// Call → Download Recording: the call's fields and its audio as a file (nodes/shared/recording.ts).
const downloadRecordingOperation: FileOperation = {
	value: 'downloadRecording',
	name: 'Download Recording',
	action: 'Download the recording of a call (returns an audio file as binary data, not text)',
	description: 'Download the audio recording of a call as a file, with the call’s fields',
	notForTools: true,
	properties: [
		...versionedIdFields('Call ID', '07f51470-ef1d-421c-a847-36e98732bb9b', callLocator),
		binaryPropertyField,
		optionsCollection(recordingOptions),
	],
	async executeItems(this: IExecuteFunctions, i: number) {
		const node = this.getNode();
		const value = this.getNodeParameter('callId', i);
		// Named as the panel shows it: "Call" (the picker, version 2) or "Call ID" (version 1).
		const id = requireUuid(node, locatorValue(value) !== value ? callLocator.displayName : 'Call ID', value, i);
		const settings = checkRecordingSettings(
			this,
			{ ...collection(this, 'options', i), binaryPropertyName: this.getNodeParameter('binaryPropertyName', i, 'data') },
			i,
		);
		const response = await apiRequest.call(this, {
			method: 'GET',
			path: `/v1/calls/${encodeURIComponent(id)}`,
			scope: 'calls:read',
			action: 'get a call',
			notFound: { what: 'Call', id },
			itemIndex: i,
		});
		const item = await callWithRecording.call(this, asRecord(response.data), settings, i);
		return item ? [item] : [];
	},
};

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
		downloadRecordingOperation,
	],
};
