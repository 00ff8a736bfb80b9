// The checks of one webhook delivery, kept apart from the node so they can be tested
// on their own: signature over the bytes sent, replay window and duplicate key from
// what the signature covers, event filter. Pure: no n8n context, no I/O.
import { createHash, createHmac, timingSafeEqual } from 'crypto';
import type { IDataObject } from 'n8n-workflow';

import { header, isObject } from '../shared/utils';

export const WEBHOOK_EVENTS = ['call.completed', 'call.transferred', 'appointment.booked', 'lead.created'];
/** Longest delivery id kept; a longer one is refused. */
export const MAX_DELIVERY_ID = 200;
const MAX_SIGNATURE_HEADER = 200;
const MAX_TIMESTAMP_TEXT = 40;
/** The latest time a JavaScript Date can hold. */
const MAX_DATE_MS = 8.64e15;


export interface DeliveryInput {
	/** The bytes n8n received; undefined when n8n kept none. */
	raw: Buffer | undefined;
	/** n8n's parsed body, used only for unsigned deliveries without raw bytes. */
	parsed: unknown;
	headers: IDataObject;
	/** The signing secret; undefined: deliveries are not verified (the node says so). */
	secret: string | undefined;
	/** The signature covers "<X-InboundFlow-Timestamp>.<raw body>" instead of the body alone. */
	timestampedSignature: boolean;
	/** Refuse deliveries whose signed timestamp is further than this from now (0: no check). */
	toleranceSeconds: number;
	nowMs: number;
	selectedEvents: string[];
}

export type Verdict =
	| { kind: 'refuse'; status: number; error: string }
	| { kind: 'ignore'; event: string }
	| {
			kind: 'accept';
			event: string;
			/** The key duplicates are recognised by: the signed delivery_id, else a hash of the signed bytes. */
			deliveryKey: string;
			item: IDataObject;
	  };

const refuse = (status: number, error: string): Verdict => ({ kind: 'refuse', status, error });

/** `sha256=<64 hex>`, prefix and digits in either case; undefined if not of that form. */
export function parseSignature(value: string | undefined): Buffer | undefined {
	if (value === undefined || value.length > MAX_SIGNATURE_HEADER) return undefined;
	const text = value.trim();
	if (text.length !== 71 || text.slice(0, 7).toLowerCase() !== 'sha256=') return undefined;
	const hex = text.slice(7);
	if (!/^[0-9a-fA-F]{64}$/.test(hex)) return undefined;
	return Buffer.from(hex, 'hex');
}

export function signatureMatches(secret: string, payload: Buffer, signature: Buffer): boolean {
	const expected = createHmac('sha256', secret).update(payload).digest();
	return signature.length === expected.length && timingSafeEqual(signature, expected);
}

/**
 * A timestamp as epoch ms: Unix seconds or milliseconds (told apart by magnitude), or
 * an ISO 8601 date; undefined when it is neither.
 */
export function parseTimestamp(value: unknown): number | undefined {
	if (typeof value === 'number') {
		const ms = Number.isFinite(value) && value > 0 ? (value > 1e11 ? value : value * 1000) : undefined;
		// Beyond what a Date can hold ("Invalid time value"): not a time.
		return ms !== undefined && ms <= MAX_DATE_MS ? ms : undefined;
	}
	if (typeof value !== 'string' || value.length === 0 || value.length > MAX_TIMESTAMP_TEXT) return undefined;
	const text = value.trim();
	if (/^\d{1,16}(\.\d{1,6})?$/.test(text)) return parseTimestamp(Number(text));
	if (!/^\d{4}-\d{2}-\d{2}T/.test(text)) return undefined;
	const ms = Date.parse(text);
	return Number.isNaN(ms) || Math.abs(ms) > MAX_DATE_MS ? undefined : ms;
}

/** Checks one delivery; says what to answer, or what to emit. */
export function checkDelivery(input: DeliveryInput): Verdict {
	const { secret, headers } = input;
	const headerTimestamp = header(headers, 'x-inboundflow-timestamp');
	let raw = input.raw;

	if (secret !== undefined) {
		// A signature is only checked over the bytes that were sent, never a re-serialisation.
		if (!raw) return refuse(500, 'n8n kept no raw body for this request, so its signature cannot be checked');
		const given = header(headers, 'x-inboundflow-signature');
		if (!given) return refuse(401, 'Missing X-InboundFlow-Signature header');
		const signature = parseSignature(given);
		if (!signature) return refuse(401, 'X-InboundFlow-Signature is not of the form sha256=<64 hex digits>');
		let payload = raw;
		if (input.timestampedSignature) {
			if (!headerTimestamp) return refuse(401, 'Missing X-InboundFlow-Timestamp header');
			payload = Buffer.concat([Buffer.from(`${headerTimestamp}.`), raw]);
		}
		if (!signatureMatches(secret, payload, signature)) return refuse(401, 'Invalid signature');
	}

	let body: unknown = input.parsed;
	if (raw) {
		try {
			body = JSON.parse(raw.toString('utf8')) as unknown;
		} catch {
			return refuse(400, 'The body is not valid JSON');
		}
	} else {
		raw = Buffer.from(JSON.stringify(body ?? null));
	}
	if (!isObject(body)) return refuse(400, 'The body must be a JSON object');

	// The replay window uses a timestamp the signature covers: the header in the
	// timestamped scheme, else the body's. An unsigned header is only checked for form.
	const signedTimestamp = input.timestampedSignature ? headerTimestamp : body.timestamp;
	for (const [label, value] of [
		['X-InboundFlow-Timestamp', headerTimestamp],
		['The body\'s "timestamp"', body.timestamp],
	] as const) {
		if (value !== undefined && value !== null && parseTimestamp(value) === undefined) {
			return refuse(400, `${label} is not a Unix time in seconds or milliseconds, nor an ISO 8601 date`);
		}
	}
	const at = signedTimestamp === undefined || signedTimestamp === null ? undefined : parseTimestamp(signedTimestamp);
	if (at !== undefined && input.toleranceSeconds > 0 && Math.abs(input.nowMs - at) > input.toleranceSeconds * 1000) {
		return refuse(401, `The delivery's timestamp is more than ${input.toleranceSeconds} seconds from now (replayed or delayed delivery)`);
	}

	const headerEvent = header(headers, 'x-inboundflow-event');
	const bodyEvent = typeof body.event === 'string' ? body.event : undefined;
	if (headerEvent && bodyEvent && headerEvent !== bodyEvent) {
		return refuse(400, 'X-InboundFlow-Event does not match the body\'s "event"');
	}
	const event = bodyEvent ?? headerEvent;
	if (!event) return refuse(400, 'Missing X-InboundFlow-Event header and "event" field');
	if (event.length > 100 || !WEBHOOK_EVENTS.includes(event) || !input.selectedEvents.includes(event)) {
		return { kind: 'ignore', event: event.slice(0, 100) };
	}

	let deliveryKey: string;
	if (body.delivery_id !== undefined && body.delivery_id !== null) {
		if (typeof body.delivery_id !== 'string' || body.delivery_id === '' || body.delivery_id.length > MAX_DELIVERY_ID) {
			return refuse(400, `The body's "delivery_id" must be a string of 1 to ${MAX_DELIVERY_ID} characters`);
		}
		deliveryKey = body.delivery_id;
	} else {
		// No signed id: the same signed bytes are the same delivery.
		deliveryKey = `sha256:${createHash('sha256').update(raw).digest('hex')}`;
	}

	const data = isObject(body.data) ? (body.data as IDataObject) : {};
	const timestamp = at ?? parseTimestamp(body.timestamp) ?? parseTimestamp(headerTimestamp);
	return {
		kind: 'accept',
		event,
		deliveryKey,
		item: {
			event,
			delivery_id: deliveryKey,
			timestamp: timestamp === undefined ? null : new Date(timestamp).toISOString(),
			organization_id: typeof body.organization_id === 'string' ? body.organization_id : null,
			data,
		},
	};
}
