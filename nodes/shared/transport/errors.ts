// Error wording in one place: every failure names the HTTP status, the server's
// message, the request id and, for 403/404, the missing scope or the unknown id.
import type { INode, JsonObject } from 'n8n-workflow';
import { NodeApiError, NodeOperationError } from 'n8n-workflow';
import { isObject } from '../utils';

export interface RequestDescription {
	method: string;
	path: string;
	/** What the request does, for messages: "list calls", "create a contact". */
	action: string;
	/** The scope(s) the operation needs, all named on a 403. */
	scope?: string | string[];
	/** The record a 404 means, e.g. { what: 'Call', id: '…' }. */
	notFound?: { what: string; id: string };
	itemIndex?: number;
}


/** The server's message from any of the body shapes InboundFlow may send. */
export function serverMessage(body: unknown): string | undefined {
	if (typeof body === 'string') {
		const text = body.trim();
		return text ? text.slice(0, 500) : undefined;
	}
	if (!isObject(body)) return undefined;
	const error = body.error;
	if (isObject(error) && typeof error.message === 'string') return error.message;
	if (typeof error === 'string') return error;
	if (typeof body.message === 'string') return body.message;
	return undefined;
}

function errorCode(body: unknown): string | undefined {
	if (isObject(body) && isObject(body.error) && typeof body.error.code === 'string') return body.error.code;
	if (isObject(body) && typeof body.code === 'string') return body.code;
	return undefined;
}

export function requestIdOf(body: unknown, headers: Record<string, unknown> = {}): string | undefined {
	if (isObject(body)) {
		if (isObject(body.meta) && typeof body.meta.request_id === 'string') return body.meta.request_id;
		if (typeof body.request_id === 'string') return body.request_id;
	}
	const header = headers['x-request-id'];
	return typeof header === 'string' ? header : undefined;
}

/** Removes the API key from any text, however it got there. */
export function redact(text: string, secret: string | undefined): string {
	if (!secret || secret.length < 4) return text;
	return text.split(secret).join('[redacted]');
}

/**
 * Removes the secrets from every string of an error, however deep (message,
 * description, errorResponse, messages, context, cause…): n8n stores the whole error
 * with the execution. Returns the same error object, or for a string the redacted
 * string. Walks without recursion, so no depth is too deep, and visits each object once,
 * so cycles end; binary buffers are not walked.
 */
export function redactError<T>(error: T, secrets: Array<string | undefined>): T {
	const list = secrets.filter((s): s is string => typeof s === 'string' && s.length >= 4);
	if (list.length === 0) return error;
	const clean = (text: string) => list.reduce((out, secret) => redact(out, secret), text);
	if (typeof error === 'string') return clean(error) as T;
	const seen = new Set<object>();
	const pending: object[] = [];
	const visit = (value: unknown) => {
		if (typeof value === 'object' && value !== null && !seen.has(value) && !ArrayBuffer.isView(value)) {
			seen.add(value);
			pending.push(value);
		}
	};
	visit(error);
	for (let value = pending.pop(); value !== undefined; value = pending.pop()) {
		const record = value as Record<string, unknown>;
		const keys = new Set([...Object.getOwnPropertyNames(record), ...(value instanceof Error ? ['message', 'stack'] : [])]);
		for (const key of keys) {
			const descriptor = Object.getOwnPropertyDescriptor(record, key);
			try {
				if (descriptor && !descriptor.writable && !descriptor.set) {
					// read-only: replaced when it can be redefined, else left
					if (!('value' in descriptor)) continue;
					if (typeof descriptor.value !== 'string') visit(descriptor.value);
					else if (descriptor.configurable) Object.defineProperty(record, key, { ...descriptor, value: clean(descriptor.value) });
					continue;
				}
				const before = record[key];
				if (typeof before === 'string') {
					const after = clean(before);
					if (after !== before) record[key] = after;
				} else {
					visit(before);
				}
			} catch {
				// a throwing property: leave it
			}
		}
	}
	return error;
}

function scopeList(scope: string | string[] | undefined): string[] {
	return scope === undefined ? [] : Array.isArray(scope) ? scope : [scope];
}

function quoted(list: string[]): string {
	const names = list.map((s) => `"${s}"`);
	return names.length <= 1 ? names.join('') : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

function summary(status: number, req: RequestDescription): { message: string; hint: string } {
	switch (status) {
		case 400:
			return {
				message: `InboundFlow refused the request to ${req.action} as invalid`,
				hint: 'Check the values of the fields and filters named in the message.',
			};
		case 401:
			return {
				message: 'InboundFlow rejected the API key',
				hint: 'Open the InboundFlow API credential and paste a valid key (Settings → API in InboundFlow).',
			};
		case 403: {
			const scopes = scopeList(req.scope);
			const plural = scopes.length > 1 ? 'scopes' : 'scope';
			return {
				message: scopes.length
					? `The API key lacks the ${quoted(scopes)} ${plural} needed to ${req.action}`
					: `The API key is not allowed to ${req.action}`,
				hint: scopes.length
					? `Give the key the ${quoted(scopes)} ${plural} in InboundFlow (Settings → API), or use a key that has ${scopes.length > 1 ? 'them' : 'it'}.`
					: 'Check the key’s scopes in InboundFlow (Settings → API).',
			};
		}
		case 404:
			return {
				message: req.notFound
					? `${req.notFound.what} "${req.notFound.id}" was not found`
					: `InboundFlow has no ${req.method} ${req.path}`,
				hint: req.notFound
					? `Check the ${req.notFound.what} ID: it must be the id of an existing record of this account.`
					: 'Check the Base URL of the credential.',
			};
		case 409:
			return {
				message: `InboundFlow reported a conflict while trying to ${req.action}`,
				hint: 'A record with the same unique value exists already.',
			};
		case 429:
			return {
				message: `InboundFlow’s rate limit was still reached after waiting and retrying to ${req.action}`,
				hint: 'InboundFlow allows 60 requests per minute per key, shared by every workflow using it. Run fewer workflows at once with this key, or lower their polling frequency.',
			};
		default:
			return status >= 500
				? {
						message: `InboundFlow failed to ${req.action}`,
						hint: 'The service had a problem; the node retried a few times. Try again later.',
					}
				: { message: `InboundFlow could not ${req.action}`, hint: '' };
	}
}

/** Maps an HTTP error answer of InboundFlow to a NodeApiError. */
export function apiError(
	node: INode,
	status: number,
	body: unknown,
	headers: Record<string, unknown>,
	req: RequestDescription,
): NodeApiError {
	const said = serverMessage(body);
	const requestId = requestIdOf(body, headers);
	const { message, hint } = summary(status, req);
	const details = [`HTTP ${status}`];
	if (said) details.push(`InboundFlow said: "${said}"`);
	if (requestId) details.push(`request ID ${requestId}`);
	const text = `${message} (${details.join('; ')})`;
	const response: JsonObject = { httpCode: String(status), message: said ?? null, request_id: requestId ?? null };
	const code = errorCode(body);
	if (code) response.code = code;
	return new NodeApiError(node, response, {
		message: text,
		description: hint,
		httpCode: String(status),
		itemIndex: req.itemIndex,
	});
}

/** A response that arrived but is not what the documented API sends. */
export function protocolError(node: INode, problem: string, req: RequestDescription, requestId?: string): NodeApiError {
	const id = requestId ? ` (request ID ${requestId})` : '';
	return new NodeApiError(
		node,
		{ message: problem, request_id: requestId ?? null },
		{
			message: `InboundFlow sent an unexpected answer while trying to ${req.action}: ${problem}${id}`,
			description: 'The node stopped rather than guess. If it keeps happening, report it with the request ID.',
			itemIndex: req.itemIndex,
		},
	);
}

const CONNECTION_WORDS: Record<string, string> = {
	ECONNREFUSED: 'the connection was refused',
	ECONNRESET: 'the connection was dropped',
	ECONNABORTED: 'the connection was aborted',
	ETIMEDOUT: 'the request timed out',
	ESOCKETTIMEDOUT: 'the request timed out',
	ENOTFOUND: 'the host name was not found',
	EAI_AGAIN: 'the host name could not be resolved',
	EHOSTUNREACH: 'the host is unreachable',
	ENETUNREACH: 'the network is unreachable',
	EPIPE: 'the connection was closed while sending',
};

/**
 * The connection failed. The message says what happened in words: n8n's NodeApiError
 * replaces any message containing an error code with a generic text, so the code
 * itself goes into the description.
 */
export function networkError(
	node: INode,
	baseUrl: string,
	code: string,
	attempts: number,
	req: RequestDescription,
): NodeApiError {
	const what = CONNECTION_WORDS[code] ?? 'the connection failed';
	const advice =
		req.method === 'GET'
			? 'Retries ran out. Check the Base URL of the credential and your network.'
			: 'It was not retried: the request may have reached InboundFlow and been applied. Check in InboundFlow before running it again.';
	return new NodeApiError(
		node,
		{ reason: 'connection' },
		{
			message: `Could not reach InboundFlow at ${baseUrl} to ${req.action}: ${what}, after ${attempts} attempt${attempts === 1 ? '' : 's'}`,
			description: `${advice} (error code: ${code})`,
			itemIndex: req.itemIndex,
		},
	);
}

/** A 3xx answer: not followed, so the API key goes only to the Base URL's origin. */
export function redirectError(
	node: INode,
	status: number,
	baseUrl: string,
	location: string | undefined,
	req: RequestDescription,
): NodeApiError {
	let target = 'another address';
	try {
		if (location) target = new URL(location, baseUrl).origin;
	} catch {
		target = 'an invalid address';
	}
	return new NodeApiError(
		node,
		{ httpCode: String(status), message: `redirect to ${target}` },
		{
			message: `InboundFlow answered the request to ${req.action} with a redirect (HTTP ${status}) to ${target}, which the node does not follow`,
			description: `The API key is sent only to the credential's Base URL (${new URL(baseUrl).origin}). If InboundFlow really moved, set the Base URL to the new https:// address.`,
			httpCode: String(status),
			itemIndex: req.itemIndex,
		},
	);
}

/** A failure inside n8n while sending (neither an HTTP answer nor a socket error). */
export function unexpectedError(node: INode, message: string, req: RequestDescription): NodeOperationError {
	return new NodeOperationError(node, `The request to ${req.action} failed inside n8n: ${message.slice(0, 300)}`, {
		itemIndex: req.itemIndex,
		description: `This error did not come from InboundFlow or the network (${req.method} ${req.path}). If it repeats, report it with this message.`,
	});
}

/** An error as n8n shows it best: our own errors as they are, anything else wrapped. */
export function toNodeError(node: INode, error: unknown): NodeApiError | NodeOperationError {
	if (error instanceof NodeApiError || error instanceof NodeOperationError) return error;
	return new NodeOperationError(node, error instanceof Error ? error : String(error));
}

/** A problem with a value the user entered, found before any request. */
export function inputError(node: INode, field: string, problem: string, itemIndex?: number): NodeOperationError {
	return new NodeOperationError(node, `${field}: ${problem}`, {
		itemIndex,
		description: `Fix the "${field}" field of this node (or the expression that fills it).`,
	});
}
