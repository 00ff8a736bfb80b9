// The one module that talks to InboundFlow: authentication (through n8n's
// httpRequestWithAuthentication), pacing, bounded retries and error mapping.
import type {
	IDataObject,
	IExecuteFunctions,
	IHttpRequestMethods,
	IHttpRequestOptions,
	ILoadOptionsFunctions,
	IN8nHttpFullResponse,
	INode,
	IPollFunctions,
	IWebhookFunctions,
} from 'n8n-workflow';
import { NodeApiError, sleep } from 'n8n-workflow';

import { checkBaseUrlText, DEFAULT_BASE_URL } from '../baseUrl';
import { header, isObject } from '../utils';
import {
	apiError,
	inputError,
	networkError,
	protocolError,
	redactError,
	redirectError,
	requestIdOf,
	serverMessage,
	toNodeError,
	unexpectedError,
	type RequestDescription,
} from './errors';
import {
	backoff,
	budgetKey,
	delayBefore,
	observe,
	parseRetryAfter,
	rateLimited,
	rateLimitUseOf,
	settings,
	taking,
	type RateLimitUse,
} from './pacing';

export const CREDENTIAL_NAME = 'inboundFlowApi';
export { DEFAULT_BASE_URL };

export type InboundFlowContext = IExecuteFunctions | IPollFunctions | IWebhookFunctions | ILoadOptionsFunctions;

export interface InboundFlowCredentials {
	apiKey: string;
	baseUrl?: string;
	/** Absent in credentials saved before it existed: those leave room (the default). */
	rateLimitUse?: string;
}

/** The server's time of an answer: `meta.timestamp` when sent, else the HTTP `Date` header. */
export function serverTimeOf(body: unknown, headers: Record<string, unknown>): string | undefined {
	const meta = isObject(body) && isObject(body.meta) ? body.meta : undefined;
	const stamp = typeof meta?.timestamp === 'string' ? Date.parse(meta.timestamp) : NaN;
	if (!Number.isNaN(stamp)) return new Date(stamp).toISOString();
	const date = header(headers, 'date');
	const parsed = date === undefined || date.length > 100 ? NaN : Date.parse(date);
	return Number.isNaN(parsed) ? undefined : new Date(parsed).toISOString();
}

export interface ApiRequest extends RequestDescription {
	method: IHttpRequestMethods;
	qs?: IDataObject;
	body?: IDataObject;
	/** Error statuses returned to the caller instead of thrown (e.g. 409). */
	acceptStatuses?: number[];
	/** Credentials already read (the pager reads them once per traversal). */
	credentials?: ResolvedCredentials;
	/** Epoch ms by which the caller must have its answer; waiting longer throws DeadlineError. */
	deadline?: number;
	/** Stream mode (a GET whose body is a file): see StreamMode. */
	stream?: StreamMode<unknown>;
}

/**
 * Stream mode: one GET of an absolute URL, its body handed on unread (never parsed or
 * held), under the same pacing, retries and error wording as every other request.
 * 429 and 502/503/504 are retried here (the body thrown away); every other answer, any
 * status, goes to `consume`, whose result the request returns. A body that stops before
 * its end (`consume` returns BODY_DROPPED, or throws a connection error) is retried like
 * a connection that drops before the answer.
 */
export interface StreamMode<T> {
	url: URL;
	/** Send the key (only on the Base URL's origin; refused elsewhere). Paced only then. */
	withKey: boolean;
	consume: (answer: StreamAnswer) => Promise<T | typeof BODY_DROPPED>;
	/** The error when connection retries run out (default: the transport's wording). */
	connectionError?: (code: string, attempts: number, duringBody: boolean) => Error;
}

export interface StreamAnswer {
	status: number;
	headers: Record<string, unknown>;
	/** The body as it arrives (a Readable stream). */
	body: unknown;
	/** Attempts made so far, this one included. */
	attempts: number;
}

/** What `consume` returns when the body stopped before its end (retried like ECONNRESET). */
export const BODY_DROPPED = Symbol('body dropped');

/** Throws away a body that will not be read, so its connection is freed. */
export function discardBody(body: unknown): void {
	const stream = body as { destroy?: () => void } | undefined;
	if (stream && typeof stream.destroy === 'function') stream.destroy();
}

/** The caller's time budget would be spent before an answer could arrive. */
export class DeadlineError extends Error {
	constructor(action: string) {
		super(`out of time to ${action}`);
		this.name = 'DeadlineError';
	}
}

export interface ApiResponse {
	/** The parsed body as sent. */
	body: unknown;
	/** `body.data` where the answer wraps it, else the body. */
	data: unknown;
	status: number;
	requestId?: string;
	/** The server's clock: meta.timestamp, else the HTTP Date header (ISO); never the local clock. */
	serverTime?: string;
}

export const RETRY_STATUSES = new Set([502, 503, 504]);
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
export function checkBaseUrl(node: INode, value: unknown, itemIndex?: number): string {
	const check = checkBaseUrlText(value);
	if (!check.ok) throw inputError(node, 'Base URL', check.problem, itemIndex);
	return check.baseUrl;
}

/** An error and the errors it wraps (n8n keeps the original as `cause`), outermost first. */
function causeChain(error: unknown): Array<Record<string, unknown>> {
	const chain: Array<Record<string, unknown>> = [];
	let current: unknown = error;
	while ((isObject(current) || current instanceof Error) && chain.length < 6) {
		chain.push(current as Record<string, unknown>);
		current = (current as Record<string, unknown>).cause;
	}
	return chain;
}

/** Finds a connection error code anywhere in an error's cause chain. */
export function connectionErrorCode(error: unknown): string | undefined {
	for (const record of causeChain(error)) {
		const code = record.code;
		if (typeof code === 'string' && CONNECTION_CODES.includes(code)) return code;
		const message = typeof record.message === 'string' ? record.message : '';
		const found = CONNECTION_CODES.find((c) => message.includes(c));
		if (found) return found;
		if (/socket hang up/i.test(message)) return 'ECONNRESET';
	}
	return undefined;
}

/** The message of the innermost error n8n wrapped. */
function originalMessage(error: unknown): string {
	const messages = causeChain(error)
		.map((record) => record.message)
		.filter((m): m is string => typeof m === 'string' && m !== '');
	return messages[messages.length - 1] ?? String(error);
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

function cancelSignalOf(ctx: InboundFlowContext): AbortSignal | undefined {
	return 'getExecutionCancelSignal' in ctx ? ctx.getExecutionCancelSignal() : undefined;
}

/** Waits, ending early (with the abort reason) when the execution is cancelled. */
async function wait(ctx: InboundFlowContext, ms: number): Promise<void> {
	await sleep(ms, cancelSignalOf(ctx));
}

export interface ResolvedCredentials {
	baseUrl: string;
	apiKey: string;
	/** Unset: leave room for other clients of the key (the default). */
	rateLimitUse?: RateLimitUse;
}

export async function getCredentials(this: InboundFlowContext, itemIndex?: number): Promise<ResolvedCredentials> {
	const credentials = (await this.getCredentials(CREDENTIAL_NAME, itemIndex)) as unknown as InboundFlowCredentials;
	return {
		baseUrl: checkBaseUrl(this.getNode(), credentials.baseUrl, itemIndex),
		apiKey: String(credentials.apiKey ?? ''),
		rateLimitUse: rateLimitUseOf(credentials.rateLimitUse),
	};
}

/**
 * Sends one API request. Waits as the rate-limit headers ask; retries 429 (any
 * method: a 429 proves nothing was applied), and 502/503/504, dropped connections
 * and malformed bodies for GET only; a POST is retried after a connection error only
 * when the error proves it was never sent. Every retry is bounded. Redirects are not
 * followed, so the key never leaves the Base URL's origin. Every error it throws has
 * the API key removed from every field.
 */
export async function apiRequest(this: InboundFlowContext, req: ApiRequest): Promise<ApiResponse> {
	return await withCredentials(this, req.credentials, req.itemIndex, async (credentials) => await send.call(this, req, credentials));
}

/** Runs `task` with the credentials (read unless given); every error it throws has the API key removed. */
export async function withCredentials<T>(
	ctx: InboundFlowContext,
	given: ResolvedCredentials | undefined,
	itemIndex: number | undefined,
	task: (credentials: ResolvedCredentials) => Promise<T>,
): Promise<T> {
	const credentials = given ?? (await getCredentials.call(ctx, itemIndex));
	try {
		return await task(credentials);
	} catch (error) {
		throw redactError(error, [credentials.apiKey]);
	}
}

/** apiRequest in stream mode (`ctx` is the node's `this`): what `mode.consume` returned for the answer it was given. */
export async function streamRequest<T>(
	ctx: InboundFlowContext,
	req: Omit<ApiRequest, 'stream' | 'qs' | 'body' | 'method'>,
	mode: StreamMode<T>,
): Promise<T> {
	const response = await apiRequest.call(ctx, { ...req, method: 'GET', stream: mode as StreamMode<unknown> });
	return response.data as T;
}

/** One GET of a stream-mode URL; the key attached by n8n only when `withKey`. */
function streamGet(
	ctx: InboundFlowContext,
	mode: StreamMode<unknown>,
	timeout: number,
	abortSignal: AbortSignal,
): Promise<IN8nHttpFullResponse> {
	const cancel = cancelSignalOf(ctx);
	const options: IHttpRequestOptions = {
		method: 'GET',
		url: mode.url.toString(),
		encoding: 'stream',
		returnFullResponse: true,
		ignoreHttpStatusErrors: true,
		disableFollowRedirect: true,
		timeout,
		// Cancelling the execution stops a long body too.
		abortSignal: cancel ? AbortSignal.any([abortSignal, cancel]) : abortSignal,
	};
	return (
		mode.withKey
			? ctx.helpers.httpRequestWithAuthentication.call(ctx, CREDENTIAL_NAME, options)
			: ctx.helpers.httpRequest(options)
	) as Promise<IN8nHttpFullResponse>;
}

/** A 429 asking for a wait beyond the bound: this execution fails; nothing of it is kept for the key. */
function waitRefusedError(
	node: INode,
	body: unknown,
	headers: Record<string, unknown>,
	req: RequestDescription,
	asked: string,
): NodeApiError {
	const error = apiError(node, 429, body, headers, req);
	const detail = error.message.slice(error.message.indexOf(' (HTTP 429'));
	return new NodeApiError(node, { httpCode: '429', message: serverMessage(body) ?? null, request_id: requestIdOf(body, headers) ?? null }, {
		message: `InboundFlow’s rate limit ${asked}, to ${req.action}${detail}`,
		description:
			'This execution stops here; later executions with the key are not held back by this answer. If InboundFlow really limits the key for that long, try again later.',
		httpCode: '429',
		itemIndex: req.itemIndex,
	});
}

const EXPIRED = Symbol('deadline');

/**
 * Runs a request with a limit on the whole of it, the body included: the helper's
 * `timeout` only limits the wait for the answer to start and pauses in the socket, so a
 * body trickled byte by byte would outlive any deadline. At the limit the request is
 * aborted (where n8n passes the signal on) and left behind: EXPIRED when the limit was
 * the caller's deadline, else a timeout error (ETIMEDOUT, retried like a dropped line).
 */
async function within<T>(ms: number, isDeadline: boolean, request: (signal: AbortSignal) => Promise<T>): Promise<T | typeof EXPIRED> {
	const abort = new AbortController();
	const timer = new AbortController();
	const pending = request(abort.signal);
	try {
		const outcome = await Promise.race([
			pending,
			sleep(ms, timer.signal).then(
				() => EXPIRED,
				() => undefined,
			),
		]);
		if (outcome !== EXPIRED) return outcome as T;
		pending.catch(() => undefined);
		abort.abort();
		if (isDeadline) return EXPIRED;
		throw Object.assign(new Error(`the request took longer than ${ms} ms (ETIMEDOUT)`), { code: 'ETIMEDOUT' });
	} finally {
		timer.abort();
	}
}

async function send(this: InboundFlowContext, req: ApiRequest, credentials: ResolvedCredentials): Promise<ApiResponse> {
	const node = this.getNode();
	const { baseUrl, apiKey } = credentials;
	const key = budgetKey(baseUrl, apiKey);
	const use = rateLimitUseOf(credentials.rateLimitUse);
	const idempotent = req.method === 'GET';
	const stream = req.stream;
	// Only requests that carry the key count against its budget; the key never leaves its origin.
	const paced = stream === undefined || stream.withKey;
	if (stream?.withKey && stream.url.origin !== new URL(baseUrl).origin) {
		throw unexpectedError(node, `the API key goes only to ${new URL(baseUrl).origin}, not to ${stream.url.origin}`, req);
	}
	const ranOut = (code: string, duringBody: boolean) =>
		stream?.connectionError?.(code, retries + 1, duringBody) ??
		networkError(node, stream ? stream.url.origin : baseUrl, code, retries + 1, req);
	let retries = 0;
	let rateLimitRetries = 0;
	const timeLeft = () => (req.deadline === undefined ? Infinity : req.deadline - Date.now());
	const pause = async (ms: number) => {
		if (ms >= timeLeft()) throw new DeadlineError(req.action);
		// Every wait is bounded (no timer beyond it, whatever an answer said).
		if (ms > 0) await wait(this, Math.min(ms, settings.maxRetryAfterMs));
	};

	for (;;) {
		// Checked and taken in one step, so executions sharing the key never overbook it.
		for (let d = paced ? delayBefore(key, Date.now(), use) : 0; d > 0; d = delayBefore(key, Date.now(), use)) {
			await pause(d);
		}
		const timeout = Math.min(settings.timeoutMs, Math.floor(timeLeft()));
		if (timeout <= 0) throw new DeadlineError(req.action);
		const slot = paced ? taking(key, Date.now()) : undefined;

		let response: IN8nHttpFullResponse | typeof EXPIRED;
		try {
			response = await within(timeout, req.deadline !== undefined && timeout < settings.timeoutMs, (abortSignal) =>
				stream ? streamGet(this, stream, timeout, abortSignal) : this.helpers.httpRequestWithAuthentication.call(this, CREDENTIAL_NAME, {
					method: req.method,
					url: `${baseUrl}${req.path}`,
					qs: req.qs,
					body: req.body,
					json: true,
					encoding: 'text',
					returnFullResponse: true,
					ignoreHttpStatusErrors: true,
					disableFollowRedirect: true,
					timeout,
					abortSignal,
				}) as Promise<IN8nHttpFullResponse>,
			);
		} catch (error) {
			if (slot) observe(key, slot, {}, 0, Date.now());
			const code = connectionErrorCode(error);
			if (code === undefined) {
				// Not an answer and not a socket failure: say what it is, not "could not reach".
				const message = originalMessage(error);
				if (message.startsWith('Base URL: ')) throw inputError(node, 'Base URL', message.slice(10), req.itemIndex);
				throw unexpectedError(node, message, req);
			}
			const retriable = idempotent || NOT_SENT_CODES.has(code);
			if (retriable && retries < settings.maxRetries) {
				await pause(backoff(retries++));
				continue;
			}
			throw ranOut(code, false);
		}

		if (response === EXPIRED) {
			// Its fate unknown: it holds its place for a window, as any request does, not forever.
			if (slot) observe(key, slot, {}, 0, Date.now());
			throw new DeadlineError(req.action);
		}
		const headers = (response.headers ?? {}) as Record<string, unknown>;
		const status = response.statusCode;
		if (slot) observe(key, slot, headers, status, Date.now());
		const raw: unknown = response.body;
		const parsed = stream ? { ok: true as const, value: undefined } : parseBody(raw);
		const body = parsed.ok ? parsed.value : raw;
		// A streamed body that is not handed on is thrown away, freeing its connection.
		if (stream && (status === 429 || RETRY_STATUSES.has(status))) discardBody(raw);

		if (status === 429 && paced) {
			const verdict = rateLimited(key, headers, rateLimitRetries, Date.now());
			if ('tooLong' in verdict) throw waitRefusedError(node, body, headers, req, verdict.tooLong);
			if (rateLimitRetries < settings.maxRateLimitRetries) {
				rateLimitRetries++;
				await pause(verdict.wait);
				continue;
			}
			throw apiError(node, status, body, headers, req);
		}
		if (stream) {
			if ((status === 429 || RETRY_STATUSES.has(status)) && retries < settings.maxRetries) {
				const asked = status === 429 ? parseRetryAfter(header(headers, 'retry-after'), Date.now()) : undefined;
				await pause(asked ?? backoff(retries));
				retries++;
				continue;
			}
			let code: string | undefined = 'ECONNRESET';
			try {
				const data = await stream.consume({ status, headers, body: raw, attempts: retries + 1 });
				if (data !== BODY_DROPPED) return { body: undefined, data, status };
			} catch (error) {
				code = connectionErrorCode(error);
				if (code === undefined) throw toNodeError(node, error);
			} finally {
				discardBody(raw);
			}
			if (retries < settings.maxRetries) {
				await pause(backoff(retries++));
				continue;
			}
			throw ranOut(code, true);
		}
		if (status >= 300 && status < 400) throw redirectError(node, status, baseUrl, header(headers, 'location'), req);
		if (RETRY_STATUSES.has(status) && idempotent && retries < settings.maxRetries) {
			await pause(backoff(retries++));
			continue;
		}
		if (status >= 400 && !req.acceptStatuses?.includes(status)) {
			throw apiError(node, status, body, headers, req);
		}
		if (!parsed.ok) {
			if (idempotent && retries < settings.maxRetries) {
				await pause(backoff(retries++));
				continue;
			}
			throw protocolError(node, `the body is not valid JSON (HTTP ${status})`, req, requestIdOf(undefined, headers));
		}
		return {
			body,
			data: unwrap(body),
			status,
			requestId: requestIdOf(body, headers),
			serverTime: serverTimeOf(body, headers),
		};
	}
}
