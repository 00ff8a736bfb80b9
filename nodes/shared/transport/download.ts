// Downloads a call's recording into n8n's binary data store as a stream. The API key
// goes only to the Base URL's origin: a recording on another origin (a signed storage
// URL) is fetched without any Authorization, a redirect from the API to storage is
// followed without the key, and once the download has left the API's origin the key is
// never sent again, not even on a redirect back. Redirects are followed here, one hop
// at a time and bounded, never by the HTTP client.
import type { IBinaryData, IDataObject, IExecuteFunctions, INode, IPollFunctions, IWebhookFunctions } from 'n8n-workflow';
import { NodeApiError, NodeOperationError } from 'n8n-workflow';

import { header } from '../utils';
import { toNodeError } from './errors';
import {
	apiRequest,
	discardBody,
	BODY_DROPPED,
	RETRY_STATUSES,
	streamRequest,
	withCredentials,
	type ResolvedCredentials,
	type StreamAnswer,
	type StreamMode,
} from './index';

export type DownloadContext = IExecuteFunctions | IPollFunctions | IWebhookFunctions;
type Readable = Exclude<Parameters<IExecuteFunctions['helpers']['prepareBinaryData']>[0], Buffer>;

export const DEFAULT_MAX_RECORDING_MB = 200;
const MAX_REDIRECTS = 5;
const EXTENSIONS: Record<string, string> = {
	'audio/mpeg': 'mp3',
	'audio/mp3': 'mp3',
	'audio/wav': 'wav',
	'audio/x-wav': 'wav',
	'audio/wave': 'wav',
	'audio/ogg': 'ogg',
	'audio/webm': 'webm',
	'audio/mp4': 'm4a',
	'audio/x-m4a': 'm4a',
	'audio/flac': 'flac',
};

export interface RecordingRequest {
	/** The call as read from InboundFlow (id, status, recording_url). */
	call: IDataObject;
	/** Largest file accepted, in bytes. */
	maxBytes: number;
	itemIndex?: number;
	credentials?: ResolvedCredentials;
}

export interface Recording {
	binary: IBinaryData;
	/** Bytes stored. */
	bytes: number;
	/** The call as last read (read again when its signed URL had expired). */
	call: IDataObject;
}

/** The call has no recording (failed, blocked, in progress): `recording_url` is null. */
export class NoRecordingError extends NodeOperationError {}

function callIdOf(call: IDataObject): string {
	return typeof call.id === 'string' ? call.id : String(call.id ?? '');
}

/** A URL for messages: origin and path, never the query (a signed URL's signature is a secret). */
function shown(url: URL): string {
	return `${url.origin}${url.pathname}`;
}

function megabytes(bytes: number): string {
	const mb = bytes / 1_000_000;
	return `${mb >= 10 ? Math.round(mb) : Math.round(mb * 10) / 10} MB`;
}

export function noRecordingError(node: INode, call: IDataObject, itemIndex?: number): NoRecordingError {
	const status = typeof call.status === 'string' ? call.status : 'unknown';
	return new NoRecordingError(node, `Call "${callIdOf(call)}" has no recording (status: ${status})`, {
		itemIndex,
		description:
			'Calls that failed, were blocked or are still in progress have no recording (recording_url is null). Set Options → If No Recording to skip such calls or to output them without a file.',
	});
}

/** `recording_url` of a call as a URL; undefined when the call has none. */
function recordingUrlOf(node: INode, call: IDataObject, itemIndex?: number): URL | undefined {
	const value = call.recording_url;
	if (value === null || value === undefined || value === '') return undefined;
	let url: URL | undefined;
	try {
		url = new URL(String(value));
	} catch {
		url = undefined;
	}
	if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
		throw new NodeOperationError(node, `The recording_url of call "${callIdOf(call)}" is not an http(s) address`, {
			itemIndex,
		});
	}
	return url;
}

/** The file name from Content-Disposition, reduced to a safe base name; undefined when absent. */
export function dispositionFileName(value: string | undefined): string | undefined {
	if (!value || value.length > 1000) return undefined;
	let name: string | undefined;
	const extended = /filename\*\s*=\s*(?:UTF-8|utf-8)''([^;]+)/.exec(value);
	if (extended) {
		try {
			name = decodeURIComponent(extended[1].trim());
		} catch {
			name = undefined;
		}
	}
	if (name === undefined) {
		const plain = /filename\s*=\s*("([^"]*)"|[^;]+)/.exec(value);
		name = plain ? (plain[2] ?? plain[1]).trim() : undefined;
	}
	if (!name) return undefined;
	// Only the last path segment, without control characters or leading dots.
	const base = name.split(/[/\\]/).pop() ?? '';
	let clean = '';
	for (const ch of base) clean += ch.charCodeAt(0) < 32 || ch.charCodeAt(0) === 127 ? '' : ch;
	clean = clean.replace(/^\.+/, '').slice(0, 200);
	return clean || undefined;
}

function mimeTypeOf(value: string | undefined): string {
	const type = (value ?? '').split(';')[0].trim().toLowerCase();
	return /^[a-z0-9.+-]+\/[a-z0-9.+-]+$/.test(type) ? type : 'application/octet-stream';
}

function fileNameFor(callId: string, mimeType: string, url: URL, disposition: string | undefined): string {
	const fromServer = dispositionFileName(disposition);
	if (fromServer) return fromServer;
	const fromPath = /\.([a-z0-9]{2,5})$/i.exec(url.pathname)?.[1]?.toLowerCase();
	const ext = EXTENSIONS[mimeType] ?? fromPath ?? 'bin';
	return `call-${callIdOf({ id: callId }).replace(/[^A-Za-z0-9-]/g, '')}.${ext}`;
}

/** Past Max Size: by its Content-Length (`size`), or while streaming (no size known). */
function tooLarge(node: INode, callId: string, maxBytes: number, size: number | undefined, itemIndex?: number): NodeOperationError {
	const limit = `Max Size (${megabytes(maxBytes)})`;
	const message =
		size === undefined
			? `The recording of call "${callId}" is larger than ${limit}: the download was stopped there`
			: `The recording of call "${callId}" is ${megabytes(size)}, more than ${limit}`;
	return new NodeOperationError(node, message, {
		itemIndex,
		description: 'Raise Options → Max Size (MB) to download larger recordings.',
	});
}

/** What one hop of the download came to. */
type Hop = { file: Recording } | { redirect: string | undefined; status: number } | { expired: true };
type Judged = Hop | typeof BODY_DROPPED;

/**
 * Downloads the recording of `request.call` into n8n's binary data store. Throws
 * NoRecordingError when the call has none. A 403 from another origin (an expired signed
 * URL) reads the call again once for a fresh URL. Every request goes through the
 * transport (streamRequest): its pacing, and its retries of 429, 502/503/504 and dropped
 * connections, before or during the body. Errors never contain the API key or a signed
 * URL's query.
 */
export async function downloadRecording(this: DownloadContext, request: RecordingRequest): Promise<Recording> {
	return await withCredentials(this, request.credentials, request.itemIndex, async (credentials) => await download.call(this, request, credentials));
}

async function download(
	this: DownloadContext,
	request: RecordingRequest,
	credentials: ResolvedCredentials,
): Promise<Recording> {
	const node = this.getNode();
	const { itemIndex } = request;
	let call = request.call;
	const callId = callIdOf(call);
	const apiOrigin = new URL(credentials.baseUrl).origin;
	const action = `download the recording of call "${callId}"`;
	let refreshed = false;

	let start = recordingUrlOf(node, call, itemIndex);
	if (!start) throw noRecordingError(node, call, itemIndex);

	for (;;) {
		let url = start;
		// Once the download leaves the API's origin, the key is never sent again.
		let keyAllowed = true;
		let hop: Hop;
		for (let redirects = 0; ; redirects++) {
			const withKey = keyAllowed && url.origin === apiOrigin;
			if (!withKey) keyAllowed = false;
			const at = url;
			const mode: StreamMode<Hop> = {
				url: at,
				withKey,
				consume: async (answer) => await judge.call(this, answer, at, withKey, refreshed, call, request),
				connectionError: (code, attempts, duringBody) =>
					new NodeApiError(node, { reason: 'connection' }, {
						message: duringBody
							? `Could not ${action}: the connection to ${at.origin} dropped during the download, after ${attempts} attempts`
							: `Could not ${action}: the connection to ${at.origin} failed after ${attempts} attempts`,
						description: `Retries ran out (error code: ${code}).`,
						itemIndex,
					}),
			};
			const description = { path: at.pathname, action, scope: 'calls:read', notFound: { what: 'Call', id: callId }, itemIndex, credentials };
			hop = await streamRequest(this, description, mode);
			if (!('redirect' in hop)) break;
			let next: URL | undefined;
			try {
				next = hop.redirect ? new URL(hop.redirect, url) : undefined;
			} catch {
				next = undefined;
			}
			if (!next || (next.protocol !== 'https:' && next.protocol !== 'http:')) {
				throw new NodeApiError(node, { httpCode: String(hop.status) }, {
					message: `Could not ${action}: ${url.origin} answered HTTP ${hop.status} without a valid http(s) Location`,
					httpCode: String(hop.status),
					itemIndex,
				});
			}
			if (redirects >= MAX_REDIRECTS) {
				throw new NodeApiError(node, { httpCode: String(hop.status) }, {
					message: `Could not ${action}: more than ${MAX_REDIRECTS} redirects (last from ${shown(url)})`,
					httpCode: String(hop.status),
					itemIndex,
				});
			}
			url = next;
		}
		if ('file' in hop) return hop.file;

		// A signed URL that has expired: read the call again for a fresh one, once.
		refreshed = true;
		const response = await apiRequest.call(this, {
			method: 'GET',
			path: `/v1/calls/${encodeURIComponent(callId)}`,
			scope: 'calls:read',
			action: `read call "${callId}" again for a fresh recording URL`,
			notFound: { what: 'Call', id: callId },
			itemIndex,
			credentials,
		});
		const data = response.data;
		call = typeof data === 'object' && data !== null && !Array.isArray(data) ? (data as IDataObject) : call;
		start = recordingUrlOf(node, call, itemIndex);
		if (!start) throw noRecordingError(node, call, itemIndex);
	}
}

/**
 * One answer the transport did not retry: a redirect to follow, an expired signed URL to
 * refresh, the audio (streamed into n8n's binary data), or an error naming the call.
 */
async function judge(
	this: DownloadContext,
	answer: StreamAnswer,
	url: URL,
	onApi: boolean,
	refreshed: boolean,
	call: IDataObject,
	request: RecordingRequest,
): Promise<Judged> {
	const node = this.getNode();
	const { status, headers } = answer;
	const { itemIndex, maxBytes } = request;
	const callId = callIdOf(call);
	if (status !== 200) discardBody(answer.body);
	if (status >= 300 && status < 400 && status !== 304) return { redirect: header(headers, 'location'), status };
	if (status === 403 && !onApi && !refreshed) return { expired: true };
	if (status !== 200) {
		throw statusError(node, status, url, onApi, refreshed, `download the recording of call "${callId}"`, callId, answer.attempts, itemIndex);
	}

	// 200: the audio.
	const length = Number(header(headers, 'content-length'));
	if (Number.isFinite(length) && length > maxBytes) {
		discardBody(answer.body);
		throw tooLarge(node, callId, maxBytes, length, itemIndex);
	}
	const mimeType = mimeTypeOf(header(headers, 'content-type'));
	const fileName = fileNameFor(callId, mimeType, url, header(headers, 'content-disposition'));
	const source = answer.body as Readable;
	let bytes = 0;
	let overLimit = false;
	let dropped = false;
	source.on('error', () => (dropped = true));
	source.on('aborted', () => (dropped = true));
	// Counts the bytes as they pass and stops the download past Max Size. Each chunk is
	// passed on as it comes, read only as the store asks for more (backpressure).
	const counted = source.map(
		(chunk: Buffer) => {
			bytes += chunk.length;
			if (bytes > maxBytes) {
				overLimit = true;
				throw new NodeOperationError(node, 'over Max Size', { itemIndex });
			}
			return chunk;
		},
	) as Readable;
	try {
		const binary = await this.helpers.prepareBinaryData(counted, fileName, mimeType);
		// A body shorter than its Content-Length was cut off.
		if (dropped || (Number.isFinite(length) && bytes !== length)) return BODY_DROPPED;
		return { file: { binary, bytes, call } };
	} catch (error) {
		source.destroy();
		counted.destroy();
		if (overLimit) throw tooLarge(node, callId, maxBytes, undefined, itemIndex);
		// Anything that went wrong with the body itself is a dropped connection: retried.
		if (dropped) return BODY_DROPPED;
		throw toNodeError(node, error);
	}
}

function statusError(
	node: INode,
	status: number,
	url: URL,
	onApi: boolean,
	refreshed: boolean,
	action: string,
	callId: string,
	attempts: number,
	itemIndex: number | undefined,
): NodeApiError {
	const from = onApi ? 'InboundFlow' : url.origin;
	let message: string;
	let description = '';
	if (status === 404) {
		message = `The recording of call "${callId}" was not found (HTTP 404 from ${from})`;
		description = 'InboundFlow may have deleted it (recordings are kept for a limited time).';
	} else if (status === 401 && onApi) {
		message = `InboundFlow rejected the API key while trying to ${action} (HTTP 401)`;
		description = 'Open the InboundFlow API credential and paste a valid key.';
	} else if (status === 401 || status === 403) {
		message = refreshed
			? `The storage host ${url.origin} refused the recording of call "${callId}" (HTTP ${status}) even with a fresh URL read from InboundFlow`
			: `${from} refused to ${action.replace(/^download/, 'serve')} (HTTP ${status})`;
		description = onApi
			? 'The API key needs the "calls:read" scope (Settings → API in InboundFlow).'
			: 'The node never sends the API key to another host; the recording URL must work on its own.';
	} else {
		const tries = RETRY_STATUSES.has(status) || status === 429 ? `, after ${attempts} attempts` : '';
		message = `Could not ${action}: ${from} answered HTTP ${status}${tries}`;
	}
	return new NodeApiError(node, { httpCode: String(status), url: shown(url) }, {
		message,
		description,
		httpCode: String(status),
		itemIndex,
	});
}
