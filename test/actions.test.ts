// Every operation of the action node, in n8n-core's ExecuteContext, over real HTTP,
// under each setting of the emulator's open-point switches.
import type { IDataObject } from 'n8n-workflow';

import type { EmulatorConfig, InboundFlowEmulator } from '../emulator/server';
import { emulatorPerFile, executeNode, json, type Credentials } from './helpers';

let emulator: InboundFlowEmulator;
let credentials: Credentials;
const SEED = { calls: 230, contacts: 40, leads: 120, appointments: 60 };

const file = emulatorPerFile({ seed: SEED });
beforeAll(() => ({ emulator, credentials } = file));

async function run(parameters: IDataObject, extra: { items?: IDataObject[]; continueOnFail?: boolean } = {}) {
	return json(await executeNode(parameters, { credentials, ...extra }));
}

async function failure(parameters: IDataObject): Promise<Error & IDataObject> {
	try {
		await executeNode(parameters, { credentials });
	} catch (error) {
		return error as Error & IDataObject;
	}
	throw new Error('expected the node to fail');
}

const switches: Array<Partial<EmulatorConfig>> = [
	{ order: 'newest', sinceMode: 'exclusive', wrapSingle: true },
	{ order: 'oldest', sinceMode: 'inclusive', wrapSingle: false },
];

describe.each(switches)('with emulator switches %o', (config) => {
	beforeEach(() => {
		emulator.reset();
		emulator.configure(config);
	});

	describe.each([
		['call', 'calls', SEED.calls],
		['contact', 'contacts', SEED.contacts],
		['lead', 'leads', SEED.leads],
		['appointment', 'appointments', SEED.appointments],
	] as const)('%s Get Many', (resource, path, total) => {
		it('Return All reads every record across pages, each once', async () => {
			const out = await run({ resource, operation: 'getAll', returnAll: true, simplify: false });
			expect(out).toHaveLength(total);
			expect(new Set(out.map((r) => r.id)).size).toBe(total);
			expect(emulator.requests).toHaveLength(Math.ceil(total / 100));
			expect(emulator.requests.every((r) => r.path === `/v1/${path}`)).toBe(true);
		});

		it('Created After reaches the query of every page as ISO UTC `since`', async () => {
			const records = emulator.records[path];
			const cut = records[Math.floor(records.length / 2)].created_at;
			const out = await run({ resource, operation: 'getAll', returnAll: true, filters: { createdAfter: cut } });
			const expected = records.filter((r) =>
				config.sinceMode === 'inclusive' ? r.created_at >= cut : r.created_at > cut,
			);
			expect(out.map((r) => r.id).sort()).toEqual(expected.map((r) => r.id).sort());
			for (const request of emulator.requests) expect(request.query.since).toBe(new Date(cut).toISOString());
		});
	});

	it('Call filters (status, phone) are sent on every page', async () => {
		const phone = emulator.records.calls[0].caller_phone as string;
		await run({ resource: 'call', operation: 'getAll', returnAll: true, filters: { status: 'failed', phone } });
		for (const request of emulator.requests) expect(request.query).toMatchObject({ status: 'failed', phone });
	});

	it('Lead filters (status, urgency) select exactly the matching leads', async () => {
		const out = await run({
			resource: 'lead',
			operation: 'getAll',
			returnAll: true,
			simplify: false,
			filters: { status: 'new', urgency: 'high' },
		});
		const expected = emulator.records.leads.filter((l) => l.status === 'new' && l.urgency === 'high');
		expect(out.map((l) => l.id).sort()).toEqual(expected.map((l) => l.id).sort());
	});

	it('Appointment status filter selects exactly the matching appointments', async () => {
		const out = await run({ resource: 'appointment', operation: 'getAll', returnAll: true, filters: { status: 'booked' } });
		expect(out.every((a) => a.status === 'booked')).toBe(true);
		expect(out).toHaveLength(emulator.records.appointments.filter((a) => a.status === 'booked').length);
	});

	it.each([
		[50, 1],
		[100, 1],
		[150, 2],
		[500, 3],
	])('Limit %i on calls returns that many (or all) in %i request(s)', async (limit, requests) => {
		const out = await run({ resource: 'call', operation: 'getAll', returnAll: false, limit });
		expect(out).toHaveLength(Math.min(limit, SEED.calls));
		expect(emulator.requests).toHaveLength(requests);
	});

	it('Call Get returns the call with its messages, or one item per message', async () => {
		const id = emulator.records.calls[3].id;
		const [call] = await run({ resource: 'call', operation: 'get', callId: id });
		expect(call.id).toBe(id);
		expect((call.messages as IDataObject[]).length).toBeGreaterThan(0);
		const messages = await run({ resource: 'call', operation: 'get', callId: id, output: 'messages' });
		expect(messages).toHaveLength((call.messages as IDataObject[]).length);
		expect(messages[0]).toMatchObject({ call_id: id, index: 0, role: 'assistant' });
	});

	it('Contact Get returns the contact', async () => {
		const contact = emulator.records.contacts[1];
		const [out] = await run({ resource: 'contact', operation: 'get', contactId: contact.id });
		expect(out).toEqual(contact);
	});

	it('Account Get returns organization, plan and scopes', async () => {
		const [me] = await run({ resource: 'account', operation: 'get' });
		expect(me).toMatchObject({ organization_name: 'Dave Auto Shop', plan: 'Starter Plan' });
		expect(me.scopes).toContain('contacts:write');
	});
});

describe('Simplify', () => {
	beforeEach(() => emulator.reset());

	it('drops transcript and messages from calls, keeps the usual fields', async () => {
		const [simple] = await run({ resource: 'call', operation: 'getAll', limit: 1 });
		expect(simple).not.toHaveProperty('transcript');
		expect(Object.keys(simple)).toEqual(expect.arrayContaining(['id', 'caller_phone', 'status', 'summary', 'created_at']));
		const [raw] = await run({ resource: 'call', operation: 'getAll', limit: 1, simplify: false });
		expect(raw).toHaveProperty('transcript');
		const [got] = await run({ resource: 'call', operation: 'get', callId: raw.id, simplify: true });
		expect(got).not.toHaveProperty('messages');
	});

	it('keeps the lead fields and the call behind the lead (an agent follows it), drops updated_at', async () => {
		const [simple] = await run({ resource: 'lead', operation: 'getAll', limit: 1 });
		expect(simple).toHaveProperty('call_log_id');
		expect(simple).toHaveProperty('urgency');
		expect(simple).not.toHaveProperty('updated_at');
	});
});

describe('Contact Create and Find by Phone', () => {
	beforeEach(() => emulator.reset());

	it('creates a contact with every field', async () => {
		const [created] = await run({
			resource: 'contact',
			operation: 'create',
			phone: '+1 (415) 555-9999',
			additionalFields: { name: 'Hans Müller', email: 'hans@beispiel.de', company: 'Example Co', notes: 'New contact' },
		});
		expect(created).toMatchObject({ phone: '+14155559999', name: 'Hans Müller', email: 'hans@beispiel.de', company: 'Example Co' });
		expect(emulator.apiRequests({ method: 'POST' })).toHaveLength(1);
	});

	it('returns the existing contact instead of a duplicate on a re-run (default)', async () => {
		const existing = emulator.records.contacts[0];
		const [out] = await run({ resource: 'contact', operation: 'create', phone: existing.phone });
		expect(out.id).toBe(existing.id);
		expect(emulator.apiRequests({ method: 'POST' })).toHaveLength(0);
	});

	it('fails naming the existing id when asked to', async () => {
		const existing = emulator.records.contacts[0];
		const error = await failure({
			resource: 'contact',
			operation: 'create',
			phone: existing.phone,
			options: { ifPhoneExists: 'fail' },
		});
		expect(error.message).toBe(`A contact with phone ${String(existing.phone)} already exists (ID ${existing.id})`);
	});

	it('creates anyway when asked to', async () => {
		const existing = emulator.records.contacts[0];
		await run({ resource: 'contact', operation: 'create', phone: existing.phone, options: { ifPhoneExists: 'create' } });
		expect(emulator.records.contacts.filter((c) => c.phone === existing.phone)).toHaveLength(2);
	});

	it.each([
		['returnExisting', 'the existing contact'],
		['fail', 'an error naming it'],
		['create', 'the 409 error'],
	])('a 409 (contact created between lookup and POST) with "%s" gives %s', async (mode) => {
		emulator.configure({ duplicatePhone: 'conflict' });
		const existing = emulator.records.contacts[0];
		// The lookup misses the contact, as if it was created a moment later elsewhere.
		emulator.inject({ kind: 'emptyList', path: '/v1/contacts', method: 'GET' });
		const parameters = { resource: 'contact', operation: 'create', phone: existing.phone, options: { ifPhoneExists: mode } };
		if (mode === 'returnExisting') {
			const [out] = await run(parameters);
			expect(out.id).toBe(existing.id);
		} else {
			const error = await failure(parameters);
			expect(error.message).toMatch(
				mode === 'fail' ? `already exists (ID ${existing.id})` : /conflict while trying to create a contact \(HTTP 409/,
			);
		}
		expect(emulator.apiRequests({ method: 'POST' }).map((r) => r.status)).toEqual([409]);
		expect(emulator.records.contacts.filter((c) => c.phone === existing.phone)).toHaveLength(1);
	});

	it('Find by Phone returns exact matches, nothing when none, or fails when asked', async () => {
		const existing = emulator.records.contacts[2];
		const found = await run({ resource: 'contact', operation: 'findByPhone', phone: existing.phone });
		expect(found.map((c) => c.id)).toEqual([existing.id]);
		expect(emulator.requests[0].query.phone).toBe(existing.phone);
		expect(await run({ resource: 'contact', operation: 'findByPhone', phone: '+4930123456' })).toEqual([]);
		const error = await failure({
			resource: 'contact',
			operation: 'findByPhone',
			phone: '+4930123456',
			options: { failIfNotFound: true },
		});
		expect(error.message).toBe('No contact with phone +4930123456 was found');
	});
});

describe('validation before any request', () => {
	beforeEach(() => emulator.reset());

	it.each([
		[{ resource: 'call', operation: 'get', callId: 'abc' }, 'Call ID: "abc" is not a valid InboundFlow ID'],
		[{ resource: 'call', operation: 'get', callId: '' }, 'Call ID: is empty'],
		[{ resource: 'contact', operation: 'get', contactId: '12345' }, 'Contact ID: "12345" is not a valid InboundFlow ID'],
		[{ resource: 'contact', operation: 'create', phone: '4155551234' }, 'Phone: "4155551234" is not an E.164 phone number'],
		[{ resource: 'contact', operation: 'create', phone: '' }, 'Phone: is empty'],
		[
			{ resource: 'contact', operation: 'create', phone: '+14155551234', additionalFields: { email: 'not-an-email' } },
			'Email: "not-an-email" is not a valid email address',
		],
		[
			{ resource: 'call', operation: 'getAll', filters: { createdAfter: 'yesterday' } },
			'Created After: "yesterday" is not a date',
		],
		[{ resource: 'call', operation: 'getAll', filters: { phone: 'abc' } }, 'Phone: "abc" is not an E.164 phone number'],
		[{ resource: 'lead', operation: 'getAll', limit: 0 }, 'Limit: 0 is not a whole number of 1 or more'],
	])('%o fails with "%s" and sends nothing', async (parameters, message) => {
		const error = await failure(parameters);
		expect(error.message.startsWith(message)).toBe(true);
		expect((error.context as IDataObject).itemIndex).toBe(0);
		expect(emulator.requests).toHaveLength(0);
	});

	it.each([
		['2026-02-31', 'Created After: "2026-02-31" is not a real date (2026-02-31 does not exist)'],
		['2026-13-01T00:00:00Z', 'Created After: "2026-13-01T00:00:00Z" is not a real date'],
	])('refuses the impossible date %s, naming the field, before any request', async (createdAfter, message) => {
		const error = await failure({ resource: 'call', operation: 'getAll', filters: { createdAfter } });
		expect(error.message.startsWith(message)).toBe(true);
		expect(emulator.requests).toHaveLength(0);
	});

	it.each([
		['Email', { phone: '+14155550100', additionalFields: { email: `${'a'.repeat(50_000)}@${'b.'.repeat(25_000)}` } }],
		['Email', { phone: '+14155550100', additionalFields: { email: 'a@'.repeat(50_000) } }],
		['Phone', { phone: '1'.repeat(100_000) }],
	])('refuses a 100 KB %s at once (no backtracking pattern)', async (field, extra) => {
		const started = Date.now();
		const error = await failure({ resource: 'contact', operation: 'create', ...extra });
		expect(error.message.startsWith(`${field}: is `)).toBe(true);
		expect(error.message).toMatch(/characters long; at most 320 are accepted/);
		expect(Date.now() - started).toBeLessThan(1000);
		expect(emulator.requests).toHaveLength(0);
	});

	it('reads a date without offset in the workflow time zone and sends UTC', async () => {
		await run({ resource: 'appointment', operation: 'getAll', filters: { createdAfter: '2026-02-24T12:00:00' } });
		// The harness workflow uses n8n's default time zone (America/New_York), UTC-5 in February.
		expect(emulator.requests[0].query.since).toBe('2026-02-24T17:00:00.000Z');
	});

	it('trims and lower-cases a valid id before sending it', async () => {
		const id = emulator.records.calls[0].id.toUpperCase();
		await run({ resource: 'call', operation: 'get', callId: ` ${id} ` });
		expect(emulator.requests[0].path).toBe(`/v1/calls/${id.toLowerCase()}`);
	});
});

describe('errors per item', () => {
	beforeEach(() => emulator.reset());

	it('names the unknown id on a 404 and the item index', async () => {
		const id = '0f0f0f0f-0f0f-4f0f-8f0f-0f0f0f0f0f0f';
		const error = await failure({ resource: 'contact', operation: 'get', contactId: id });
		expect(error.message).toMatch(new RegExp(`^Contact "${id}" was not found \\(HTTP 404`));
		expect((error.context as IDataObject).itemIndex).toBe(0);
	});

	it('names the missing scope of a Create with a read-only key', async () => {
		const error = await executeNode(
			{ resource: 'contact', operation: 'create', phone: '+14155557777', options: { ifPhoneExists: 'create' } },
			{ credentials: { ...credentials, apiKey: 'sk_test_readonly_0123456789ab' } },
		).catch((e: Error) => e);
		expect((error as Error).message).toMatch(/lacks the "contacts:write" scope needed to create a contact/);
	});

	it('names every scope a Create needs when the key has no contact scope at all', async () => {
		const error = await executeNode(
			{ resource: 'contact', operation: 'create', phone: '+14155557777' },
			{ credentials: { ...credentials, apiKey: 'sk_test_nocontacts_0123456789' } },
		).catch((e: Error) => e);
		expect((error as Error).message).toMatch(
			/^The API key lacks the "contacts:read" and "contacts:write" scopes needed to look up contacts by phone \(HTTP 403/,
		);
	});

	it('with continueOnFail, puts { error } for the failing item, pairs every item, and goes on', async () => {
		const good = emulator.records.calls[0].id;
		const items = [{ id: good }, { id: 'nope' }, { id: '0f0f0f0f-0f0f-4f0f-8f0f-0f0f0f0f0f0f' }, { id: good }];
		const out = await executeNode(
			{ resource: 'call', operation: 'get', callId: '={{ $json.id }}' },
			{ credentials, items, continueOnFail: true },
		);
		const rows = out[0];
		expect(rows).toHaveLength(4);
		expect(rows.map((r) => r.pairedItem)).toEqual([{ item: 0 }, { item: 1 }, { item: 2 }, { item: 3 }]);
		expect(rows[0].json.id).toBe(good);
		expect(rows[1].json.error).toMatch(/Call ID: "nope"/);
		expect(rows[2].json.error).toMatch(/was not found \(HTTP 404/);
		expect(rows[3].json.id).toBe(good);
	});

	it('without continueOnFail, stops at the failing item with its index', async () => {
		const items = [{ id: emulator.records.calls[0].id }, { id: 'bad' }];
		const error = (await executeNode(
			{ resource: 'call', operation: 'get', callId: '={{ $json.id }}' },
			{ credentials, items },
		).catch((e: Error) => e)) as Error & IDataObject;
		expect(error.message).toMatch(/^Call ID: "bad"/);
		expect((error.context as IDataObject).itemIndex).toBe(1);
	});

	it('reads each item its own parameters', async () => {
		const ids = emulator.records.contacts.slice(0, 3).map((c) => c.id);
		const out = await run(
			{ resource: 'contact', operation: 'get', contactId: '={{ $json.id }}' },
			{ items: ids.map((id) => ({ id })) },
		);
		expect(out.map((c) => c.id)).toEqual(ids);
	});
});
