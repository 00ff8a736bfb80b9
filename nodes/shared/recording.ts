// A call's recording as an n8n item: the fields that choose how (binary property, Max
// Size, what to do without a recording), shared by every node that offers the file,
// and the step from a call record to an item with the audio attached.
import type { IDataObject, INodeExecutionData, INodeProperties } from 'n8n-workflow';

import { inputError, toNodeError } from './transport/errors';
import {
	DEFAULT_MAX_RECORDING_MB,
	downloadRecording,
	NoRecordingError,
	type DownloadContext,
} from './transport/download';

export type IfNoRecording = 'fail' | 'skip' | 'noFile';

export const binaryPropertyField: INodeProperties = {
	displayName: 'Put Output File in Field',
	name: 'binaryPropertyName',
	type: 'string',
	default: 'data',
	required: true,
	hint: 'The name of the output binary field to put the recording in',
};

export const recordingOptions: INodeProperties[] = [
	{
		displayName: 'If No Recording',
		name: 'ifNoRecording',
		type: 'options',
		default: 'fail',
		description:
			'What to do with a call that has no recording (failed, blocked or still in progress: recording_url is null)',
		options: [
			{ name: 'Fail', value: 'fail', description: 'Stop with an error naming the call and its status' },
			{ name: 'Skip the Call', value: 'skip', description: 'Output nothing for it' },
			{ name: 'Output the Call Without a File', value: 'noFile', description: 'Output the call’s fields only' },
		],
	},
	{
		displayName: 'Max Size (MB)',
		name: 'maxSizeMb',
		type: 'number',
		typeOptions: { minValue: 1 },
		default: DEFAULT_MAX_RECORDING_MB,
		description:
			'Larger recordings are refused with an error: before the download when the server gives the size, else as soon as the limit is passed',
	},
];

export interface RecordingSettings {
	binaryPropertyName: string;
	maxSizeMb: number;
	ifNoRecording: IfNoRecording;
}

/** Checks the settings as read from a node's parameters; errors name the field. */
export function checkRecordingSettings(
	ctx: DownloadContext,
	raw: { binaryPropertyName?: unknown; maxSizeMb?: unknown; ifNoRecording?: unknown },
	itemIndex?: number,
): RecordingSettings {
	const node = ctx.getNode();
	const property = typeof raw.binaryPropertyName === 'string' ? raw.binaryPropertyName.trim() : '';
	if (!property) throw inputError(node, 'Put Output File in Field', 'is empty; enter a field name such as data', itemIndex);
	if (property.length > 100) throw inputError(node, 'Put Output File in Field', 'is longer than 100 characters', itemIndex);
	const maxSizeMb = raw.maxSizeMb === undefined || raw.maxSizeMb === '' ? DEFAULT_MAX_RECORDING_MB : Number(raw.maxSizeMb);
	if (!Number.isFinite(maxSizeMb) || maxSizeMb <= 0) {
		throw inputError(node, 'Max Size (MB)', `${String(raw.maxSizeMb)} is not a size above 0`, itemIndex);
	}
	const mode = raw.ifNoRecording ?? 'fail';
	if (mode !== 'fail' && mode !== 'skip' && mode !== 'noFile') {
		throw inputError(node, 'If No Recording', `"${String(mode)}" is not one of Fail, Skip the Call, Output the Call Without a File`, itemIndex);
	}
	return { binaryPropertyName: property, maxSizeMb, ifNoRecording: mode };
}

/**
 * The call as an item with its recording in `binaryPropertyName`; undefined when the
 * call has none and the settings say to skip it.
 */
export async function callWithRecording(
	this: DownloadContext,
	call: IDataObject,
	settings: RecordingSettings,
	itemIndex?: number,
): Promise<INodeExecutionData | undefined> {
	try {
		const recording = await downloadRecording.call(this, {
			call,
			maxBytes: Math.floor(settings.maxSizeMb * 1_000_000),
			itemIndex,
		});
		return { json: recording.call, binary: { [settings.binaryPropertyName]: recording.binary } };
	} catch (error) {
		// No recording: at once, or after reading the call again for a fresh URL.
		if (!(error instanceof NoRecordingError) || settings.ifNoRecording === 'fail') throw toNodeError(this.getNode(), error);
		return settings.ifNoRecording === 'skip' ? undefined : { json: call };
	}
}
