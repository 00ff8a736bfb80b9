// Small helpers used across the package.
import type { IDataObject } from 'n8n-workflow';

export function isObject(value: unknown): value is Record<string, unknown> {
	return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A header's first value as a string (names in lower case, as Node gives them). */
export function header(headers: IDataObject | Record<string, unknown>, name: string): string | undefined {
	const value = (headers as Record<string, unknown>)[name.toLowerCase()] ?? (headers as Record<string, unknown>)[name];
	if (Array.isArray(value)) return value.length && value[0] !== undefined && value[0] !== null ? String(value[0]) : undefined;
	return value === undefined || value === null || value === '' ? undefined : String(value);
}

/** Whether a value is an InboundFlow id: a UUID, safe to put in a request path. */
export function isUuid(value: unknown): value is string {
	return typeof value === 'string' && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);
}
