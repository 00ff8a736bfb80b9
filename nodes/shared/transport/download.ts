// Downloads a call's recording into n8n's binary data store as a stream. The API key
// goes only to the Base URL's origin: a recording on another origin (a signed storage
// URL) is fetched without any Authorization, a redirect from the API to storage is
// followed without the key, and once the download has left the API's origin the key is
// never sent again, not even on a redirect back. Redirects are followed here, one hop
// at a time and bounded, never by the HTTP client.
import type {
	IBinaryData,
	IDataObject,
	IExecuteFunctions,
	IHttpRequestOptions,
	IN8nHttpFullResponse,
	INode,
	IPollFunctions,
	IWebhookFunctions,
} from 'n8n-workflow';
import { NodeApiError, NodeOperationError, sleep } from 'n8n-workflow';

import { header } from '../utils';
import { redactError, toNodeError } from './errors';
import {
	apiRequest,
	connectionErrorCode,
	CREDENTIAL_NAME,
	getCredentials,
	type ResolvedCredentials,
} from './index';
import { backoff, budgetKey, delayBefore, observe, parseRetryAfter, rateLimited, settings, taking } from './pacing';

export type DownloadContext = IExecuteFunctions | IPollFunctions | IWebhookFunctions;
type Readable = Exclude<Parameters<IExecuteFunctions['helpers']['prepareBinaryData']>[0], Buffer>;

export const DEFAULT_MAX_RECORDING_MB = 200;
const MAX_REDIRECTS = 5;
const RETRY_STATUSES = new Set([502, 503, 504]);
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

class TooLargeError extends Error {}

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

async function wait(ctx: DownloadContext, ms: number): Promise<void> {
	const signal = 'getExecutionCancelSignal' in ctx ? ctx.getExecutionCancelSignal() : undefined;
	if (ms > 0) await sleep(ms, signal);
}

/** Throws away a body that will not be read, so its connection is freed. */
function discard(body: unknown): void {
	const stream = body as { destroy?: () => void; resume?: () => void } | undefined;
	if (stream && typeof stream.destroy === 'function') stream.destroy();
}

interface Hop {
	status: number;
	headers: Record<string, unknown>;
	body: unknown;
}

/**
 * Downloads the recording of `request.call` into n8n's binary data store. Throws
 * NoRecordingError when the call has none. A 403 from another origin (an expired signed
 * URL) reads the call again once for a fresh URL. 429 (on the API origin), 502/503/504
 * and dropped connections, before or during the body, are retried as the transport
 * retries a GET. Errors never contain the API key or a signed URL's query.
 */
export async function downloadRecording(this: DownloadContext, request: RecordingRequest): Promise<Recording> {
	const credentials = request.credentials ?? (await getCredentials.call(this, request.itemIndex));
	try {
		return await download.call(this, request, credentials);
	} catch (error) {
		throw redactError(error, [credentials.apiKey]);
	}
}

async function download(
	this: DownloadContext,
	request: RecordingRequest,
	credentials: ResolvedCredentials,
): Promise<Recording> {
	const node = this.getNode();
	const { itemIndex, maxBytes } = request;
	let call = request.call;
	const callId = callIdOf(call);
	const apiOrigin = new URL(credentials.baseUrl).origin;
	const key = budgetKey(credentials.baseUrl, credentials.apiKey);
	const action = `download the recording of call "${callId}"`;
	let refreshed = false;
	let retries = 0;
	let rateLimitRetries = 0;

	let start = recordingUrlOf(node, call, itemIndex);
	if (!start) throw noRecordingError(node, call, itemIndex);

	/** One GET, the key attached only when `withKey` (the URL is then on the API origin). */
	const get = async (url: URL, withKey: boolean): Promise<Hop> => {
		// Paced like every other request with the key (checked and taken in one step).
		if (withKey) {
			for (let d = delayBefore(key, Date.now()); d > 0; d = delayBefore(key, Date.now())) {
				await wait(this, Math.min(d, settings.maxRetryAfterMs));
			}
		}
		const slot = withKey ? taking(key, Date.now()) : undefined;
		const signal = 'getExecutionCancelSignal' in this ? this.getExecutionCancelSignal() : undefined;
		const options: IHttpRequestOptions = {
			method: 'GET',
			url: url.toString(),
			encoding: 'stream',
			returnFullResponse: true,
			ignoreHttpStatusErrors: true,
			disableFollowRedirect: true,
			timeout: settings.timeoutMs,
			abortSignal: signal,
		};
		let response: IN8nHttpFullResponse | undefined;
		try {
			response = (
				withKey
					? await this.helpers.httpRequestWithAuthentication.call(this, CREDENTIAL_NAME, options)
					: await this.helpers.httpRequest(options)
			) as IN8nHttpFullResponse;
		} finally {
			// No answer: the slot it held is settled as such.
			if (slot && response === undefined) observe(key, slot, {}, 0, Date.now());
		}
		const headers = (response.headers ?? {}) as Record<string, unknown>;
		if (slot) observe(key, slot, headers, response.statusCode, Date.now());
		return { status: response.statusCode, headers, body: response.body };
	};

	for (;;) {
		let url = start;
		// Once the download leaves the API's origin, the key is never sent again.
		let keyAllowed = true;
		let hop: Hop | undefined;
		let failure: unknown;
		for (let redirects = 0; ; redirects++) {
			const withKey = keyAllowed && url.origin === apiOrigin;
			if (!withKey) keyAllowed = false;
			try {
				hop = await get(url, withKey);
			} catch (error) {
				failure = error;
				hop = undefined;
				break;
			}
			if (hop.status < 300 || hop.status >= 400 || hop.status === 304) break;
			discard(hop.body);
			const location = header(hop.headers, 'location');
			let next: URL | undefined;
			try {
				next = location ? new URL(location, url) : undefined;
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

		if (hop === undefined) {
			const code = connectionErrorCode(failure);
			if (code !== undefined && retries < settings.maxRetries) {
				await wait(this, backoff(retries++));
				continue;
			}
			if (code !== undefined) {
				throw new NodeApiError(node, { reason: 'connection' }, {
					message: `Could not ${action}: the connection to ${url.origin} failed after ${retries + 1} attempts`,
					description: `Retries ran out (error code: ${code}).`,
					itemIndex,
				});
			}
			throw toNodeError(node, failure);
		}

		const { status, headers } = hop;
		const onApi = url.origin === apiOrigin && keyAllowed;
		if (status !== 200) discard(hop.body);
		if (status === 429 && onApi) {
			const verdict = rateLimited(key, headers, rateLimitRetries, Date.now());
			if ('wait' in verdict && rateLimitRetries < settings.maxRateLimitRetries) {
				rateLimitRetries++;
				await wait(this, Math.min(verdict.wait, settings.maxRetryAfterMs));
				continue;
			}
		}
		if ((RETRY_STATUSES.has(status) || (status === 429 && !onApi)) && retries < settings.maxRetries) {
			const retryAfter = status === 429 ? parseRetryAfter(header(headers, 'retry-after'), Date.now()) : undefined;
			await wait(this, Math.min(retryAfter ?? backoff(retries), settings.maxRetryAfterMs));
			retries++;
			continue;
		}
		if (status === 403 && !onApi && !refreshed) {
			// A signed URL that has expired: read the call again for a fresh one.
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
			continue;
		}
		if (status !== 200) throw statusError(node, status, url, onApi, refreshed, action, callId, retries, itemIndex);

		// 200: the audio.
		const length = Number(header(headers, 'content-length'));
		if (Number.isFinite(length) && length > maxBytes) {
			discard(hop.body);
			throw tooLarge(node, callId, maxBytes, length, itemIndex);
		}
		const mimeType = mimeTypeOf(header(headers, 'content-type'));
		const fileName = fileNameFor(callId, mimeType, url, header(headers, 'content-disposition'));
		let bytes = 0;
		let overLimit = false;
		let dropped = false;
		const source = hop.body as Readable;
		source.on('error', () => (dropped = true));
		source.on('aborted', () => (dropped = true));
		// Counts the bytes as they pass and stops the download past Max Size.
		const guarded = source.map((chunk: Buffer) => {
			bytes += chunk.length;
			if (bytes > maxBytes) {
				overLimit = true;
				throw new TooLargeError('over Max Size');
			}
			return chunk;
		}) as Readable;
		try {
			const binary = await this.helpers.prepareBinaryData(guarded, fileName, mimeType);
			// A body shorter than its Content-Length was cut off.
			if (Number.isFinite(length) && bytes !== length) {
				dropped = true;
				throw new Error(`the body ended after ${bytes} of ${length} bytes`);
			}
			return { binary, bytes, call };
		} catch (error) {
			source.destroy();
			if (overLimit) {
				throw tooLarge(node, callId, maxBytes, undefined, itemIndex);
			}
			if (dropped || connectionErrorCode(error) !== undefined) {
				if (retries < settings.maxRetries) {
					await wait(this, backoff(retries++));
					continue;
				}
				throw new NodeApiError(node, { reason: 'connection' }, {
					message: `Could not ${action}: the connection to ${url.origin} dropped during the download, after ${retries + 1} attempts`,
					itemIndex,
				});
			}
			throw toNodeError(node, error);
		}
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
	retries: number,
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
		const attempts = RETRY_STATUSES.has(status) || status === 429 ? `, after ${retries + 1} attempts` : '';
		message = `Could not ${action}: ${from} answered HTTP ${status}${attempts}`;
	}
	return new NodeApiError(node, { httpCode: String(status), url: shown(url) }, {
		message,
		description,
		httpCode: String(status),
		itemIndex,
	});
}
