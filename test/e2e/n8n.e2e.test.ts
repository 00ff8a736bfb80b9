// End to end inside a real, pinned n8n: our package installed as a community
// package, every action operation executed in a workflow, the polling trigger and the
// webhook trigger active in a running instance, the example workflows exercised.
import { buildWebhook, FULL_KEY, startEmulator, type InboundFlowEmulator } from '../../emulator/server';
import { freePort, N8n, outputOf, startSink, type Sink } from './n8n';
import {
	APPOINTMENT_POLLING_ID,
	appointmentPollingWorkflow,
	credentials,
	example,
	EXAMPLE_IDS,
	EXAMPLE_WEBHOOK_ID,
	EXAMPLES,
	FAILING_ID,
	failingWorkflow,
	MISSING_CALL,
	NEW_CONTACT_PHONE,
	OPERATIONS_ID,
	operationsWorkflow,
	WEBHOOK_ID,
	webhookWorkflow,
} from './workflows';

const SECRET = 'whsec_e2e_secret_123';
let emulator: InboundFlowEmulator;
let sink: Sink;
let n8n: N8n;

jest.setTimeout(300_000);

beforeAll(async () => {
	emulator = await startEmulator({ port: await freePort(), seed: { calls: 12, contacts: 8, leads: 10, appointments: 6 } });
	sink = await startSink();
	n8n = await N8n.create();
	await n8n.importCredentials(credentials(emulator.url, FULL_KEY, SECRET));
	await n8n.importWorkflows([
		operationsWorkflow(),
		failingWorkflow(),
		webhookWorkflow(sink.url),
		appointmentPollingWorkflow(sink.url),
		...EXAMPLES.map((file) => example(file, sink.url, true)),
	]);
});

afterAll(async () => {
	await n8n?.stop();
	await sink?.close();
	await emulator?.stop();
});

describe('n8n execute', () => {
	it('runs every operation of the action node in one workflow', async () => {
		const result = await n8n.execute(OPERATIONS_ID);
		expect(result.code).toBe(0);
		const run = result.run!;
		expect(outputOf(run, 'Account')[0]).toMatchObject({ organization_name: 'Dave Auto Shop', plan: 'Starter Plan' });
		const calls = outputOf(run, 'Calls');
		expect(calls).toHaveLength(5);
		expect(calls[0]).not.toHaveProperty('transcript');
		const [call] = outputOf(run, 'Call');
		expect(call.id).toBe(calls[0].id);
		expect(Array.isArray(call.messages)).toBe(true);
		expect(outputOf(run, 'Call Messages')).toHaveLength((call.messages as unknown[]).length);
		const contacts = outputOf(run, 'Contacts');
		expect(contacts).toHaveLength(8);
		expect(outputOf(run, 'Contact')[0].id).toBe(contacts[0].id);
		const [created] = outputOf(run, 'Create Contact');
		expect(created).toMatchObject({ phone: NEW_CONTACT_PHONE, name: 'Hans Müller' });
		expect(outputOf(run, 'Find by Phone').map((c) => c.id)).toEqual([created.id]);
		const leads = outputOf(run, 'New Leads');
		expect(leads.every((l) => l.status === 'new')).toBe(true);
		expect(leads).toHaveLength(emulator.records.leads.filter((l) => l.status === 'new').length);
		const appointments = outputOf(run, 'Booked Appointments');
		expect(appointments.length).toBeLessThanOrEqual(3);
		expect(appointments.every((a) => a.status === 'booked')).toBe(true);
		expect(result.stdout + result.stderr).not.toContain(FULL_KEY);
	});

	it('shows the clear error of a failing call in the execution', async () => {
		const result = await n8n.execute(FAILING_ID);
		expect(result.code).not.toBe(0);
		const output = result.stdout + result.stderr;
		expect(output).toContain(`Call "${MISSING_CALL}" was not found (HTTP 404`);
		expect(output).toMatch(/request ID req_[0-9a-f]{12}/);
		expect(output).not.toContain(FULL_KEY);
	});
});

describe('a running n8n with active workflows', () => {
	beforeAll(async () => {
		for (const id of [EXAMPLE_IDS.newLead, APPOINTMENT_POLLING_ID, 'InbFlowE2eWhk001', EXAMPLE_IDS.appointmentBooked]) {
			await n8n.publish(id);
		}
		emulator.clearLog();
		await n8n.start();
		// Activation runs one poll of each trigger at once: the baseline.
		const deadline = Date.now() + 60_000;
		while (Date.now() < deadline) {
			const paths = new Set(emulator.requests.map((r) => r.path));
			if (paths.has('/v1/leads') && paths.has('/v1/appointments')) break;
			await new Promise((r) => setTimeout(r, 250));
		}
	});

	it('the polling trigger sends each new lead and booked appointment exactly once', async () => {
		// The lead example fetches the call behind each lead; the last lead's call does not exist.
		const calls = [emulator.add('calls'), emulator.add('calls'), emulator.add('calls')];
		const leads = [...calls.map((call) => emulator.add('leads', { call_log_id: call.id })), emulator.add('leads')];
		const booked = [emulator.add('appointments', { status: 'booked' }), emulator.add('appointments', { status: 'booked' })];
		emulator.add('appointments', { status: 'cancelled' });
		await sink.waitFor(6, 60_000);
		// One more poll cycle: nothing may be sent twice.
		await new Promise((r) => setTimeout(r, 12_000));
		const crm = sink.received.filter((r) => r.path === '/crm/contacts');
		expect(crm.map((r) => r.body.lead_id).sort()).toEqual(leads.map((l) => l.id).sort());
		for (const [i, call] of calls.entries()) {
			const body = crm.find((r) => r.body.lead_id === leads[i].id)!.body;
			expect(body).toMatchObject({ phone: leads[i].caller_phone, call_id: call.id, call_summary: call.summary });
			expect(body.conversation).toMatch(/^assistant: Thanks for calling Dave Auto Shop/);
		}
		const orphan = crm.find((r) => r.body.lead_id === leads[3].id)!.body;
		expect(orphan).toMatchObject({ call_id: null, call_summary: leads[3].call_summary, conversation: '' });
		const slack = sink.received.filter((r) => r.path === '/slack/webhook');
		expect(slack.map((r) => r.body.appointment_id).sort()).toEqual(booked.map((a) => a.id).sort());
		expect(String(slack[0].body.text)).toMatch(/^New appointment: /);
		// Seeded records that existed at activation were not sent.
		expect(sink.received.filter((r) => r.path !== '/webhook-events')).toHaveLength(6);
	});

	it('the webhook trigger accepts a signed delivery once and refuses a bad signature', async () => {
		const url = `${n8n.url}/webhook/${WEBHOOK_ID}/inboundflow`;
		const delivery = buildWebhook({ event: 'call.completed', data: { call_id: 'c1', summary: 'hi' }, secret: SECRET });
		const post = async (body: string, headers: Record<string, string>) =>
			(await fetch(url, { method: 'POST', body, headers })).status;
		expect(await post(delivery.body, delivery.headers)).toBe(200);
		expect(await post(delivery.body, delivery.headers)).toBe(200);
		const forged = buildWebhook({ event: 'call.completed', data: {}, secret: 'wrong_secret_0000' });
		expect(await post(forged.body, forged.headers)).toBe(401);
		await new Promise((r) => setTimeout(r, 3000));
		const events = sink.received.filter((r) => r.path === '/webhook-events');
		expect(events).toHaveLength(1);
		expect(events[0].body).toMatchObject({ event: 'call.completed', data: { call_id: 'c1' } });
	});

	it('the appointment example turns a signed delivery into a Slack message with the contact’s name, time and service', async () => {
		const url = `${n8n.url}/webhook/${EXAMPLE_WEBHOOK_ID}/inboundflow`;
		const contact = emulator.add('contacts', { phone: '+14155550142', name: 'Greta Lind' });
		const appointment = (id: string, phone: string) => ({
			appointment_id: id,
			caller_phone: phone,
			caller_name: 'G. Lind on the phone',
			service_type: 'Oil Change',
			appointment_date: '2026-12-03',
			appointment_time_start: '2026-12-03T09:30:00.000Z',
		});
		const post = async (delivery: { body: string; headers: Record<string, string> }) =>
			(await fetch(url, { method: 'POST', body: delivery.body, headers: delivery.headers })).status;
		const before = sink.received.length;
		emulator.clearLog();
		const known = buildWebhook({ event: 'appointment.booked', data: appointment('a-known', contact.phone as string), secret: SECRET });
		expect(await post(known)).toBe(200);
		const stranger = buildWebhook({ event: 'appointment.booked', data: appointment('a-stranger', '+14155550143'), secret: SECRET });
		expect(await post(stranger)).toBe(200);
		const forged = buildWebhook({ event: 'appointment.booked', data: appointment('a-forged', '+14155550144'), secret: 'wrong_secret_0000' });
		expect(await post(forged)).toBe(401);
		await sink.waitFor(before + 2, 30_000);
		await new Promise((r) => setTimeout(r, 2000));
		const slack = sink.received.slice(before).filter((r) => r.path === '/slack/webhook');
		expect(slack.map((r) => r.body).sort((a, b) => String(a.appointment_id).localeCompare(String(b.appointment_id)))).toEqual([
			{ text: 'New appointment: Greta Lind – Oil Change, Thu 3 Dec 2026, 09:30', appointment_id: 'a-known', contact_id: contact.id },
			// No contact with that number: the name the caller gave.
			{ text: 'New appointment: G. Lind on the phone – Oil Change, Thu 3 Dec 2026, 09:30', appointment_id: 'a-stranger', contact_id: null },
		]);
		expect(emulator.requests.map((r) => r.query.phone).sort()).toEqual(['+14155550142', '+14155550143']);
	});
});
