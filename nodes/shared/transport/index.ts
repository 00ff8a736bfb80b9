// The one module that talks to InboundFlow: authentication (through n8n's
// httpRequestWithAuthentication), pacing, bounded retries and error mapping.
import type {
	IDataObject,
	IExecuteFunctions,
	IHttpRequestMethods,
	ILoadOptionsFunctions,
	IN8nHttpFullResponse,
	INode,
	IPollFunctions,
	IWebhookFunctions,
} from 'n8n-workflow';
import { sleep } from 'n8n-workflow';

import {
	apiError,
	inputError,
	networkError,
	protocolError,
	redact,
	requestIdOf,
	type RequestDescription,
} from './errors';
import { backoff, block, budgetKey, delayBefore, observe, rateLimitDelay, settings } from './pacing';
import { isObject } from '../utils';

export const CREDENTIAL_NAME = 'inboundFlowApi';
export const DEFAULT_BASE_URL = 'https://api.inboundflow.app';

export type InboundFlowContext = IExecuteFunctions | IPollFunctions | IWebhookFunctions | ILoadOptionsFunctions;

export interface InboundFlowCredentials {
	apiKey: string;
	baseUrl?: string;
}

export interface ApiRequest extends RequestDescription {
	method: IHttpRequestMethods;
	qs?: IDataObject;
	body?: IDataObject;
	/** Error statuses returned to the caller instead of thrown (e.g. 409). */
	acceptStatuses?: number[];
	/** Credentials already read (the pager reads them once per traversal). */
	credentials?: ResolvedCredentials;
}

export interface ApiResponse {
	/** The parsed body as sent. */
	body: unknown;
	/** `body.data` where the answer wraps it, else the body. */
	data: unknown;
	status: number;
	requestId?: string;
}

const RETRY_STATUSES = new Set([502, 503, 504]);
/** Connection errors that prove the request never reached the server. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
const CONNECTION_CODES = [
	...NOT_SENT_CODES,
	'ECONNRESET',
	'ECONNABORTED',
	'ETIMEDOUT',
	'ESOCKETTIMEDOUT',
	'EPIPE',
	'ERR_SOCKET_CONNECTION_TIMEOUT',
];


/** Base URL without trailing slash; https only, but for localhost. */
export function checkBaseUrl(node: INode, value: string | undefined, itemIndex?: number): string {
	const text = (value ?? '').trim() || DEFAULT_BASE_URL;
	let url: URL;
	try {
		url = new URL(text);
	} catch {
		throw inputError(node, 'Base URL', `"${text}" is not a URL (expected e.g. ${DEFAULT_BASE_URL})`, itemIndex);
	}
	const local = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
	if (url.protocol === 'http:' && !local) {
		throw inputError(
			node,
			'Base URL',
			`"${text}" uses http://, which would send the API key unencrypted; use https:// (http:// is accepted only for localhost and 127.0.0.1)`,
			itemIndex,
		);
	}
	if (url.protocol !== 'https:' && url.protocol !== 'http:') {
		throw inputError(node, 'Base URL', `"${text}" must start with https://`, itemIndex);
	}
	return text.replace(/\/+$/, '');
}

/** Finds a connection error code anywhere in an error's cause chain. */
export function connectionErrorCode(error: unknown): string | undefined {
	let current: unknown = error;
	for (let depth = 0; depth < 6 && current; depth++) {
		if (isObject(current) || current instanceof Error) {
			const record = current as Record<string, unknown>;
			const code = record.code;
			if (typeof code === 'string' && CONNECTION_CODES.includes(code)) return code;
			const message = typeof record.message === 'string' ? record.message : '';
			const found = CONNECTION_CODES.find((c) => message.includes(c));
			if (found) return found;
			if (/socket hang up/i.test(message)) return 'ECONNRESET';
			current = record.cause;
		} else {
			break;
		}
	}
	return undefined;
}

function parseBody(raw: unknown): { ok: true; value: unknown } | { ok: false } {
	if (raw === undefined || raw === null || raw === '') return { ok: true, value: undefined };
	if (typeof raw !== 'string') return { ok: true, value: raw };
	try {
		return { ok: true, value: JSON.parse(raw) as unknown };
	} catch {
		return { ok: false };
	}
}

function unwrap(body: unknown): unknown {
	if (isObject(body) && 'data' in body && !('has_more' in body)) return body.data;
	return body;
}

/** Waits, ending early (with the abort reason) when the execution is cancelled. */
async function wait(ctx: InboundFlowContext, ms: number): Promise<void> {
	const signal = 'getExecutionCancelSignal' in ctx ? ctx.getExecutionCancelSignal() : undefined;
	await sleep(ms, signal);
}

export interface ResolvedCredentials {
	baseUrl: string;
	apiKey: string;
}

export async function getCredentials(this: InboundFlowContext, itemIndex?: number): Promise<ResolvedCredentials> {
	const credentials = (await this.getCredentials(CREDENTIAL_NAME, itemIndex)) as unknown as InboundFlowCredentials;
	return {
		baseUrl: checkBaseUrl(this.getNode(), credentials.baseUrl, itemIndex),
		apiKey: String(credentials.apiKey ?? ''),
	};
}

/**
 * Sends one API request. Waits as the rate-limit headers ask; retries 429 (any
 * method: a 429 proves nothing was applied), and 502/503/504, dropped connections
 * and malformed bodies for GET only; a POST is retried after a connection error only
 * when the error proves it was never sent. Every retry is bounded.
 */
export async function apiRequest(this: InboundFlowContext, req: ApiRequest): Promise<ApiResponse> {
	const node = this.getNode();
	const { baseUrl, apiKey } = req.credentials ?? (await getCredentials.call(this, req.itemIndex));
	const key = budgetKey(baseUrl, apiKey);
	const idempotent = req.method === 'GET';
	let retries = 0;
	let rateLimitRetries = 0;

	for (;;) {
		const pause = delayBefore(key, Date.now());
		if (pause > 0) await wait(this, pause);

		let response: IN8nHttpFullResponse;
		try {
			response = (await this.helpers.httpRequestWithAuthentication.call(this, CREDENTIAL_NAME, {
				method: req.method,
				url: `${baseUrl}${req.path}`,
				qs: req.qs,
				body: req.body,
				json: true,
				encoding: 'text',
				returnFullResponse: true,
				ignoreHttpStatusErrors: true,
				timeout: settings.timeoutMs,
			})) as IN8nHttpFullResponse;
		} catch (error) {
			const code = connectionErrorCode(error);
			if (code === undefined) {
				const message = error instanceof Error ? error.message : String(error);
				throw networkError(node, baseUrl, redact(message, apiKey).slice(0, 200), retries + 1, req, apiKey);
			}
			const retriable = idempotent || NOT_SENT_CODES.has(code);
			if (retriable && retries < settings.maxRetries) {
				await wait(this, backoff(retries++));
				continue;
			}
			throw networkError(node, baseUrl, code, retries + 1, req, apiKey);
		}

		const headers = (response.headers ?? {}) as Record<string, unknown>;
		const status = response.statusCode;
		observe(key, headers, Date.now());
		const parsed = parseBody(response.body);
		const body = parsed.ok ? parsed.value : response.body;

		if (status === 429) {
			const delay = rateLimitDelay(headers, rateLimitRetries, Date.now());
			if (rateLimitRetries < settings.maxRateLimitRetries && delay <= settings.maxRetryAfterMs) {
				rateLimitRetries++;
				block(key, Date.now() + delay);
				await wait(this, delay);
				continue;
			}
			throw apiError(node, status, body, headers, req, apiKey);
		}
		if (RETRY_STATUSES.has(status) && idempotent && retries < settings.maxRetries) {
			await wait(this, backoff(retries++));
			continue;
		}
		if (status >= 400 && !req.acceptStatuses?.includes(status)) {
			throw apiError(node, status, body, headers, req, apiKey);
		}
		if (!parsed.ok) {
			if (idempotent && retries < settings.maxRetries) {
				await wait(this, backoff(retries++));
				continue;
			}
			throw protocolError(node, `the body is not valid JSON (HTTP ${status})`, req, requestIdOf(undefined, headers));
		}
		return { body, data: unwrap(body), status, requestId: requestIdOf(body, headers) };
	}
}

