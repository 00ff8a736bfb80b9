// A call's recording as an n8n item: the fields that choose how (binary property, Max
// Size, what to do without a recording), shared by every node that offers the file,
// and the step from a call record to an item with the audio attached.
import type {
	IDataObject,
	IExecuteFunctions,
	INodeExecutionData,
	INodeProperties,
	IPollFunctions,
	IWebhookFunctions,
} from 'n8n-workflow';
import { sleep } from 'n8n-workflow';

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

// ── The triggers' Download Recording (issue 25) ─────────────────────────────────────
// A trigger never loses a call over its recording: a call without one is emitted without
// a file (or skipped, when the user asks for that), and a download that fails or does not
// finish within the trigger's time limit is emitted without the file, the reason in
// `recording_error`. Nothing here throws for one call's recording, so a poll never fails
// (and reads its calls again) and a delivery is never refused because of a recording.

/** Added to an emitted item whose recording could not be downloaded: the reason. */
export const RECORDING_ERROR_FIELD = 'recording_error';

/**
 * The Download Recording switch of a trigger and its settings, shown when `show` holds
 * (New Call for the polling trigger, Fetch Full Call for the webhook trigger).
 */
export function triggerRecordingFields(show: Record<string, Array<string | boolean>>, what: string): INodeProperties[] {
	const shown = { show: { ...show, downloadRecording: [true] } };
	return [
		{
			displayName: 'Download Recording',
			name: 'downloadRecording',
			type: 'boolean',
			default: false,
			displayOptions: { show },
			description: `Whether to attach the recording of ${what} as a file (binary data). A call without a recording, or whose download fails or does not finish in time, is still emitted, without the file (see "${RECORDING_ERROR_FIELD}").`,
		},
		{ ...binaryPropertyField, displayOptions: shown },
		{
			displayName: 'Recording Options',
			name: 'recordingOptions',
			type: 'collection',
			placeholder: 'Add Option',
			default: {},
			displayOptions: shown,
			options: [
				{
					displayName: 'If No Recording',
					name: 'ifNoRecording',
					type: 'options',
					default: 'noFile',
					description:
						'What to do with a call that has no recording (failed, blocked or still in progress: recording_url is null). A download that fails is always emitted without the file.',
					options: [
						{ name: 'Emit the Call Without a File', value: 'noFile' },
						{
							name: 'Skip the Call',
							value: 'skip',
							description: 'Emit nothing for it. A call still in progress has no recording yet: filter on Status = Completed.',
						},
					],
				},
				recordingOptions[1],
			],
		},
	];
}

type TriggerContext = IPollFunctions | IWebhookFunctions;

/** The trigger's recording settings, checked before any request; undefined when the switch is off. */
export function triggerRecordingSettings(this: TriggerContext): RecordingSettings | undefined {
	if (this.getNodeParameter('downloadRecording', false) !== true) return undefined;
	const options = (this.getNodeParameter('recordingOptions', {}) as IDataObject) ?? {};
	const mode = options.ifNoRecording ?? 'noFile';
	if (mode !== 'noFile' && mode !== 'skip') {
		throw inputError(this.getNode(), 'If No Recording', `"${String(mode)}" is not one of Emit the Call Without a File, Skip the Call`);
	}
	return checkRecordingSettings(this, {
		binaryPropertyName: this.getNodeParameter('binaryPropertyName', 'data'),
		maxSizeMb: options.maxSizeMb,
		ifNoRecording: mode,
	});
}

const EXPIRED = Symbol('expired');

/**
 * `json` as an item with the recording of `call` attached; without the file (and
 * `recording_error` saying why) when the download fails or is not done by `deadline`
 * (epoch ms; it is then aborted); undefined when the call has no recording and the
 * settings say to skip it. Never throws for the recording.
 */
export async function attachRecording(
	this: TriggerContext,
	json: IDataObject,
	call: IDataObject,
	settings: RecordingSettings,
	deadline: number,
	limit: string,
): Promise<INodeExecutionData | undefined> {
	const callId = typeof call.id === 'string' ? call.id : String(call.id ?? '');
	const withError = (reason: string): INodeExecutionData => ({ json: { ...json, [RECORDING_ERROR_FIELD]: reason } });
	const left = deadline - Date.now();
	const late = `The recording of call "${callId}" was not downloaded: ${limit} ran out`;
	if (left <= 0) return withError(late);
	// Triggers have no execution to cancel: the download gets a signal of its own (the
	// download module passes the context's cancel signal to every request and wait), so at
	// the deadline the request and its body stream are aborted, not left running.
	const abort = new AbortController();
	const context = Object.create(this, { getExecutionCancelSignal: { value: () => abort.signal } }) as IExecuteFunctions;
	const timer = new AbortController();
	const pending = downloadRecording.call(context, { call, maxBytes: Math.floor(settings.maxSizeMb * 1_000_000) });
	pending.catch(() => undefined);
	try {
		const outcome = await Promise.race([
			pending,
			sleep(left, timer.signal).then(
				(): typeof EXPIRED => EXPIRED,
				(): typeof EXPIRED => EXPIRED,
			),
		]);
		if (outcome === EXPIRED) {
			abort.abort();
			return withError(late);
		}
		return { json, binary: { [settings.binaryPropertyName]: outcome.binary } };
	} catch (error) {
		if (error instanceof NoRecordingError) return settings.ifNoRecording === 'skip' ? undefined : { json };
		return withError(toNodeError(this.getNode(), error).message);
	} finally {
		timer.abort();
	}
}
