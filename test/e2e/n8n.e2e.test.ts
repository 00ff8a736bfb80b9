// End to end inside real n8n processes, once per n8n version `npm test` installed (the
// pinned 2.x and the newest 1.123.x; see scripts/lib/env.mjs), one after the other: our
// package installed as a community package, every action operation executed in a
// workflow, the credential test through the editor's REST API, the node in the editor's
// node list, the polling trigger and the webhook trigger active in a running instance,
// the example workflows imported and active.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { DEFAULT_RECORDING_CONFIG, recordingChecksum } from '../../emulator/recordings';

import { buildWebhook, FULL_KEY, startEmulator, type InboundFlowEmulator } from '../../emulator/server';
import { startCapture, type Capture } from '../capture';
import { freePort, N8n, n8nInstalls, outputOf, PACKAGE_NAME, startSink, type ExecutionRun, type Sink } from './n8n';
import {
	APPOINTMENT_POLLING_ID,
	appointmentPollingWorkflow,
	CREDENTIAL_ID,
	credentials,
	example,
	EXAMPLE_IDS,
	EXAMPLE_WEBHOOK_ID,
	EXAMPLES,
	FAILING_ID,
	failingWorkflow,
	HTTP_REQUEST_ID,
	httpRequestWorkflow,
	MISSING_CALL,
	NEW_CONTACT_PHONE,
	OPERATIONS_ID,
	operationsWorkflow,
	WEBHOOK_ID,
	WEBHOOK_WORKFLOW_ID,
	webhookWorkflow,
} from './workflows';
import { RECORDINGS_ID, recordingsWorkflow } from './workflows';
import {
	RECORDING_POLL_ID,
	RECORDING_WEBHOOK_ID,
	RECORDING_WEBHOOK_WORKFLOW_ID,
	recordingPollWorkflow,
	recordingWebhookWorkflow,
} from './workflows';

/** The triggers' recordings (issue 25): a server that keeps the SHA-256 of each body posted to it, and its Authorization. */
interface FileSink {
	url: string;
	files: Map<string, { sha: string; bytes: number; authorization?: string }>;
	/** Every path posted to, in order (a file posted twice is here twice). */
	posts: string[];
	close(): Promise<void>;
}

async function startFileSink(): Promise<FileSink> {
	const files: FileSink['files'] = new Map();
	const posts: string[] = [];
	const server = http.createServer((req, res) => {
		const hash = createHash('sha256');
		let bytes = 0;
		req.on('data', (chunk: Buffer) => {
			hash.update(chunk);
			bytes += chunk.length;
		});
		req.on('end', () => {
			posts.push(req.url ?? '/');
			files.set(req.url ?? '/', { sha: hash.digest('hex'), bytes, authorization: req.headers.authorization });
			res.writeHead(200, { 'content-type': 'application/json' });
			res.end('{"ok":true}');
		});
	});
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	return {
		url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
		files,
		posts,
		close: async () => {
			server.closeAllConnections();
			await new Promise<void>((resolve) => server.close(() => resolve()));
		},
	};
}

const SECRET = 'whsec_e2e_secret_123';
const WRONG_KEY = 'sk_test_revoked_00000000000';
const POLLED = ['/v1/leads', '/v1/appointments'];
/**
 * The credential test's answer to a redirect, by n8n major version: n8n 1.x drops the
 * HTTP response from the error before the credential's responseCode rules see it (its
 * ExecutionBaseError re-declares `cause`), so it shows the request's own error.
 */
const REDIRECT_TEST_MESSAGE: Record<number, string> = {
	2: 'InboundFlow answered /v1/me with a redirect (HTTP 302), which the credential test does not follow: the API key is sent only to the Base URL. If InboundFlow really moved, set the Base URL to its new https:// address.',
	1: 'Request failed with status code 302',
};

jest.setTimeout(300_000);

// ---- The credential's guarantees for other nodes (security) ----
type Json = Record<string, unknown>;
const REDIRECT_CREDENTIAL = { id: 'InbFlowCredRedir', name: 'InboundFlow redirecting' };
const IMPOSTOR_CREDENTIAL = { id: 'InbFlowCredImpst', name: 'InboundFlow impostor' };
const PREFIX_CREDENTIAL = { id: 'InbFlowCredPrefx', name: 'InboundFlow under a path' };
const MAIN_CREDENTIAL = { id: CREDENTIAL_ID, name: 'InboundFlow account' };
/** What the credential must refuse, or the answer n8n must not follow. */
type Expect = 'redirect' | 'proxy' | 'tls' | 'outside' | 'ours';

interface Hostile {
	/** 127.0.0.2: another origin on a host that is not "localhost". */
	other: Capture;
	/** 127.0.0.1 on another port. */
	sibling: Capture;
	/** The redirecting Base URL: 302 to `sibling` for /sibling/…, else to `other`. */
	redirector: Capture;
	/** An https Base URL with an untrusted self-signed certificate. */
	impostor: Capture;
}

/**
 * Appends hostile probes to the HTTP Request workflow (one execution for all): n8n's
 * HTTP Request node at every 4.x version this n8n ships, with the InboundFlow credential,
 * following redirects from the Base URL (with "send credentials on cross-origin
 * redirect" where the version has it), through a proxy, with "Ignore SSL Issues"; one
 * request outside the Base URL's path; our node on the redirecting Base URL. Every probe
 * continues on error, so each one's outcome is in the run.
 */
function withProbes(workflow: Json, versions: number[], emulatorUrl: string, hostile: Hostile): Array<{ name: string; expect: Expect }> {
	const nodes = workflow.nodes as Json[];
	const connections = workflow.connections as Json;
	const probes: Array<{ name: string; expect: Expect }> = [];
	const add = (name: string, type: string, typeVersion: number, parameters: Json, credential: { id: string; name: string }, expect: Expect) => {
		const previous = nodes[nodes.length - 1].name as string;
		nodes.push({
			id: `5ec0f1a0-0000-4000-8000-${String(nodes.length).padStart(12, '0')}`,
			name,
			type,
			typeVersion,
			position: [nodes.length * 220, 300],
			parameters,
			credentials: { inboundFlowApi: credential },
			onError: 'continueRegularOutput',
			executeOnce: true,
		});
		connections[previous] = { main: [[{ node: name, type: 'main', index: 0 }]] };
		probes.push({ name, expect });
	};
	const request = (version: number, name: string, url: string, credential: { id: string; name: string }, options: Json, expect: Expect) =>
		add(`${name} ${version}`, 'n8n-nodes-base.httpRequest', version,
			{ url, authentication: 'predefinedCredentialType', nodeCredentialType: 'inboundFlowApi', options }, credential, expect);
	for (const v of versions) {
		const follow = { redirect: { redirect: { followRedirects: true, maxRedirects: 5 } }, ...(v >= 4.4 ? { sendCredentialsOnCrossOriginRedirect: true } : {}) };
		request(v, 'Redirect', `${hostile.redirector.url}/v1/me`, REDIRECT_CREDENTIAL, follow, 'redirect');
		request(v, 'Redirect sibling', `${hostile.redirector.url}/sibling/v1/me`, REDIRECT_CREDENTIAL, follow, 'redirect');
		request(v, 'Proxy', `${emulatorUrl}/v1/me`, MAIN_CREDENTIAL, { proxy: hostile.other.url }, 'proxy');
		request(v, 'Ignore SSL', `${hostile.impostor.url}/v1/me`, IMPOSTOR_CREDENTIAL, { allowUnauthorizedCerts: true }, 'tls');
	}
	request(4.2, 'Outside path', `${emulatorUrl}/v1/me`, PREFIX_CREDENTIAL, {}, 'outside');
	add('Ours redirected', `${PACKAGE_NAME}.inboundFlow`, 1, { resource: 'account', operation: 'get' }, REDIRECT_CREDENTIAL, 'ours');
	return probes;
}

describe.each(n8nInstalls())('n8n $version on Node $node', ({ bin }) => {
	let emulator: InboundFlowEmulator;
	let sink: Sink;
	let n8n: N8n;
	let hostile: Hostile;
	let probes: Array<{ name: string; expect: Expect }>;
	let httpRun: Promise<{ code: number; run?: ExecutionRun; stdout: string; stderr: string }> | undefined;
	let files: FileSink;
	/** The HTTP Request workflow with the probes: executed once, by the first test that needs it. */
	const runHttpRequests = async () => await (httpRun ??= n8n.execute(HTTP_REQUEST_ID));

	/** Waits until every polling trigger has polled `count` more times (one poll per 10-s slot). */
	async function pollCycles(count: number): Promise<void> {
		let since = Date.now();
		for (let i = 0; i < count; i++) {
			const deadline = Date.now() + 60_000;
			let latest = 0;
			while (Date.now() < deadline) {
				const times = POLLED.map((p) =>
					Math.max(0, ...emulator.apiRequests({ method: 'GET', path: p }).map((r) => r.at).filter((at) => at > since)),
				);
				if (times.every((t) => t > 0)) {
					latest = Math.max(...times);
					break;
				}
				await new Promise((r) => setTimeout(r, 250));
			}
			if (!latest) throw new Error(`the polling triggers did not poll within 60 s:\n${n8n.output.slice(-3000)}`);
			since = latest + 5000;
		}
	}

	beforeAll(async () => {
		emulator = await startEmulator({
			port: await freePort(),
			seed: { calls: 12, contacts: 8, leads: 10, appointments: 6 },
		});
		sink = await startSink();
		files = await startFileSink();
		const other = await startCapture({ host: '127.0.0.2' });
		const sibling = await startCapture();
		hostile = {
			other,
			sibling,
			redirector: await startCapture({ redirectTo: (path) => (path.startsWith('/sibling/') ? sibling.url : other.url) }),
			impostor: await startCapture({ tls: true }),
		};
		n8n = await N8n.create({ bin });
		const credential = ({ id, name }: { id: string; name: string }, baseUrl: string) => ({ id, name, type: 'inboundFlowApi', data: { apiKey: FULL_KEY, baseUrl } });
		await n8n.importCredentials([
			...credentials(emulator.url, FULL_KEY, SECRET),
			credential(REDIRECT_CREDENTIAL, hostile.redirector.url),
			credential(IMPOSTOR_CREDENTIAL, hostile.impostor.url),
			credential(PREFIX_CREDENTIAL, `${emulator.url}/inboundflow`),
		]);
		const httpRequests = httpRequestWorkflow(emulator.url, sink.url);
		probes = withProbes(httpRequests, n8n.major >= 2 ? [4, 4.1, 4.2, 4.3, 4.4, 4.5] : [4, 4.1, 4.2, 4.3], emulator.url, hostile);
		await n8n.importWorkflows([
			operationsWorkflow(),
			failingWorkflow(),
			httpRequests,
			webhookWorkflow(sink.url),
			appointmentPollingWorkflow(sink.url),
			recordingPollWorkflow(files.url),
			recordingWebhookWorkflow(files.url),
			...EXAMPLES.map((file) => example(file, sink.url, true)),
		]);
	});

	afterAll(async () => {
		await n8n?.stop();
		await sink?.close();
		await files?.close();
		for (const server of Object.values(hostile ?? {})) await server.close();
		await emulator?.stop();
		if (n8n) fs.rmSync(n8n.userFolder, { recursive: true, force: true });
	});

	describe('n8n execute', () => {
		it('runs every operation of the action node in one workflow', async () => {
			const result = await n8n.execute(OPERATIONS_ID);
			// n8n's own output says which node failed and why.
			if (result.code !== 0) throw new Error(`n8n execute failed (${result.code}):\n${result.stdout.slice(-4000)}\n${result.stderr.slice(-4000)}`);
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
			// InboundFlow's message echoes the key: n8n must store it nowhere (see the last test).
			emulator.inject({ kind: 'status', status: 404, path: '/v1/calls/', message: `Call not found (key ${FULL_KEY})` });
			const result = await n8n.execute(FAILING_ID);
			expect(result.code).not.toBe(0);
			const output = result.stdout + result.stderr;
			expect(output).toContain(`Call "${MISSING_CALL}" was not found (HTTP 404`);
			expect(output).toContain('Call not found (key [redacted])');
			expect(output).toMatch(/request ID req_[0-9a-f]{12}/);
			expect(output).not.toContain(FULL_KEY);
		});

		// Call recordings (issue 25): one execution downloads a call's recording under three
		// settings of the emulator's switches and saves each file with Read/Write Files from
		// Disk; n8n 2.x stores binary data on disk (filesystem mode), 1.x in memory.
		it('saves call recordings to disk byte for byte; the key goes to the API origin only', async () => {
			const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inboundflow-recordings-'));
			const call = emulator.add('calls', { status: 'completed' });
			const large = 2_500_000;
			const variants = [
				{ name: 'api', config: { recordingUrl: 'api', recordingRedirect: false } },
				{
					name: 'storage',
					config: { recordingUrl: 'storage', recordingFileName: 'from-storage.mp3', recordingContentLength: false },
				},
				{
					name: 'redirect',
					config: { recordingUrl: 'api', recordingRedirect: true, recordingFileName: null, recordingBytes: large },
				},
			];
			// n8n 2.x lets Read/Write Files from Disk write only below N8N_RESTRICT_FILE_ACCESS_TO.
			n8n.extraEnv.N8N_RESTRICT_FILE_ACCESS_TO = dir;
			emulator.recordings.requests = [];
			try {
				await n8n.importWorkflows([recordingsWorkflow(emulator.url, call.id, dir, variants)]);
				const result = await n8n.execute(RECORDINGS_ID);
				if (result.code !== 0) throw new Error(`the recordings workflow failed:\n${result.stdout.slice(-3000)}\n${result.stderr.slice(-3000)}`);
				const sha = (file: string) => createHash('sha256').update(fs.readFileSync(path.join(dir, file))).digest('hex');
				const small = DEFAULT_RECORDING_CONFIG.recordingBytes;
				expect(fs.readdirSync(dir).sort()).toEqual([`api-call-${call.id}.mp3`, `redirect-call-${call.id}.mp3`, 'storage-from-storage.mp3']);
				expect(sha(`api-call-${call.id}.mp3`)).toBe(recordingChecksum(call.id, small));
				expect(sha('storage-from-storage.mp3')).toBe(recordingChecksum(call.id, small));
				expect(sha(`redirect-call-${call.id}.mp3`)).toBe(recordingChecksum(call.id, large));
				// The capture: the API origin got the key, the storage origin never did.
				const seen = emulator.recordings.requests.map((r) => `${r.origin} ${r.status} ${r.authorization === undefined ? 'no key' : r.authorization === `Bearer ${FULL_KEY}` ? 'key' : 'other'}`);
				expect(seen).toEqual(['api 200 key', 'storage 200 no key', 'api 302 key', 'storage 200 no key']);
				expect(result.stdout + result.stderr).not.toContain(FULL_KEY);
			} finally {
				delete n8n.extraEnv.N8N_RESTRICT_FILE_ACCESS_TO;
				emulator.configure(DEFAULT_RECORDING_CONFIG);
				fs.rmSync(dir, { recursive: true, force: true });
			}
		});
	});

	it('lends the credential to n8n\'s HTTP Request node for the Base URL only', async () => {
		emulator.clearLog();
		const result = await runHttpRequests();
		const run = result.run;
		if (!run) throw new Error(`no run:\n${result.stdout.slice(-2000)}\n${result.stderr.slice(-2000)}`);
		expect(JSON.stringify(outputOf(run, 'Me')[0])).toContain('becc3c5d-1755-420c-a3af-fe51ab2d04ca');
		// Only "Me" reached the API: the probe outside the Base URL's path was refused.
		expect(emulator.apiRequests({ path: '/v1/me' }).map((r) => r.status)).toEqual([200]);
		const refused = JSON.stringify(outputOf(run, 'Elsewhere')[0]);
		expect(refused).toContain(`The InboundFlow API key is sent only to ${emulator.url}`);
		expect(result.stdout + result.stderr).not.toContain(FULL_KEY);
	});

	it('keeps the key from every other origin: n8n\'s HTTP Request node at every 4.x version following redirects, through a proxy, ignoring SSL issues, and our node', async () => {
		const { run, stdout, stderr } = await runHttpRequests();
		if (!run) throw new Error(`no run:\n${stdout.slice(-2000)}\n${stderr.slice(-2000)}`);
		const { other, sibling, redirector, impostor } = hostile;
		const sentOnlyTo = 'The InboundFlow API key is sent only to';
		const wanted: Record<Expect, (text: string) => boolean> = {
			redirect: (text) => /\b302\b/.test(text),
			proxy: (text) => text.includes(`${sentOnlyTo} ${emulator.url} (the credential's Base URL), never through a proxy`),
			tls: (text) => text.includes(`${sentOnlyTo} ${impostor.url} (the credential's Base URL), never with TLS certificate checks turned off`),
			outside: (text) => text.includes(`${sentOnlyTo} ${emulator.url}/inboundflow (the credential's Base URL); this request goes to ${emulator.url}/v1/me`),
			ours: (text) => text.includes(`with a redirect (HTTP 302) to ${other.url}, which the node does not follow`),
		};
		const outcomes = probes.map(({ name, expect: what }) => ({ name, what, text: JSON.stringify(outputOf(run, name)) }));
		// Every probe that a capture answered (the key went there) or that failed otherwise, at once.
		const wrong = outcomes
			.filter(({ what, text }) => text.includes('"captured":true') || !wanted[what](text))
			.map(({ name, text }) => `${name}: ${text.slice(0, 300)}`);
		expect(wrong).toEqual([]);
		// Every redirect probe reached the Base URL (with the key: it is the Base URL) once.
		const redirects = outcomes.filter((o) => o.what === 'redirect' || o.what === 'ours').length;
		expect(redirector.withSecret(FULL_KEY)).toHaveLength(redirects);
		// No other server saw the key; the proxy and the impostor saw no request at all.
		expect(other.withSecret(FULL_KEY)).toEqual([]);
		expect(sibling.withSecret(FULL_KEY)).toEqual([]);
		expect(other.seen.filter((s) => s.url.startsWith('http'))).toEqual([]);
		expect(impostor.seen).toEqual([]);
		expect(stdout + stderr).not.toContain(FULL_KEY);
	});

	describe('a running n8n', () => {
		beforeAll(async () => {
			emulator.clearLog();
			await n8n.start();
			await n8n.setupOwner();
			// As a user does in the editor; activation runs one poll of each trigger at
			// once: the baseline.
			const active = [EXAMPLE_IDS.newLead, APPOINTMENT_POLLING_ID, WEBHOOK_WORKFLOW_ID, EXAMPLE_IDS.appointmentBooked];
			for (const id of active) await n8n.activate(id);
			await pollCycles(1);
		});

		it('lists the three nodes, and the action node as an AI tool, in the editor’s node list', async () => {
			const types = await n8n.nodeTypes();
			const ours = types.filter((t) => t.name.startsWith(`${PACKAGE_NAME}.`));
			expect(ours.map((t) => t.name).sort()).toEqual(
				['inboundFlow', 'inboundFlowTool', 'inboundFlowTrigger', 'inboundFlowWebhookTrigger'].map(
					(n) => `${PACKAGE_NAME}.${n}`,
				),
			);
			expect(ours.find((t) => t.name === `${PACKAGE_NAME}.inboundFlow`)?.displayName).toBe('InboundFlow');
		});

		it('the credential test accepts the right key and names the problem with a wrong one', async () => {
			const credential = (apiKey: string, baseUrl = emulator.url) => ({
				id: CREDENTIAL_ID,
				name: 'InboundFlow account',
				type: 'inboundFlowApi',
				data: { apiKey, baseUrl },
			});
			emulator.clearLog();
			expect(await n8n.testCredential(credential(FULL_KEY))).toMatchObject({ status: 'OK' });
			const wrong = await n8n.testCredential(credential(WRONG_KEY));
			expect(wrong.status).toBe('Error');
			// n8n 1.x drops the HTTP response from the error before the credential's
			// responseCode rules see it, so it shows its own text for any 401.
			expect(wrong.message).toBe(
				n8n.major >= 2
					? 'InboundFlow rejected the API key (HTTP 401). Check that you copied the whole key and that it has not been revoked.'
					: 'Authorization failed - please check your credentials',
			);
			expect(JSON.stringify(wrong)).not.toContain(WRONG_KEY);
			// Both reached the API's identity endpoint (n8n retries a 401 once).
			const statuses = emulator.apiRequests({ path: '/v1/me' }).map((r) => r.status);
			expect(statuses[0]).toBe(200);
			expect(new Set(statuses.slice(1))).toEqual(new Set([401]));
			// A Base URL where no InboundFlow API answers.
			const nowhere = await n8n.testCredential(credential(FULL_KEY, `${emulator.url}/not-the-api`));
			expect(nowhere.status).toBe('Error');
			expect(nowhere.message).toBe(
				n8n.major >= 2
					? 'No InboundFlow API answered at this Base URL (HTTP 404 on /v1/me). Check the Base URL.'
					: 'The resource you are requesting could not be found',
			);
		});

		it('has the example workflows imported, the two of `npm start` active', async () => {
			for (const id of [EXAMPLE_IDS.newLead, EXAMPLE_IDS.appointmentBooked]) {
				expect(await n8n.workflow(id)).toMatchObject({ id, active: true });
			}
			expect(await n8n.workflow(EXAMPLE_IDS.dailyDigest)).toMatchObject({ id: EXAMPLE_IDS.dailyDigest, active: false });
		});

		it('the polling trigger sends each new lead and booked appointment exactly once', async () => {
			// The lead example fetches the call behind each lead; one lead's call does not exist.
			const calls = [emulator.add('calls'), emulator.add('calls'), emulator.add('calls')];
			const leads = [...calls.map((call) => emulator.add('leads', { call_log_id: call.id })), emulator.add('leads')];
			const orphan = leads[3];
			const booked = [emulator.add('appointments', { status: 'booked' }), emulator.add('appointments', { status: 'booked' })];
			emulator.add('appointments', { status: 'cancelled' });
			await sink.waitFor(6, 60_000);
			// More records while the triggers keep polling.
			calls.push(emulator.add('calls'));
			leads.push(emulator.add('leads', { call_log_id: calls[3].id }));
			booked.push(emulator.add('appointments', { status: 'booked' }));
			await sink.waitFor(8, 60_000);
			// Two more poll cycles: nothing may be sent twice.
			await pollCycles(2);
			const crm = sink.received.filter((r) => r.path === '/crm/contacts');
			expect(crm.map((r) => r.body.lead_id).sort()).toEqual(leads.map((l) => l.id).sort());
			for (const [i, lead] of leads.entries()) {
				if (lead === orphan) continue;
				const call = calls[i < 3 ? i : 3];
				const body = crm.find((r) => r.body.lead_id === lead.id)!.body;
				expect(body).toMatchObject({ phone: lead.caller_phone, call_id: call.id, call_summary: call.summary });
				expect(body.conversation).toMatch(/^assistant: Thanks for calling Dave Auto Shop/);
			}
			expect(crm.find((r) => r.body.lead_id === orphan.id)!.body).toMatchObject({
				call_id: null,
				call_summary: orphan.call_summary,
				conversation: '',
			});
			const slack = sink.received.filter((r) => r.path === '/slack/webhook');
			expect(slack.map((r) => r.body.appointment_id).sort()).toEqual(booked.map((a) => a.id).sort());
			expect(String(slack[0].body.text)).toMatch(/^New appointment: /);
			// Seeded records that existed at activation were not sent.
			expect(sink.received.filter((r) => r.path !== '/webhook-events')).toHaveLength(8);
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
			// The contact look-ups (the polling triggers keep polling meanwhile).
			const lookups = emulator.requests.filter((r) => r.query.phone !== undefined);
			expect(lookups.map((r) => r.query.phone).sort()).toEqual(['+14155550142', '+14155550143']);
		});

		// The triggers' Download Recording (issue 25): a New Call (completed) polling workflow and a
		// call.completed webhook workflow with Fetch Full Call each post the file they got to a
		// local server that hashes it. Activated here, so no other test's calls reach them; the
		// tests after this one add no calls.
		it('the polling and webhook triggers hand each call\'s recording to the workflow byte for byte; the key goes to the API origin only', async () => {
			await n8n.activate(RECORDING_POLL_ID);
			await n8n.activate(RECORDING_WEBHOOK_WORKFLOW_ID);
			const webhookUrl = `${n8n.url}/webhook/${RECORDING_WEBHOOK_ID}/inboundflow`;
			const small = DEFAULT_RECORDING_CONFIG.recordingBytes;
			const large = 1_500_000;
			const variants = [
				{ config: { recordingUrl: 'storage', recordingBytes: small }, requests: ['storage 200 no key'] },
				{ config: { recordingUrl: 'api', recordingRedirect: true, recordingBytes: large }, requests: ['api 302 key', 'storage 200 no key'] },
			] as const;
			try {
				// Let the activation's baseline poll pass before the first call is added.
				await new Promise((r) => setTimeout(r, 3000));
				for (const variant of variants) {
					emulator.configure(variant.config);
					emulator.recordings.requests = [];
					const call = emulator.add('calls', { status: 'completed' });
					const delivery = buildWebhook({ event: 'call.completed', data: { call_id: call.id }, secret: SECRET });
					const answer = await fetch(webhookUrl, { method: 'POST', body: delivery.body, headers: delivery.headers });
					expect(answer.status).toBe(200);
					const wanted = [`/poll/${call.id}`, `/webhook/${call.id}`];
					const until = Date.now() + 60_000;
					while (!wanted.every((p) => files.files.has(p)) && Date.now() < until) await new Promise((r) => setTimeout(r, 250));
					if (!wanted.every((p) => files.files.has(p))) {
						throw new Error(`the recordings did not arrive: ${JSON.stringify([...files.files.keys()])}\n${n8n.output.slice(-3000)}`);
					}
					for (const p of wanted) {
						expect(files.files.get(p)).toEqual({ sha: recordingChecksum(call.id, variant.config.recordingBytes), bytes: variant.config.recordingBytes, authorization: undefined });
					}
					// The capture: per download the API origin got the key, the storage origin never did.
					const seen = emulator.recordings.requests.map((r) => `${r.origin} ${r.status} ${r.authorization === undefined ? 'no key' : r.authorization === `Bearer ${FULL_KEY}` ? 'key' : 'other'}`);
					expect(seen.sort()).toEqual([...variant.requests, ...variant.requests].sort());
				}
				// Each call once: nothing more arrives over another poll.
				await new Promise((r) => setTimeout(r, 11_000));
				expect(files.posts).toHaveLength(4);
			} finally {
				// Calls now point at the emulator's own storage origin: the New Call trigger stays
				// active, and no download may ever leave this machine.
				emulator.configure({ ...DEFAULT_RECORDING_CONFIG, recordingUrl: 'storage' });
			}
		});

		it('the credential test refuses a redirect, names it, and sends the key to no other origin', async () => {
			const { other, redirector } = hostile;
			const before = redirector.seen.length;
			const result = await n8n.testCredential({
				id: CREDENTIAL_ID,
				name: 'InboundFlow account',
				type: 'inboundFlowApi',
				data: { apiKey: FULL_KEY, baseUrl: redirector.url },
			});
			expect(result).toEqual({ status: 'Error', message: REDIRECT_TEST_MESSAGE[n8n.major >= 2 ? 2 : 1] });
			expect(redirector.seen.slice(before).map((s) => s.url)).toEqual(['/v1/me']);
			expect(other.withSecret(FULL_KEY)).toEqual([]);
			// A Base URL with a query is refused before anything is sent.
			emulator.clearLog();
			const query = await n8n.testCredential({
				id: CREDENTIAL_ID,
				name: 'InboundFlow account',
				type: 'inboundFlowApi',
				data: { apiKey: FULL_KEY, baseUrl: `${emulator.url}/?region=eu` },
			});
			expect(query.status).toBe('Error');
			expect(query.message).toContain(`Base URL: "${emulator.url}/?region=eu" must not contain a query ("?…")`);
			expect(emulator.apiRequests({ path: '/v1/me' })).toEqual([]);
		});

		it('refuses a plain-http Base URL in the credential test without sending the key', async () => {
			const seen: string[] = [];
			const server = http.createServer((req, res) => {
				seen.push(String(req.headers.authorization ?? ''));
				res.end('{}');
			});
			await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve));
			const baseUrl = `http://127.0.0.2:${(server.address() as AddressInfo).port}`;
			try {
				const result = await n8n.testCredential({
					id: CREDENTIAL_ID,
					name: 'InboundFlow account',
					type: 'inboundFlowApi',
					data: { apiKey: FULL_KEY, baseUrl },
				});
				expect(result.status).toBe('Error');
				expect(result.message).toContain(`Base URL: "${baseUrl}" uses http://, which would send the API key unencrypted`);
				expect(seen).toEqual([]);
			} finally {
				await new Promise<void>((resolve) => server.close(() => resolve()));
			}
		});

		it('stores the API key and the signing secret nowhere: not in executions, not in logs', async () => {
			const executions = await n8n.sqlite<{ id: string; data: string }>('SELECT executionId AS id, data FROM execution_data');
			expect(executions.length).toBeGreaterThan(3);
			const stored = executions.map((e) => e.data).join('\n');
			expect(stored).toContain('[redacted]'); // the failing call's echoed key, redacted
			expect(stored).not.toContain(FULL_KEY);
			expect(stored).not.toContain(SECRET);
			const logs = n8n.allOutput();
			expect(logs.length).toBeGreaterThan(0);
			expect(logs).not.toContain(FULL_KEY);
			expect(logs).not.toContain(SECRET);
		});
	});
});
