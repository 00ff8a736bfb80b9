// The Base URL rules, in one place for the credential (which attaches the key) and the
// transport (which names the field in its error): https only, http only for loopback,
// and the key goes to the Base URL's origin and nowhere else.
export const DEFAULT_BASE_URL = 'https://api.inboundflow.app';
const MAX_URL_LENGTH = 2048;
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

export type BaseUrlCheck = { ok: true; baseUrl: string; origin: string } | { ok: false; problem: string };

/** Removes trailing slashes without a backtracking pattern. */
export function stripTrailingSlashes(text: string): string {
	let end = text.length;
	while (end > 0 && text.charCodeAt(end - 1) === 47) end--;
	return text.slice(0, end);
}

export function isLoopback(url: URL): boolean {
	return LOOPBACK.has(url.hostname);
}

/** Checks a Base URL as typed into the credential; the problem text names no field. */
export function checkBaseUrlText(value: unknown): BaseUrlCheck {
	const text = (typeof value === 'string' ? value : '').trim() || DEFAULT_BASE_URL;
	if (text.length > MAX_URL_LENGTH) return { ok: false, problem: `is longer than ${MAX_URL_LENGTH} characters` };
	let url: URL;
	try {
		url = new URL(text);
	} catch {
		return { ok: false, problem: `"${text}" is not a URL (expected e.g. ${DEFAULT_BASE_URL})` };
	}
	if (url.protocol === 'http:' && !isLoopback(url)) {
		return {
			ok: false,
			problem: `"${text}" uses http://, which would send the API key unencrypted; use https:// (http:// is accepted only for localhost and 127.0.0.1)`,
		};
	}
	if (url.protocol !== 'https:' && url.protocol !== 'http:') {
		return { ok: false, problem: `"${text}" must start with https://` };
	}
	if (url.username || url.password) return { ok: false, problem: `"${url.origin}…" must not contain a user name or password` };
	return { ok: true, baseUrl: stripTrailingSlashes(text), origin: url.origin };
}

/** The origin a request goes to, from its url (absolute, or relative to baseURL). */
export function requestOrigin(url: string | undefined, baseURL: string | undefined): string | undefined {
	try {
		return new URL(url ?? '', baseURL || undefined).origin;
	} catch {
		return undefined;
	}
}
