// The Call and Contact locators of node version 2: the From List methods against the
// emulator over real HTTP (order, labels, paging, search by phone and by text, errors,
// pacing), By ID checked by n8n's own panel check with the rule the run time applies,
// and the node running both versions' saved parameters.
import type { IDataObject, INode, INodeProperties, INodeTypeDescription } from 'n8n-workflow';
import { NodeApiError, NodeHelpers, NodeOperationError } from 'n8n-workflow';

import type { InboundFlowEmulator } from '../emulator/server';
import { InboundFlow } from '../nodes/InboundFlow/InboundFlow.node';
import { requireUuid } from '../nodes/InboundFlow/actions/validation';
import { emulatorPerFile, executeNode, fastTimings, json, listSearch, withEmulator, type Credentials } from './helpers';

let emulator: InboundFlowEmulator;
let credentials: Credentials;
const SEED = { calls: 230, contacts: 130 };
const NOCALLS_KEY = 'sk_test_nocalls_0123456789abc';
const description = new InboundFlow().description as INodeTypeDescription;

const file = emulatorPerFile({ seed: SEED });
beforeAll(() => ({ emulator, credentials } = file));
beforeEach(() => {
	emulator.reset();
	fastTimings();
});

const calls = (filter?: string, paginationToken?: string, timezone?: string) =>
	listSearch('searchCalls', { credentials, filter, paginationToken, timezone });
const contacts = (filter?: string, paginationToken?: string) =>
	listSearch('searchContacts', { credentials, filter, paginationToken });

/** Every page of a list, following the tokens as the panel does when scrolled to the end. */
async function allPages(list: (token?: string) => ReturnType<typeof calls>) {
	const pages = [];
	let token: string | undefined;
	do {
		const page = await list(token);
		pages.push(page);
		token = page.paginationToken;
	} while (token && pages.length < 20);
	return pages;
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
	try {
		await promise;
	} catch (error) {
		return error as Error;
	}
	throw new Error('expected a rejection');
}

const newest = (records: IDataObject[]) =>
	[...records].sort((a, b) => Date.parse(String(b.started_at)) - Date.parse(String(a.started_at)));

const node = (typeVersion: number): INode => ({
	id: 'n',
	name: 'InboundFlow',
	type: 'n8n-nodes-inboundflow.inboundFlow',
	typeVersion,
	position: [0, 0],
	parameters: {},
});

describe('node versions', () => {
	const shown = (typeVersion: number, resource: string, name: string) =>
		description.properties.filter(
			(p) => p.name === name && NodeHelpers.displayParameter({ resource, operation: 'get' }, p, node(typeVersion), description),
		);

	it('version 2 is the default; version 1 stays available for saved workflows', () => {
		expect(description.version).toEqual([1, 2]);
		expect(description.defaultVersion).toBe(2);
	});

	it.each([
		['call', 'callId', 'Call ID', 'Call'],
		['contact', 'contactId', 'Contact ID', 'Contact'],
	])('%s Get: a plain text field in version 1, a resource locator (From List, By ID) from version 2', (resource, name, v1Label, v2Label) => {
		const v1 = shown(1, resource, name);
		expect(v1.map((p) => [p.type, p.displayName])).toEqual([['string', v1Label]]);
		const v2 = shown(2, resource, name);
		expect(v2.map((p) => [p.type, p.displayName])).toEqual([['resourceLocator', v2Label]]);
		expect(v2[0].modes?.map((m) => m.name)).toEqual(['list', 'id']);
		expect(v2[0].default).toEqual({ mode: 'list', value: '' });
	});

	it('every list a locator names is a listSearch method of the node', () => {
		const methods = Object.keys(new InboundFlow().methods.listSearch);
		const named = description.properties
			.flatMap((p) => p.modes ?? [])
			.map((m) => m.typeOptions?.searchListMethod)
			.filter(Boolean);
		expect(named.length).toBeGreaterThanOrEqual(2);
		for (const method of named) expect(methods).toContain(method);
	});
});

describe('By ID: the panel and the run time apply one rule', () => {
	const locator = description.properties.find((p) => p.name === 'callId' && p.type === 'resourceLocator') as INodeProperties;
	/** The issues n8n's editor shows under the field (NodeHelpers.getParameterIssues, as the panel runs it). */
	const panelIssues = (value: string) => {
		const parameters = { resource: 'call', operation: 'get', callId: { __rl: true, mode: 'id', value } };
		return NodeHelpers.getParameterIssues(locator, parameters, '', { ...node(2), parameters }, description).parameters?.callId ?? [];
	};
	const runTimeAccepts = (value: string) => {
		try {
			requireUuid(node(2), 'Call', { __rl: true, mode: 'id', value }, 0);
			return true;
		} catch {
			return false;
		}
	};
	const SAMPLES = [
		'07f51470-ef1d-421c-a847-36e98732bb9b',
		'07F51470-EF1D-421C-A847-36E98732BB9B',
		'  07f51470-ef1d-421c-a847-36e98732bb9b ',
		'07f51470-ef1d-421c-a847-36e98732bb9b\n',
		'{07f51470-ef1d-421c-a847-36e98732bb9b}',
		'07f51470ef1d421ca84736e98732bb9b',
		'07f51470-ef1d-421c-a847-36e98732bb9',
		'07f51470-ef1d-421c-a847-36e98732bb9bb',
		'07f51470-ef1d-421c-a847-36e98732bb9g',
		'call_07f51470',
		'the-latest-call',
		'abc',
		'',
	];

	it.each(SAMPLES)('%j: accepted in the panel exactly when accepted at run time', (value) => {
		expect(panelIssues(value).length === 0).toBe(runTimeAccepts(value));
	});

	it('a malformed ID is flagged in the panel with the run time’s words', () => {
		expect(panelIssues('abc')).toEqual([
			'The value is not a valid InboundFlow ID: expected a UUID such as 07f51470-ef1d-421c-a847-36e98732bb9b',
		]);
		expect(panelIssues('07f51470-ef1d-421c-a847-36e98732bb9b')).toEqual([]);
		// An expression is checked when it has a value, at run time.
		expect(panelIssues("={{ $json.id }}")).toEqual([]);
	});
});

describe.each(['newest', 'oldest'] as const)('From List of calls (API page order: %s first)', (order) => {
	beforeEach(() => emulator.configure({ order }));

	it('one page per request: 100 calls, newest first, shown as caller · phone · date · status', async () => {
		const page = await calls();
		expect(emulator.requests).toHaveLength(1);
		expect(emulator.requests[0]).toMatchObject({ path: '/v1/calls', query: { limit: '100' } });
		expect(page.results).toHaveLength(100);
		expect(page.paginationToken).toEqual(expect.any(String));
		for (const item of page.results) {
			expect(item.name).toMatch(/^.+ · \+\d{7,15} · \d{4}-\d{2}-\d{2} \d{2}:\d{2} · (Completed|Failed|Blocked|In Progress|Forwarding)$/);
		}
		const byId = new Map(emulator.records.calls.map((r) => [r.id, r]));
		const times = page.results.map((item) => Date.parse(String(byId.get(String(item.value))?.started_at)));
		expect(times).toEqual([...times].sort((a, b) => b - a));
		if (order === 'newest') {
			// The newest 100 (records sharing a timestamp may come in either order).
			expect(new Set(page.results.map((r) => r.value))).toEqual(new Set(newest(emulator.records.calls).slice(0, 100).map((r) => r.id)));
		}
		const first = byId.get(String(page.results[0].value))!;
		expect(page.results[0].name).toBe(
			`${first.caller_name} · ${first.caller_phone} · ${String(first.started_at).slice(0, 10)} ${String(first.started_at).slice(11, 16)} · ${String(first.status).replace(/(^|-)(\w)/g, (_, dash: string, c: string) => (dash ? ' ' : '') + c.toUpperCase())}`,
		);
	});

	it('pages with the API cursor: every call once, one request per page, then no token', async () => {
		const pages = await allPages((token) => calls(undefined, token));
		expect(pages.map((p) => p.results.length)).toEqual([100, 100, 30]);
		const ids = pages.flatMap((p) => p.results.map((r) => r.value));
		expect(new Set(ids).size).toBe(SEED.calls);
		expect(emulator.requests).toHaveLength(3);
		expect(emulator.requests.slice(1).every((r) => typeof r.query.cursor === 'string')).toBe(true);
		expect(pages[2].paginationToken).toBeUndefined();
	});
});

describe('From List of calls: labels', () => {
	it('dates in the workflow’s time zone; a caller without name or number still reads', async () => {
		emulator.add('calls', {
			created_at: '2099-01-15T23:30:00.000Z',
			started_at: '2099-01-15T23:30:00.000Z',
			caller_name: null,
			caller_phone: null,
			status: 'in-progress',
		});
		const label = async (zone: string) => (await calls(undefined, undefined, zone)).results[0].name;
		expect(await label('UTC')).toBe('Unknown caller · no number · 2099-01-15 23:30 · In Progress');
		expect(await label('Europe/Berlin')).toBe('Unknown caller · no number · 2099-01-16 00:30 · In Progress');
		expect(await label('America/New_York')).toBe('Unknown caller · no number · 2099-01-15 18:30 · In Progress');
	});
});

describe('From List: search', () => {
	const PHONE = '+14155550199';
	const addOld = (fields: IDataObject) =>
		emulator.add('calls', { created_at: '2001-01-01T00:00:00.000Z', started_at: '2001-01-01T00:00:00.000Z', ...fields } as never);

	it.each([false, true])(
		'a search spelling a phone number goes to the API’s exact filter (server filters after paging: %s)',
		async (filterAfterPaging) => {
			emulator.configure({ filterAfterPaging });
			const a = addOld({ caller_phone: PHONE, caller_name: 'Ada Old' });
			const b = addOld({ caller_phone: PHONE, caller_name: 'Bea Old', created_at: '2001-01-02T00:00:00.000Z' });
			const page = await calls('+1 (415) 555-0199');
			expect(emulator.requests.every((r) => r.query.phone === PHONE)).toBe(true);
			expect(page.results.map((r) => r.value).sort()).toEqual([a.id, b.id].sort());
			// Filtering after paging answers empty pages first: followed within the one request, bounded.
			expect(emulator.requests).toHaveLength(filterAfterPaging ? 3 : 1);
		},
	);

	it('an unknown number: no results, no more pages', async () => {
		const page = await calls('+14155550000');
		expect(page.results).toEqual([]);
		expect(page.paginationToken).toBeUndefined();
		expect(emulator.requests).toHaveLength(1);
	});

	it('any other search is matched within the page read (name, any case; part of a number; start of the ID)', async () => {
		const zelda = emulator.add('calls', {
			created_at: '2099-01-01T00:00:00.000Z',
			started_at: '2099-01-01T00:00:00.000Z',
			caller_name: 'Zelda Quixote',
			caller_phone: '+4930123456',
		});
		for (const search of ['zelda', 'ZELDA quix', '30 1234', '(30) 123-456', zelda.id.slice(0, 8)]) {
			emulator.clearLog();
			const page = await calls(search);
			expect(page.results.map((r) => r.value)).toEqual([zelda.id]);
			expect(emulator.requests).toHaveLength(1);
			expect(emulator.requests[0].query.phone).toBeUndefined();
			expect(page.paginationToken).toEqual(expect.any(String));
		}
	});

	it('a match on an older page: none on the first page read, found on the page its token reads', async () => {
		const old = addOld({ caller_name: 'Yorick Ancient' });
		const first = await calls('yorick');
		expect(first.results).toEqual([]);
		const later = await allPages((token) => calls('yorick', token ?? first.paginationToken));
		expect(later.flatMap((p) => p.results.map((r) => r.value))).toEqual([old.id]);
	});
});

describe('From List of contacts', () => {
	it('shows name · phone, pages with the cursor, and searches by exact phone', async () => {
		const unnamed = emulator.add('contacts', { name: null, phone: '+14155550142', created_at: '2099-01-01T00:00:00.000Z' });
		const pages = await allPages((token) => contacts(undefined, token));
		expect(pages.map((p) => p.results.length)).toEqual([100, 31]);
		const all = pages.flatMap((p) => p.results);
		expect(all.find((r) => r.value === unnamed.id)?.name).toBe('Unnamed contact · +14155550142');
		const someone = emulator.records.contacts[5];
		expect(all.find((r) => r.value === someone.id)?.name).toBe(`${someone.name} · ${someone.phone}`);

		emulator.clearLog();
		const found = await contacts('+1 415 555 0142');
		expect(found.results).toEqual([{ name: 'Unnamed contact · +14155550142', value: unnamed.id }]);
		expect(emulator.requests).toMatchObject([{ path: '/v1/contacts', query: { phone: '+14155550142', limit: '100' } }]);
	});
});

describe('From List: errors reach n8n’s list as node errors', () => {
	const isNodeError = (error: Error) => error instanceof NodeApiError || error instanceof NodeOperationError;

	it('a key without calls:read: the scope is named', async () => {
		const error = await rejection(listSearch('searchCalls', { credentials: { ...credentials, apiKey: NOCALLS_KEY } }));
		expect(isNodeError(error)).toBe(true);
		expect(error.message).toContain('"calls:read"');
		expect(error.message).toContain('list calls');
	});

	it('a rejected key', async () => {
		const error = await rejection(listSearch('searchContacts', { credentials: { ...credentials, apiKey: 'sk_test_unknown_000000' } }));
		expect(error).toBeInstanceOf(NodeApiError);
		expect(error.message).toContain('InboundFlow rejected the API key (HTTP 401');
	});

	it('a failing service: retried, then the status and request ID', async () => {
		emulator.inject({ kind: 'status', status: 503, path: '/v1/calls', times: 10 });
		const error = await rejection(calls());
		expect(error).toBeInstanceOf(NodeApiError);
		expect(error.message).toMatch(/HTTP 503.*request ID req_/);
		expect(emulator.requests.length).toBeGreaterThan(1);
	});

	it('a broken page (has_more without a cursor)', async () => {
		emulator.inject({ kind: 'missingCursor', path: '/v1/calls' });
		const error = await rejection(calls());
		expect(error).toBeInstanceOf(NodeApiError);
		expect(error.message).toContain('has_more: true without a next_cursor');
	});

	it('an unreachable server', async () => {
		const closed = await withEmulator();
		await closed.emulator.stop();
		const error = await rejection(listSearch('searchCalls', { credentials: closed.credentials }));
		expect(error).toBeInstanceOf(NodeApiError);
		expect(error.message).toContain('Could not reach InboundFlow');
	});
});

describe('From List: paced with the key’s other traffic', () => {
	it('a key whose budget other runs spent: the list sends nothing and says so, instead of hanging the panel', async () => {
		// A sliding window of 100 s with X-RateLimit-Reset: its end, 100 s away, is one the
		// node accepts (at most 120 s) and far beyond the list's wait.
		emulator.configure({ rateLimit: { limit: 2, windowMs: 100_000 }, rateWindow: 'sliding', sendReset: true });
		await executeNode({ resource: 'call', operation: 'getAll', returnAll: false, limit: 1 }, { credentials });
		await executeNode({ resource: 'call', operation: 'getAll', returnAll: false, limit: 1 }, { credentials });
		emulator.clearLog();
		const error = await rejection(calls());
		expect(error).toBeInstanceOf(NodeOperationError);
		expect(error.message).toBe("The API key's rate limit is used up by other workflows right now");
		expect(emulator.requests).toHaveLength(0);
	});

	it('a 429 asking to wait longer than the list may: the same message', async () => {
		emulator.inject({ kind: 'status', status: 429, retryAfter: 90, path: '/v1/contacts' });
		const error = await rejection(contacts());
		expect(error).toBeInstanceOf(NodeOperationError);
		expect(error.message).toContain('rate limit is used up');
		expect(emulator.requests).toHaveLength(1);
	});

	it('the list’s own request counts in the key’s budget: the next run waits for the window', async () => {
		emulator.configure({ rateLimit: { limit: 1, windowMs: 100_000 }, rateWindow: 'sliding', sendReset: true });
		await calls();
		emulator.clearLog();
		const stop = new AbortController();
		const run = executeNode(
			{ resource: 'call', operation: 'getAll', returnAll: false, limit: 1 },
			{ credentials, abortSignal: stop.signal },
		);
		const outcome = await Promise.race([run.then(() => 'ran', () => 'failed'), new Promise((r) => setTimeout(() => r('waiting'), 500))]);
		expect(outcome).toBe('waiting');
		expect(emulator.requests).toHaveLength(0);
		stop.abort();
		await expect(run).rejects.toThrow();
	});
});

describe('running the node', () => {
	const run = (parameters: IDataObject, typeVersion: number, items?: IDataObject[]) =>
		executeNode(parameters, { credentials, typeVersion, items }).then(json);

	it('version 2: the ID picked from the list, or entered, or mapped by an expression, fetches that record', async () => {
		const [call] = (await calls()).results;
		const [got] = await run({ resource: 'call', operation: 'get', callId: { __rl: true, mode: 'list', value: call.value, cachedResultName: call.name } }, 2);
		expect(got.id).toBe(call.value);
		expect(emulator.requests.at(-1)?.path).toBe(`/v1/calls/${String(call.value)}`);

		const contact = emulator.records.contacts[3];
		const [byId] = await run({ resource: 'contact', operation: 'get', contactId: { __rl: true, mode: 'id', value: ` ${contact.id.toUpperCase()} ` } }, 2);
		expect(byId.id).toBe(contact.id);

		const two = emulator.records.calls.slice(0, 2);
		const mapped = await run(
			{ resource: 'call', operation: 'get', callId: { __rl: true, mode: 'id', value: '={{ $json.id }}' } },
			2,
			two.map((c) => ({ id: c.id })),
		);
		expect(mapped.map((r) => r.id)).toEqual(two.map((c) => c.id));
	});

	it('version 2: a malformed ID fails before any request, naming the field as shown', async () => {
		const error = await rejection(
			executeNode({ resource: 'call', operation: 'get', callId: { __rl: true, mode: 'id', value: 'abc' } }, { credentials, typeVersion: 2 }),
		);
		expect(error).toBeInstanceOf(NodeOperationError);
		expect(error.message).toBe('Call: "abc" is not a valid InboundFlow ID: expected a UUID such as 07f51470-ef1d-421c-a847-36e98732bb9b');
		expect(emulator.requests).toHaveLength(0);
	});

	it('version 1: the saved plain ID runs unchanged', async () => {
		const contact = emulator.records.contacts[0];
		const [got] = await run({ resource: 'contact', operation: 'get', contactId: contact.id }, 1);
		expect(got.id).toBe(contact.id);
		const error = await rejection(executeNode({ resource: 'call', operation: 'get', callId: 'abc' }, { credentials, typeVersion: 1 }));
		expect(error.message).toContain('Call ID: "abc" is not a valid InboundFlow ID');
	});
});
