// Our node as a tool of n8n's AI Agent, in a real n8n: the agent's chat model is n8n's
// own OpenAI node pointed at a scripted stand-in (no LLM runs here), which asks for
// tool calls. Proves the tool runs with the model's arguments against the emulator,
// that its result (or its error) reaches the model, and runs the daily-digest example.
import { FULL_KEY, startEmulator, type InboundFlowEmulator } from '../../emulator/server';
import { startModelStandIn, textOf, toolResults, toolRounds, type ChatRequest, type ModelStandIn } from './model-standin';
import { freePort, N8n, n8nInstalls, outputOf, startSink, type Sink } from './n8n';
import {
	AGENT_ERRORS_ID,
	AGENT_ID,
	AGENT_MODEL_CREDENTIAL_ID,
	agentWorkflow,
	credentials,
	example,
	EXAMPLE_IDS,
	extraCredential,
	fromAI,
	MISSING_CALL,
	modelCredential,
	READONLY_CREDENTIAL_ID,
} from './workflows';

const READONLY_KEY = 'sk_test_readonly_0123456789ab';
const NEW_LEAD_PHONE = '+14155550177';
const ERROR_PHONE = '+14155550188';

let emulator: InboundFlowEmulator;
let standIn: ModelStandIn;
let sink: Sink;
let n8n: N8n;

jest.setTimeout(300_000);

const leadsTool = {
	name: 'Find Leads',
	parameters: {
		resource: 'lead',
		operation: 'getAll',
		returnAll: false,
		limit: 10,
		// The simplified lead has no call_log_id, which the model needs to reach the call.
		simplify: false,
		filters: {
			status: fromAI('status', 'Lead status: new, contacted, qualified, converted or lost'),
			urgency: fromAI('urgency', 'Lead urgency: low, medium or high'),
		},
	},
};
const callTool = {
	name: 'Get Call',
	parameters: {
		resource: 'call',
		operation: 'get',
		// Version 2: a resource locator whose value the model fills, as the editor's "let the model define" sets it.
		callId: { __rl: true, mode: 'id', value: fromAI('call_id', 'ID (UUID) of the call') },
		simplify: true,
	},
};
const createContactTool = (credentialId?: string) => ({
	name: 'Create Contact',
	credentialId,
	parameters: {
		resource: 'contact',
		operation: 'create',
		phone: fromAI('phone', 'Phone number in E.164 form, e.g. +14155551234'),
		additionalFields: { name: fromAI('name', 'Full name of the contact') },
	},
});

/** Runs a workflow with a model script; returns the execution and the chat requests it made. */
async function runAgent(id: string, script: ModelStandIn['script']) {
	standIn.script = script;
	const before = standIn.completions().length;
	emulator.clearLog();
	const result = await n8n.execute(id);
	return { result, chats: standIn.completions().slice(before) };
}

/** Fails with what n8n printed (its error, the tail of its output) when `n8n execute` did not succeed. */
function expectSucceeded(result: { code: number; stdout: string; stderr: string }): void {
	if (result.code === 0) return;
	throw new Error(
		`n8n execute failed (exit code ${result.code}).\n--- stderr (tail) ---\n${result.stderr.slice(-4000)}\n--- stdout (tail) ---\n${result.stdout.slice(-4000)}`,
	);
}

function toolsOf(request: ChatRequest) {
	return (request.body.tools ?? []).map((t) => t.function);
}

function printTools(title: string, request: ChatRequest): void {
	const tools = toolsOf(request).map(({ name, description, parameters }) => ({
		name,
		description,
		parameters: (parameters as { properties?: unknown } | undefined)?.properties,
	}));
	// For whoever writes the node's descriptions: what a model is shown.
	process.stdout.write(`${title}: the tools n8n sent to the model\n${JSON.stringify(tools, null, 2)}\n`);
}

// Once per tested n8n (npm test: 2.41.1 and 1.123.81), each with its own emulator, stand-in
// and n8n user folder.
describe.each(n8nInstalls())('n8n $version', ({ bin }) => {
	beforeAll(async () => {
		emulator = await startEmulator({ port: await freePort(), seed: { calls: 8, contacts: 6, leads: 12, appointments: 6 } });
		standIn = await startModelStandIn();
		sink = await startSink();
		n8n = await N8n.create({ bin });
		await n8n.importCredentials([
			...credentials(emulator.url, FULL_KEY, 'whsec_agent_e2e_secret'),
			extraCredential(READONLY_CREDENTIAL_ID, 'InboundFlow read-only', emulator.url, READONLY_KEY),
			modelCredential(standIn.baseUrl, AGENT_MODEL_CREDENTIAL_ID),
			modelCredential(standIn.baseUrl),
		]);
		await n8n.importWorkflows([
			agentWorkflow(AGENT_ID, 'InboundFlow e2e: agent with tools', 'Which new high-urgency leads came in? Call the first one back.', [
				leadsTool,
				callTool,
				createContactTool(),
			]),
			// n8n 2.x hands a tool's error to the model by default (On Error: Stop Workflow
			// opts out). n8n 1.x's Agent 3 stops the workflow on a tool's error unless the tool
			// node continues on error: a 1.x user sets On Error to Continue, as here.
			agentWorkflow(
				AGENT_ERRORS_ID,
				'InboundFlow e2e: agent meets errors',
				'Look up calls and save a contact.',
				[callTool, createContactTool(READONLY_CREDENTIAL_ID)],
				n8n.major < 2 ? 'continueRegularOutput' : undefined,
			),
			example('daily-digest-agent.json', sink.url, { manualStart: true }),
		]);
	});

	afterAll(async () => {
		await sink?.close();
		await standIn?.close();
		await emulator?.stop();
	});

	describe('InboundFlow as a tool of the AI Agent', () => {
		it('runs each tool with the model’s arguments, and each result reaches the model', async () => {
			const call = emulator.add('calls', { status: 'completed', summary: 'Brakes squeal; wants a quote this week.' });
			emulator.add('leads', {
				status: 'new',
				urgency: 'high',
				caller_name: 'Nora Petersen',
				caller_phone: NEW_LEAD_PHONE,
				call_log_id: call.id,
			});
			expect(emulator.records.contacts.some((c) => c.phone === NEW_LEAD_PHONE)).toBe(false);

			// The model's side: each step decides from what the previous tool returned.
			let final = '';
			const { result, chats } = await runAgent(AGENT_ID, (request) => {
				const results = toolResults(request);
				if (results.length === 0) return { toolCalls: [{ name: 'Find_Leads', arguments: { status: 'new', urgency: 'high' } }] };
				const leads = JSON.parse(results[0].content) as Array<Record<string, string>>;
				const lead = leads.find((l) => l.caller_phone === NEW_LEAD_PHONE);
				if (!lead) return { content: 'The lead is not in the tool result.' };
				if (results.length === 1) return { toolCalls: [{ name: 'Get_Call', arguments: { call_id: lead.call_log_id } }] };
				if (results.length === 2) {
					return {
						toolCalls: [{ name: 'Create_Contact', arguments: { phone: lead.caller_phone, name: lead.caller_name } }],
					};
				}
				const [gotCall] = JSON.parse(results[1].content) as Array<Record<string, string>>;
				const [contact] = JSON.parse(results[2].content) as Array<Record<string, string>>;
				final = `Call back ${lead.caller_name}: ${gotCall.summary} (contact ${contact.id})`;
				return { content: final };
			});

			expectSucceeded(result);
			expect(chats).toHaveLength(4);
			printTools('Agent test', chats[0]);
			const tools = toolsOf(chats[0]);
			expect(tools.map((t) => t.name).sort()).toEqual(['Create_Contact', 'Find_Leads', 'Get_Call']);
			for (const tool of tools) expect(tool.description).toMatch(/\S/);
			const schema = (name: string) =>
				Object.keys((tools.find((t) => t.name === name)?.parameters?.properties as object | undefined) ?? {}).sort();
			expect(schema('Find_Leads')).toEqual(['status', 'urgency']);
			expect(schema('Get_Call')).toEqual(['call_id']);
			expect(schema('Create_Contact')).toEqual(['name', 'phone']);

			// Our node ran against the emulator with the model's arguments.
			const api = emulator.requests.map((r) => ({ method: r.method, path: r.path, query: r.query, status: r.status }));
			expect(api).toContainEqual({
				method: 'GET',
				path: '/v1/leads',
				query: { status: 'new', urgency: 'high', limit: '10' },
				status: 200,
			});
			expect(api).toContainEqual({ method: 'GET', path: `/v1/calls/${call.id}`, query: {}, status: 200 });
			expect(api).toContainEqual({ method: 'POST', path: '/v1/contacts', query: {}, status: 201 });
			const created = emulator.records.contacts.find((c) => c.phone === NEW_LEAD_PHONE);
			expect(created).toMatchObject({ name: 'Nora Petersen' });

			// Each result reached the model in the next request.
			const expectedLeads = emulator.records.leads
				.filter((l) => l.status === 'new' && l.urgency === 'high')
				.map((l) => l.id)
				.sort();
			const seenLeads = (JSON.parse(toolResults(chats[1])[0].content) as Array<{ id: string }>).map((l) => l.id).sort();
			expect(expectedLeads.length).toBeLessThanOrEqual(10);
			expect(seenLeads).toEqual(expectedLeads);
			const [seenCall] = JSON.parse(toolResults(chats[2])[1].content) as Array<Record<string, unknown>>;
			expect(seenCall).toMatchObject({ id: call.id, summary: call.summary });
			expect(seenCall).not.toHaveProperty('transcript');
			const [seenContact] = JSON.parse(toolResults(chats[3])[2].content) as Array<Record<string, unknown>>;
			expect(seenContact).toMatchObject({ id: created!.id, phone: NEW_LEAD_PHONE, name: 'Nora Petersen' });

			// The model's final answer is the agent's output.
			expect(outputOf(result.run!, 'AI Agent')[0].output).toBe(final);
			expect(JSON.stringify(standIn.requests)).not.toContain(FULL_KEY);
			expect(result.stdout + result.stderr).not.toContain(FULL_KEY);
		});

		it('gives the model a readable error instead of failing the agent (bad id, unknown id, missing scope)', async () => {
			const { result, chats } = await runAgent(
				AGENT_ERRORS_ID,
				toolRounds(
					[
						[{ name: 'Get_Call', arguments: { call_id: 'the-latest-call' } }],
						[{ name: 'Get_Call', arguments: { call_id: MISSING_CALL } }],
						[{ name: 'Create_Contact', arguments: { phone: ERROR_PHONE, name: 'Olga Berg' } }],
					],
					() => 'I could not do that.',
				),
			);
			expectSucceeded(result);
			expect(outputOf(result.run!, 'AI Agent')[0].output).toBe('I could not do that.');
			expect(chats).toHaveLength(4);
			const errors = toolResults(chats[3]).map((r) => JSON.parse(r.content) as unknown);
			process.stdout.write(`Agent test: tool errors as the model received them\n${JSON.stringify(errors, null, 2)}\n`);
			const text = errors.map((e) => JSON.stringify(e));
			expect(text[0]).toContain('\\"the-latest-call\\" is not a valid InboundFlow ID');
			expect(text[1]).toContain(`Call \\"${MISSING_CALL}\\" was not found (HTTP 404`);
			expect(text[2]).toMatch(/contacts:write/);
			for (const error of errors) expect(JSON.stringify(error)).toMatch(/^\[?\{"error":/);

			// The bad id never left the node; the others did and failed at the API.
			const api = emulator.requests.map((r) => `${r.method} ${r.path} ${r.status}`);
			expect(api.some((r) => r.includes('the-latest-call'))).toBe(false);
			expect(api).toContain(`GET /v1/calls/${MISSING_CALL} 404`);
			expect(api).toContain('POST /v1/contacts 403');
			expect(emulator.records.contacts.some((c) => c.phone === ERROR_PHONE)).toBe(false);
			expect(JSON.stringify(standIn.requests)).not.toContain(READONLY_KEY);
		});
	});

	describe('example: daily digest by an AI Agent', () => {
		it('looks up yesterday’s leads, appointments and calls through the tools and posts the digest', async () => {
			const fresh = [
				emulator.add('leads', { status: 'new', urgency: 'high', caller_name: 'Ida Lund', interest: 'brake repair' }),
				emulator.add('leads', { status: 'new', urgency: 'high', caller_name: 'Kai Moreau', interest: 'new tires' }),
			];
			emulator.add('appointments', { status: 'booked', caller_name: 'Ida Lund', service_type: 'Brake Inspection' });
			sink.received.length = 0;

			let since = '';
			let final = '';
			const { result, chats } = await runAgent(EXAMPLE_IDS.dailyDigest, (request) => {
				const results = toolResults(request);
				if (results.length === 0) {
					const prompt = textOf((request.body.messages ?? []).find((m) => m.role === 'user')?.content);
					since = /since (\S+):/.exec(prompt)?.[1] ?? '';
					return {
						toolCalls: [
							{ name: 'Get_Leads', arguments: { created_after: since, status: 'new', urgency: 'high' } },
							{ name: 'Get_Appointments', arguments: { created_after: since, status: 'booked' } },
							{ name: 'Get_Calls', arguments: { created_after: since } },
						],
					};
				}
				const [leads, appointments, calls] = results.map((r) => JSON.parse(r.content) as Array<Record<string, string>>);
				final = [
					`Call back first: ${leads.map((l) => `${l.caller_name} (${l.caller_phone}, ${l.interest})`).join('; ')}`,
					`Booked: ${appointments.map((a) => `${a.caller_name}, ${a.service_type}`).join('; ')}`,
					`Calls answered: ${calls.length}`,
				].join('\n');
				return { content: final };
			});

			expectSucceeded(result);
			expect(chats).toHaveLength(2);
			printTools('Daily digest example', chats[0]);
			const system = (chats[0].body.messages ?? []).find((m) => m.role === 'system');
			expect(textOf(system?.content)).toContain('InboundFlow');
			expect(Number.isNaN(Date.parse(since))).toBe(false);
			const sinceUtc = new Date(since).toISOString();

			// The tools ran with the model's arguments, the date included.
			const query = (path: string) => emulator.requests.find((r) => r.path === path)?.query;
			expect(query('/v1/leads')).toEqual({ since: sinceUtc, status: 'new', urgency: 'high', limit: '20' });
			expect(query('/v1/appointments')).toEqual({ since: sinceUtc, status: 'booked', limit: '20' });
			expect(query('/v1/calls')).toEqual({ since: sinceUtc, limit: '20' });

			// The digest names every new high-urgency lead since then, and reached "Slack".
			const expected = emulator.records.leads.filter(
				(l) => l.status === 'new' && l.urgency === 'high' && l.created_at > sinceUtc,
			);
			expect(expected.length).toBeGreaterThanOrEqual(fresh.length);
			for (const lead of expected) expect(final).toContain(String(lead.caller_name));
			expect(final).toContain('Ida Lund, Brake Inspection');
			expect(sink.received).toEqual([{ path: '/slack/webhook', body: { text: final } }]);
		});
	});
});
