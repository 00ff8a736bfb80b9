// Checks of user input, run before any request; each error names the field and the problem.
import type { IDataObject, IExecuteFunctions, INode } from 'n8n-workflow';

import { inputError } from '../../shared/transport/errors';

/**
 * An InboundFlow ID (a UUID), spaces around it allowed. The one rule for IDs: the run
 * time tests it here, and n8n's panel tests the same text in a resource locator's By ID
 * mode (n8n anchors it with ^…$ and applies no flags, hence no /i).
 */
export const ID_PATTERN = '\\s*[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\\s*';
export const ID_EXAMPLE = '07f51470-ef1d-421c-a847-36e98732bb9b';
/** What is wrong with a value that does not match ID_PATTERN (panel and run time). */
export const ID_PROBLEM = `is not a valid InboundFlow ID: expected a UUID such as ${ID_EXAMPLE}`;
const UUID = new RegExp(`^${ID_PATTERN}$`);
const E164 = /^\+[1-9]\d{6,14}$/;
/** Longest text any field check reads; longer input is refused before any pattern runs. */
const MAX_INPUT = 320;

function tooLong(node: INode, field: string, text: string, itemIndex: number): void {
	if (text.length > MAX_INPUT) {
		throw inputError(node, field, `is ${text.length} characters long; at most ${MAX_INPUT} are accepted`, itemIndex);
	}
}

/** name@domain.tld, checked in one linear pass (no backtracking pattern). */
function isEmail(text: string): boolean {
	if (text.length > 254 || /\s/.test(text)) return false;
	const at = text.indexOf('@');
	if (at <= 0 || at !== text.lastIndexOf('@')) return false;
	const domain = text.slice(at + 1);
	const dot = domain.lastIndexOf('.');
	return dot > 0 && dot < domain.length - 1;
}

/** The value of a resource locator (`{ __rl: true, mode, value }`), or the value itself. */
export function locatorValue(value: unknown): unknown {
	return typeof value === 'object' && value !== null && (value as { __rl?: unknown }).__rl === true
		? (value as { value?: unknown }).value
		: value;
}

/**
 * An InboundFlow ID from a plain field (node version 1) or a resource locator (version
 * 2, any mode), checked against ID_PATTERN; returned trimmed and in lower case.
 */
export function requireUuid(node: INode, field: string, value: unknown, itemIndex: number): string {
	const id = locatorValue(value);
	const raw = typeof id === 'string' ? id : String(id ?? '');
	const text = raw.trim();
	if (!text) throw inputError(node, field, 'is empty; enter the ID of the record', itemIndex);
	tooLong(node, field, text, itemIndex);
	if (!UUID.test(raw)) throw inputError(node, field, `"${text}" ${ID_PROBLEM}`, itemIndex);
	return text.toLowerCase();
}

/** The E.164 number a text spells, after removing the spaces, dashes, dots and brackets people type. */
export function asE164(text: string): string | undefined {
	if (text.length > MAX_INPUT) return undefined;
	const compact = text.replace(/[\s\-.()]/g, '');
	return E164.test(compact) ? compact : undefined;
}

/** E.164, after removing spaces, dashes, dots and brackets people type. */
export function requirePhone(node: INode, field: string, value: unknown, itemIndex: number): string {
	const text = typeof value === 'string' || typeof value === 'number' ? String(value).trim() : '';
	if (!text) throw inputError(node, field, 'is empty; enter a phone number in E.164 form, e.g. +14155551234', itemIndex);
	tooLong(node, field, text, itemIndex);
	const compact = asE164(text);
	if (compact === undefined) {
		throw inputError(
			node,
			field,
			`"${text}" is not an E.164 phone number (a + then the country code and number, 7 to 15 digits, e.g. +14155551234)`,
			itemIndex,
		);
	}
	return compact;
}

export function checkEmail(node: INode, field: string, value: string, itemIndex: number): string {
	const text = value.trim();
	tooLong(node, field, text, itemIndex);
	if (!isEmail(text)) throw inputError(node, field, `"${text}" is not a valid email address`, itemIndex);
	return text;
}

/** The wall-clock date and time of an instant in a time zone. */
export function wallClock(utcMs: number, timeZone: string) {
	const parts = new Intl.DateTimeFormat('en-US', {
		timeZone,
		hourCycle: 'h23',
		year: 'numeric',
		month: '2-digit',
		day: '2-digit',
		hour: '2-digit',
		minute: '2-digit',
		second: '2-digit',
	}).formatToParts(new Date(utcMs));
	const get = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0);
	return { year: get('year'), month: get('month'), day: get('day'), hour: get('hour'), minute: get('minute'), second: get('second') };
}

/** Offset of a time zone at an instant, in ms (e.g. +3600000 for Europe/Berlin in winter). */
function zoneOffset(utcMs: number, timeZone: string): number {
	const t = wallClock(utcMs, timeZone);
	const asUtc = Date.UTC(t.year, t.month - 1, t.day, t.hour, t.minute, t.second);
	return asUtc - Math.floor(utcMs / 1000) * 1000;
}

/**
 * A date from an n8n DateTime field, an expression (Luxon DateTime, JS Date) or an
 * ISO string, as ISO 8601 UTC. A date without an offset is read in the workflow's
 * time zone, as n8n's date pickers mean it.
 */
export function toIsoUtc(node: INode, field: string, value: unknown, timeZone: string, itemIndex: number): string {
	if (value instanceof Date) {
		if (Number.isNaN(value.getTime())) throw inputError(node, field, 'is an invalid date', itemIndex);
		return value.toISOString();
	}
	if (typeof value === 'object' && value !== null && typeof (value as { toISO?: unknown }).toISO === 'function') {
		const iso = (value as { toISO: () => string | null }).toISO();
		if (iso) return new Date(iso).toISOString();
	}
	const text = typeof value === 'string' ? value.trim() : typeof value === 'number' ? String(value) : '';
	tooLong(node, field, text, itemIndex);
	const problem = `"${text || String(value)}" is not a date; use the date picker or an ISO 8601 date such as 2026-02-24T20:59:00Z`;
	const ymd = /^(\d{4})-(\d{2})-(\d{2})/.exec(text);
	if (!text || !ymd) throw inputError(node, field, problem, itemIndex);
	// Date.parse rolls 2026-02-31 over to March 3rd: refuse a day the month does not have.
	const [year, month, day] = [Number(ymd[1]), Number(ymd[2]), Number(ymd[3])];
	const real = new Date(Date.UTC(year, month - 1, day));
	if (month < 1 || month > 12 || real.getUTCMonth() !== month - 1 || real.getUTCDate() !== day) {
		throw inputError(node, field, `"${text}" is not a real date (${ymd[0]} does not exist)`, itemIndex);
	}
	const hasZone = /(Z|[+-]\d{2}:?\d{2})$/i.test(text);
	const parsed = Date.parse(hasZone ? text : `${text.length === 10 ? `${text}T00:00:00` : text}Z`);
	if (Number.isNaN(parsed)) throw inputError(node, field, problem, itemIndex);
	if (hasZone) return new Date(parsed).toISOString();
	const offset = zoneOffset(parsed, timeZone);
	return new Date(parsed - offset).toISOString();
}

/** Reads an optional collection parameter as an object. */
export function collection(ctx: IExecuteFunctions, name: string, itemIndex: number): IDataObject {
	const value = ctx.getNodeParameter(name, itemIndex, {});
	return typeof value === 'object' && value !== null ? (value as IDataObject) : {};
}
