// The Base URL rules, in one place for the credential (which attaches the key) and the
// transport (which names the field in its error): https only, http only for loopback,
// no query or fragment, and the key goes to the Base URL (its origin and, when it has
// one, its path) and nowhere else.
export const DEFAULT_BASE_URL = 'https://api.inboundflow.app';
const MAX_URL_LENGTH = 2048;
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

export type BaseUrlCheck =
	| {
			ok: true;
			/** Origin and path prefix, without trailing slash: what requests are built on. */
			baseUrl: string;
			origin: string;
			/** The Base URL's path without trailing slash ('' for none): requests must stay under it. */
			prefix: string;
	  }
	| { ok: false; problem: string };

/** Removes trailing slashes without a backtracking pattern. */
export function stripTrailingSlashes(text: string): string {
	let end = text.length;
	while (end > 0 && text.charCodeAt(end - 1) === 47) end--;
	return text.slice(0, end);
}

export function isLoopback(url: URL): boolean {
	return LOOPBACK.has(url.hostname);
}

/** Whether a text holds a control character, a space or a backslash (which URL parsers read differently). */
function hasAmbiguousCharacter(text: string): boolean {
	for (let i = 0; i < text.length; i++) {
		const code = text.charCodeAt(i);
		if (code <= 32 || code === 92 || code === 127) return true;
	}
	return false;
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
	if (text.includes('?') || text.includes('#')) {
		const what = text.includes('?') ? 'a query ("?…")' : 'a fragment ("#…")';
		return {
			ok: false,
			problem: `"${text}" must not contain ${what}: give only the address the API paths are added to, e.g. ${DEFAULT_BASE_URL}`,
		};
	}
	if (hasAmbiguousCharacter(text)) {
		return { ok: false, problem: `"${text}" must not contain spaces, control characters or backslashes` };
	}
	const prefix = stripTrailingSlashes(url.pathname);
	return { ok: true, baseUrl: `${url.origin}${prefix}`, origin: url.origin, prefix };
}

type Scope = { origin: string; prefix: string };

/**
 * Whether a URL lies under the Base URL: same origin, no user info, and (for a Base URL
 * with a path) a path equal to it or below it, with no encoded slash or backslash after
 * it that a server could decode into a way out.
 */
export function isWithinBaseUrl(url: URL, scope: Scope): boolean {
	if (url.origin !== scope.origin || url.username || url.password) return false;
	if (!scope.prefix) return true;
	const path = url.pathname;
	if (path !== scope.prefix && !path.startsWith(`${scope.prefix}/`)) return false;
	return !/%2f|%5c/i.test(path.slice(scope.prefix.length));
}

/** The request-option fields n8n reads an address from (httpRequest: url/baseURL; the older request options: uri/baseUrl). */
const ADDRESS_FIELDS = ['url', 'uri'] as const;
const BASE_FIELDS = ['baseURL', 'baseUrl'] as const;

/** axios's rule: a scheme followed by "//", or a protocol-relative "//host". */
const ABSOLUTE = /^([a-z][a-z\d+\-.]*:)?\/\//i;

function fieldText(options: Record<string, unknown>, field: string): string | undefined | null {
	const value = options[field];
	if (value === undefined || value === null) return undefined;
	if (typeof value === 'string') return value;
	if (value instanceof URL) return value.href;
	return null;
}

/**
 * Every address a request could go to, whichever of its address fields (`url`, `uri`)
 * and base fields (`baseURL`, `baseUrl`) the n8n request code in use reads: n8n 1.x and
 * 2.x send every request with axios, which takes an absolute address as it is and
 * appends a relative one to the base. Every base must lie under the Base URL by itself
 * too. Returns a problem text instead when a field is not text or no address can be built.
 */
export function requestTargets(options: Record<string, unknown>): { targets: URL[] } | { problem: string } {
	const read = (fields: readonly string[]): { found: string[] } | { problem: string } => {
		const found: string[] = [];
		for (const field of fields) {
			const text = fieldText(options, field);
			if (text === null) return { problem: `its "${field}" is not a text` };
			if (text !== undefined) found.push(text);
		}
		return { found };
	};
	const addresses = read(ADDRESS_FIELDS);
	if ('problem' in addresses) return addresses;
	const bases = read(BASE_FIELDS);
	if ('problem' in bases) return bases;
	const targets: URL[] = [];
	const add = (text: string): boolean => {
		try {
			targets.push(new URL(text));
			return true;
		} catch {
			return false;
		}
	};
	// A base or an absolute address no parser accepts could still be read some other
	// way: refused. A relative address without a base is sent nowhere.
	for (const base of bases.found) if (!add(base)) return { problem: `its base address "${base.slice(0, 100)}" is not a valid URL` };
	for (const address of addresses.found) {
		if (ABSOLUTE.test(address)) {
			if (!add(address)) return { problem: `its address "${address.slice(0, 100)}" is not a valid URL` };
			continue;
		}
		add(address);
		// A relative address is appended to the base, keeping the base's path (axios).
		for (const base of bases.found) add(address ? `${base.replace(/\/?\/$/, '')}/${address.replace(/^\/+/, '')}` : base);
	}
	return targets.length ? { targets } : { problem: 'it has no valid address' };
}

/** A per-request proxy, in any of the shapes n8n's request options take. */
function hasProxy(options: Record<string, unknown>): boolean {
	const proxy = options.proxy;
	return proxy !== undefined && proxy !== null && proxy !== false && proxy !== '';
}

/** TLS verification turned off, or its trust replaced, for this request. */
function weakensTls(options: Record<string, unknown>): boolean {
	if (options.skipSslCertificateValidation !== undefined && options.skipSslCertificateValidation !== false) return true;
	if (options.rejectUnauthorized !== undefined && options.rejectUnauthorized !== true) return true;
	const agent = options.agentOptions;
	if (agent === undefined || agent === null) return false;
	if (typeof agent !== 'object') return true;
	const tls = agent as Record<string, unknown>;
	return (
		(tls.rejectUnauthorized !== undefined && tls.rejectUnauthorized !== true) ||
		tls.ca !== undefined ||
		tls.checkServerIdentity !== undefined
	);
}

/**
 * Why a request must not carry the key, as the end of a sentence starting "The API key
 * is sent only to <Base URL>"; undefined when it may. Checked: every address field
 * (see requestTargets), a per-request proxy, weakened TLS and a custom connection agent.
 */
export function refusalOf(options: Record<string, unknown>, scope: Scope): string | undefined {
	const found = requestTargets(options);
	if ('problem' in found) return `; this request cannot be checked: ${found.problem}`;
	const outside = found.targets.find((target) => !isWithinBaseUrl(target, scope));
	if (outside) {
		const where = outside.origin === scope.origin ? `${outside.origin}${outside.pathname}` : outside.origin;
		return `; this request goes to ${where === 'null' ? 'an address that is not http(s)' : where}`;
	}
	if (hasProxy(options)) {
		return ', never through a proxy set on the request (the HTTP Request node\'s "Proxy" option), which could read it. Remove that option; a proxy all of n8n must use is set with HTTPS_PROXY instead';
	}
	if (weakensTls(options)) {
		return ', never with TLS certificate checks turned off or replaced (the HTTP Request node\'s "Ignore SSL Issues" option or its own certificate authority), which would let an impostor read it. Turn that option off';
	}
	if (['agent', 'httpAgent', 'httpsAgent'].some((field) => options[field] !== undefined)) {
		return ', never through a connection agent set on the request';
	}
	return undefined;
}
