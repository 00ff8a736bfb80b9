// Workflows and credentials imported into the real n8n: the example workflows users
// get (examples/*.json), and the end-to-end suite's own.
import fs from 'node:fs';
import path from 'node:path';

import { PACKAGE_NAME, PACKAGE_ROOT } from './n8n';

export const CREDENTIAL_ID = 'InbFlowCred00001';
export const WEBHOOK_CREDENTIAL_ID = 'InbFlowWhSec0001';
export const EXAMPLE_SINK = 'http://127.0.0.1:4020';
export const WEBHOOK_ID = '5d2c7f4e-8a1b-4c3d-9e0f-1a2b3c4d5e6f';

type Json = Record<string, unknown>;

export function credentials(baseUrl: string, apiKey: string, signingSecret: string): Json[] {
	return [
		{ id: CREDENTIAL_ID, name: 'InboundFlow account', type: 'inboundFlowApi', data: { apiKey, baseUrl } },
		{ id: WEBHOOK_CREDENTIAL_ID, name: 'InboundFlow webhook secret', type: 'inboundFlowWebhookApi', data: { signingSecret } },
	];
}

/**
 * Polls every 10 s. n8n refuses a cron whose seconds field is not one number, but
 * checks each poll time on its own: six of them make a 10-second schedule.
 */
export const EVERY_10_SECONDS = {
	item: [0, 10, 20, 30, 40, 50].map((s) => ({ mode: 'custom', cronExpression: `${s} * * * * *` })),
};

export interface ExampleOptions {
	/** Triggers poll every 10 s instead of every minute. */
	fastPolling?: boolean;
	/**
	 * Schedule triggers become manual triggers of the same name, so that `n8n execute`
	 * (which starts only at a manual trigger) runs the workflow.
	 */
	manualStart?: boolean;
	/** The folder the recording example saves files to (instead of EXAMPLE_RECORDINGS_DIR). */
	recordingsDir?: string;
}

/** Where the recording example saves files as shipped (n8n's Docker image lets it write there). */
export const EXAMPLE_RECORDINGS_DIR = '/home/node/.n8n-files/inboundflow-recordings';

/**
 * An example workflow from examples/, with its sink URL pointed at `sinkUrl`, and
 * optionally its triggers polling every 10 s instead of every minute (`true` is
 * short for `{ fastPolling: true }`).
 */
export function example(file: string, sinkUrl: string, options: boolean | ExampleOptions = false): Json {
	const { fastPolling = false, manualStart = false } = typeof options === 'boolean' ? { fastPolling: options } : options;
	let text = fs.readFileSync(path.join(PACKAGE_ROOT, 'examples', file), 'utf8');
	const recordingsDir = typeof options === 'object' ? options.recordingsDir : undefined;
	if (recordingsDir) text = text.split(EXAMPLE_RECORDINGS_DIR).join(recordingsDir);
	const workflow = JSON.parse(text.split(EXAMPLE_SINK).join(sinkUrl)) as {
		nodes: Array<{ type: string; typeVersion: number; parameters: Json }>;
	};
	for (const node of workflow.nodes) {
		if (fastPolling && node.parameters.pollTimes) node.parameters.pollTimes = EVERY_10_SECONDS;
		if (manualStart && node.type === 'n8n-nodes-base.scheduleTrigger') {
			node.type = 'n8n-nodes-base.manualTrigger';
			node.typeVersion = 1;
			node.parameters = {};
		}
	}
	return workflow as unknown as Json;
}

/** The example workflows, in examples/. */
export const EXAMPLES = [
	'new-lead-to-crm.json',
	'appointment-booked-to-slack.json',
	'daily-digest-agent.json',
	// Issue 25: call completed → recording saved as a file.
	'call-recording-to-disk.json',
	'appointment-reminder.json',
];
/** Examples `npm start` activates; the others it imports inactive. */
export const ACTIVE_EXAMPLES = [
	'new-lead-to-crm.json',
	'appointment-booked-to-slack.json',
	'call-recording-to-disk.json',
	'appointment-reminder.json',
];
/** Workflow ids of the examples (in their files). */
export const EXAMPLE_IDS = {
	newLead: 'InbFlowExLead001',
	appointmentBooked: 'InbFlowExAppt001',
	dailyDigest: 'InbFlowExDgst001',
	callRecording: 'InbFlowExRec0001',
	appointmentReminder: 'InbFlowExRmnd001',
} as const;
/** Webhook id of the "appointment booked" example: its URL is /webhook/<id>/inboundflow. */
export const EXAMPLE_WEBHOOK_ID = '3c9a7e21-6b4d-4f0a-9e8c-2d5b1a7f4c30';
/** The chat-model credential the daily-digest example refers to (a user picks their own). */
export const EXAMPLE_MODEL_CREDENTIAL = { id: 'InbFlowModel0001', name: 'OpenAI account' };

/** An OpenAI credential whose base URL is `baseUrl` (the scripted model stand-in in tests). */
export function modelCredential(baseUrl: string, id: string = EXAMPLE_MODEL_CREDENTIAL.id): Json {
	return { id, name: EXAMPLE_MODEL_CREDENTIAL.name, type: 'openAiApi', data: { apiKey: 'sk-standin-not-a-secret', url: baseUrl } };
}

const cred = { inboundFlowApi: { id: CREDENTIAL_ID, name: 'InboundFlow account' } };
let nodeCounter = 0;

function node(name: string, type: string, parameters: Json, extra: Json = {}): Json {
	nodeCounter++;
	return {
		id: `00000000-0000-4000-8000-${String(nodeCounter).padStart(12, '0')}`,
		name,
		type,
		typeVersion: 1,
		position: [nodeCounter * 220, 0],
		parameters,
		...extra,
	};
}

function inboundFlow(name: string, parameters: Json, typeVersion = 1): Json {
	return node(name, `${PACKAGE_NAME}.inboundFlow`, parameters, { credentials: cred, executeOnce: true, typeVersion });
}

function chain(id: string, name: string, nodes: Json[]): Json {
	const connections: Json = {};
	for (let i = 0; i < nodes.length - 1; i++) {
		connections[nodes[i].name as string] = { main: [[{ node: nodes[i + 1].name, type: 'main', index: 0 }]] };
	}
	return { id, name, nodes, connections, settings: { executionOrder: 'v1' }, active: false };
}

const manual = () => node('Start', 'n8n-nodes-base.manualTrigger', {});

export const OPERATIONS_ID = 'InbFlowE2eOps001';
export const FAILING_ID = 'InbFlowE2eErr001';
export const WEBHOOK_WORKFLOW_ID = 'InbFlowE2eWhk001';
export const NEW_CONTACT_PHONE = '+14155550111';
export const MISSING_CALL = '0f0f0f0f-0f0f-4f0f-8f0f-0f0f0f0f0f0f';

/** Every operation of the action node, one after the other, in one execution. */
export function operationsWorkflow(): Json {
	return chain(OPERATIONS_ID, 'InboundFlow e2e: every operation', [
		manual(),
		inboundFlow('Account', { resource: 'account', operation: 'get' }),
		inboundFlow('Calls', { resource: 'call', operation: 'getAll', returnAll: false, limit: 5 }),
		inboundFlow('Call', { resource: 'call', operation: 'get', callId: "={{ $('Calls').first().json.id }}" }),
		inboundFlow('Call Messages', {
			resource: 'call',
			operation: 'get',
			callId: "={{ $('Calls').first().json.id }}",
			output: 'messages',
		}),
		inboundFlow('Contacts', { resource: 'contact', operation: 'getAll', returnAll: true }),
		inboundFlow('Contact', { resource: 'contact', operation: 'get', contactId: "={{ $('Contacts').first().json.id }}" }),
		inboundFlow('Create Contact', {
			resource: 'contact',
			operation: 'create',
			phone: NEW_CONTACT_PHONE,
			additionalFields: { name: 'Hans Müller', email: 'hans@beispiel.de' },
		}),
		inboundFlow('Find by Phone', { resource: 'contact', operation: 'findByPhone', phone: NEW_CONTACT_PHONE }),
		inboundFlow('New Leads', { resource: 'lead', operation: 'getAll', returnAll: true, filters: { status: 'new' } }),
		inboundFlow('Booked Appointments', {
			resource: 'appointment',
			operation: 'getAll',
			returnAll: false,
			limit: 3,
			filters: { status: 'booked' },
		}),
	]);
}

/** A Get of a call that does not exist: the execution must fail with our message. */
export function failingWorkflow(): Json {
	return chain(FAILING_ID, 'InboundFlow e2e: unknown call', [
		manual(),
		inboundFlow('Unknown Call', { resource: 'call', operation: 'get', callId: MISSING_CALL }),
	]);
}

/** The webhook trigger forwarding each delivery to the sink. */
export function webhookWorkflow(sinkUrl: string): Json {
	return chain(WEBHOOK_WORKFLOW_ID, 'InboundFlow e2e: webhook', [
		node(
			'InboundFlow Webhook',
			`${PACKAGE_NAME}.inboundFlowWebhookTrigger`,
			{ events: ['call.completed', 'lead.created'] },
			{
				webhookId: WEBHOOK_ID,
				credentials: { inboundFlowWebhookApi: { id: WEBHOOK_CREDENTIAL_ID, name: 'InboundFlow webhook secret' } },
			},
		),
		node(
			'Forward',
			'n8n-nodes-base.httpRequest',
			{
				method: 'POST',
				url: `${sinkUrl}/webhook-events`,
				sendBody: true,
				specifyBody: 'json',
				jsonBody: '={{ JSON.stringify($json) }}',
				options: {},
			},
			{ typeVersion: 4.2 },
		),
	]);
}

export const APPOINTMENT_POLLING_ID = 'InbFlowE2eApt001';

/**
 * The polling trigger for booked appointments forwarding each one to the sink's
 * /slack/webhook (what the appointment example did before it became webhook-driven).
 */
export function appointmentPollingWorkflow(sinkUrl: string): Json {
	return chain(APPOINTMENT_POLLING_ID, 'InboundFlow e2e: booked appointments (polling)', [
		node(
			'Appointment Booked',
			`${PACKAGE_NAME}.inboundFlowTrigger`,
			{ pollTimes: EVERY_10_SECONDS, event: 'newAppointment', newAppointmentFilters: { status: 'booked' }, options: {} },
			{ credentials: cred },
		),
		node(
			'Post to Slack',
			'n8n-nodes-base.httpRequest',
			{
				method: 'POST',
				url: `${sinkUrl}/slack/webhook`,
				sendBody: true,
				specifyBody: 'json',
				jsonBody:
					'={{ JSON.stringify({ text: `New appointment: ${$json.caller_name} for ${$json.service_type} on ${$json.appointment_date}`, appointment_id: $json.id }) }}',
				options: {},
			},
			{ typeVersion: 4.2 },
		),
	]);
}

// AI Agent workflows: n8n's AI Agent, n8n's OpenAI chat model pointed at the scripted
// stand-in (test/e2e/model-standin.ts), and our node attached as tools.

export const AGENT_ID = 'InbFlowE2eAgt001';
export const AGENT_ERRORS_ID = 'InbFlowE2eAgt002';
export const READONLY_CREDENTIAL_ID = 'InbFlowCredRO001';
export const AGENT_MODEL_CREDENTIAL_ID = 'InbFlowE2eModel1';
/**
 * Version of n8n's AI Agent node the workflows use: 3, the newest that n8n 1.123.81 has
 * (its @n8n/n8n-nodes-langchain 1.122.57 stops at 3; 3.1 only adds the guardrails prompt
 * source in 2.x). A version an n8n lacks fails `n8n execute` with "Cannot read properties
 * of undefined (reading 'execute')".
 */
export const AGENT_VERSION = 3;
/** Version of our node as a tool: the newest (IDs as resource locators, filled by $fromAI). */
export const AGENT_TOOL_VERSION = 2;

/** A credential for the emulator with another key (e.g. one lacking a scope). */
export function extraCredential(id: string, name: string, baseUrl: string, apiKey: string): Json {
	return { id, name, type: 'inboundFlowApi', data: { apiKey, baseUrl } };
}

export interface AgentTool {
	/** Node name; n8n makes the tool name from it (spaces → underscores). */
	name: string;
	parameters: Json;
	credentialId?: string;
}

/**
 * Manual trigger → AI Agent (prompt `prompt`) with the stand-in model and our node as tools.
 * `toolOnError`: the tool nodes' On Error setting (none: n8n's default).
 */
export function agentWorkflow(id: string, name: string, prompt: string, tools: AgentTool[], toolOnError?: string): Json {
	const start = manual();
	const agent = node(
		'AI Agent',
		'@n8n/n8n-nodes-langchain.agent',
		{ promptType: 'define', text: prompt, options: {} },
		{ typeVersion: AGENT_VERSION },
	);
	const model = node(
		'Chat Model',
		'@n8n/n8n-nodes-langchain.lmChatOpenAi',
		{ model: { __rl: true, mode: 'id', value: 'standin-model' }, responsesApiEnabled: false, options: {} },
		{ typeVersion: 1.3, credentials: { openAiApi: { id: AGENT_MODEL_CREDENTIAL_ID, name: 'Model stand-in' } } },
	);
	const toolNodes = tools.map((tool) =>
		node(tool.name, `${PACKAGE_NAME}.inboundFlowTool`, tool.parameters, {
			typeVersion: AGENT_TOOL_VERSION,
			credentials: { inboundFlowApi: { id: tool.credentialId ?? CREDENTIAL_ID, name: 'InboundFlow account' } },
			...(toolOnError ? { onError: toolOnError } : {}),
		}),
	);
	const connections: Json = {
		[start.name as string]: { main: [[{ node: 'AI Agent', type: 'main', index: 0 }]] },
		'Chat Model': { ai_languageModel: [[{ node: 'AI Agent', type: 'ai_languageModel', index: 0 }]] },
	};
	for (const tool of toolNodes) {
		connections[tool.name as string] = { ai_tool: [[{ node: 'AI Agent', type: 'ai_tool', index: 0 }]] };
	}
	return { id, name, nodes: [start, agent, model, ...toolNodes], connections, settings: { executionOrder: 'v1' }, active: false };
}

/** `={{ $fromAI(key, description, type) }}`: a parameter the model fills. */
export function fromAI(key: string, description: string, type = 'string'): string {
	return `={{ $fromAI('${key}', '${description.replace(/'/g, "\\'")}', '${type}') }}`;
}

export const PANEL_ID = 'InbFlowE2ePanel1';

/**
 * The three nodes as a user leaves them in the editor: the polling trigger on New Lead
 * into a Get Many of leads, and the webhook trigger with Fetch Full Call on.
 */
export function panelWorkflow(): Json {
	const polling = node(
		'When a Lead Arrives',
		`${PACKAGE_NAME}.inboundFlowTrigger`,
		{ pollTimes: { item: [{ mode: 'everyMinute' }] }, event: 'newLead', options: { lookback: 'auto' } },
		{ credentials: cred },
	);
	const leads = inboundFlow('Find Leads', { resource: 'lead', operation: 'getAll', returnAll: false, limit: 5 });
	const webhook = node(
		'When a Call Completes',
		`${PACKAGE_NAME}.inboundFlowWebhookTrigger`,
		{ events: ['call.completed'], fetchFullRecord: true },
		{
			webhookId: WEBHOOK_ID,
			position: [220, 300],
			credentials: {
				inboundFlowWebhookApi: { id: WEBHOOK_CREDENTIAL_ID, name: 'InboundFlow webhook secret' },
				inboundFlowApi: cred.inboundFlowApi,
			},
		},
	);
	const workflow = chain(PANEL_ID, 'InboundFlow e2e: panels', [polling, leads]);
	(workflow.nodes as Json[]).push(webhook);
	return workflow;
}

export const HTTP_REQUEST_ID = 'InbFlowE2eHttp01';

/**
 * n8n's HTTP Request node with the InboundFlow credential (predefined credential type), as
 * a user calls an endpoint the action node does not cover: once to the credential's Base
 * URL, once to another address (which must be refused before anything is sent).
 */
export function httpRequestWorkflow(baseUrl: string, elsewhere: string): Json {
	const request = (name: string, url: string, extra: Json = {}) =>
		node(
			name,
			'n8n-nodes-base.httpRequest',
			{ url, authentication: 'predefinedCredentialType', nodeCredentialType: 'inboundFlowApi', options: {} },
			{ typeVersion: 4.2, credentials: cred, ...extra },
		);
	return chain(HTTP_REQUEST_ID, 'InboundFlow e2e: HTTP Request node with the credential', [
		manual(),
		request('Me', `${baseUrl}/v1/me`),
		request('Elsewhere', `${elsewhere}/v1/me`, { onError: 'continueRegularOutput' }),
	]);
}

/**
 * The polling trigger forwarding the id of each record it emits to `sinkUrl` (POST
 * {"id": …}): what the soak and the durable-cursor suite count.
 */
export function pollingToSinkWorkflow(options: {
	id: string;
	name: string;
	event: string;
	pollTimes: Json;
	sinkUrl: string;
	filters?: Json;
}): Json {
	const filters = options.filters ?? {};
	return chain(options.id, options.name, [
		node(
			'Trigger',
			`${PACKAGE_NAME}.inboundFlowTrigger`,
			{
				pollTimes: options.pollTimes,
				event: options.event,
				...(Object.keys(filters).length ? { [`${options.event}Filters`]: filters } : {}),
				options: {},
			},
			{ credentials: cred },
		),
		node(
			'Sink',
			'n8n-nodes-base.httpRequest',
			{
				method: 'POST',
				url: options.sinkUrl,
				sendBody: true,
				specifyBody: 'json',
				jsonBody: '={{ JSON.stringify({ id: $json.id }) }}',
				options: {},
			},
			{ typeVersion: 4.2 },
		),
	]);
}

// Call recordings (issue 25): download a recording, save it with n8n's Read/Write Files
// from Disk node.

export const RECORDINGS_ID = 'InbFlowE2eRec001';

/** A variant of where and how the emulator serves recordings (its switches). */
export interface RecordingVariant {
	name: string;
	config: Json;
}

/**
 * For each variant in turn: set the emulator's recording switches (its admin route), then
 * download the recording of `callId` and write it to `<dir>/<variant>-<file name>`.
 */
export function recordingsWorkflow(emulatorUrl: string, callId: string, dir: string, variants: RecordingVariant[]): Json {
	const nodes: Json[] = [manual()];
	for (const variant of variants) {
		nodes.push(
			node(
				`Configure ${variant.name}`,
				'n8n-nodes-base.httpRequest',
				{
					method: 'POST',
					url: `${emulatorUrl}/__admin/config`,
					sendBody: true,
					specifyBody: 'json',
					jsonBody: JSON.stringify(variant.config),
					options: {},
				},
				{ typeVersion: 4.2 },
			),
			inboundFlow(`Download ${variant.name}`, {
				resource: 'call',
				operation: 'downloadRecording',
				callId,
				binaryPropertyName: 'audio',
				options: {},
			}),
			node(
				`Save ${variant.name}`,
				'n8n-nodes-base.readWriteFile',
				{ operation: 'write', fileName: `=${dir}/${variant.name}-{{ $binary.audio.fileName }}`, dataPropertyName: 'audio', options: {} },
				{ typeVersion: 1 },
			),
		);
	}
	return chain(RECORDINGS_ID, 'InboundFlow e2e: recordings saved to disk', nodes);
}

// ── Resource locators (action node version 2) and a workflow saved with version 1 ──

export const LOCATOR_ID = 'InbFlowE2eLocat1';
export const VERSION_ONE_ID = 'InbFlowE2eVer001';

function fanOut(id: string, name: string, start: Json, nodes: Json[]): Json {
	const connections = {
		[start.name as string]: { main: [nodes.map((n) => ({ node: n.name, type: 'main', index: 0 }))] },
	};
	return { id, name, nodes: [start, ...nodes], connections, settings: { executionOrder: 'v1' }, active: false };
}

/** A new node's parameters in version 2: Get Call and Get Contact with empty locators (From List). */
export function locatorWorkflow(): Json {
	const empty = { __rl: true, mode: 'list', value: '' };
	return fanOut(LOCATOR_ID, 'InboundFlow e2e: pick a call or a contact', manual(), [
		inboundFlow('Get Call', { resource: 'call', operation: 'get', callId: empty }, 2),
		inboundFlow('Get Contact', { resource: 'contact', operation: 'get', contactId: empty }, 2),
	]);
}

/** Get Call and Get Contact as version 1 saved them: typeVersion 1, the IDs as plain text. */
export function versionOneWorkflow(callId: string, contactId: string): Json {
	return fanOut(VERSION_ONE_ID, 'InboundFlow e2e: saved with version 1', manual(), [
		inboundFlow('Call (version 1)', { resource: 'call', operation: 'get', callId }),
		inboundFlow('Contact (version 1)', { resource: 'contact', operation: 'get', contactId }),
	]);
}

// ── Triggers with Download Recording (issue 25) ──────────────────────────────────────

export const RECORDING_POLL_ID = 'InbFlowE2eRecPol';
export const RECORDING_WEBHOOK_WORKFLOW_ID = 'InbFlowE2eRecWhk';
export const RECORDING_WEBHOOK_ID = '7a1e2b3c-4d5e-4f60-8a71-b2c3d4e5f607';

/** Posts the item's binary field `data` as the request body to `url` (an expression). */
function postFile(name: string, url: string): Json {
	return node(
		name,
		'n8n-nodes-base.httpRequest',
		{ method: 'POST', url, sendBody: true, contentType: 'binaryData', inputDataFieldName: 'data', options: {} },
		{ typeVersion: 4.2 },
	);
}

/** New Call (completed) with Download Recording, every 10 s → the file posted to `filesUrl`/poll/<call id>. */
export function recordingPollWorkflow(filesUrl: string): Json {
	return chain(RECORDING_POLL_ID, 'InboundFlow e2e: new call with its recording (polling)', [
		node(
			'New Call',
			`${PACKAGE_NAME}.inboundFlowTrigger`,
			{
				pollTimes: EVERY_10_SECONDS,
				event: 'newCall',
				newCallFilters: { status: 'completed' },
				downloadRecording: true,
				binaryPropertyName: 'data',
				recordingOptions: {},
				options: {},
			},
			{ credentials: cred },
		),
		postFile('Post File', `=${filesUrl}/poll/{{ $json.id }}`),
	]);
}

/** call.completed with Fetch Full Call and Download Recording → the file posted to `filesUrl`/webhook/<call id>. */
export function recordingWebhookWorkflow(filesUrl: string): Json {
	return chain(RECORDING_WEBHOOK_WORKFLOW_ID, 'InboundFlow e2e: call completed with its recording (webhook)', [
		node(
			'Call Completed',
			`${PACKAGE_NAME}.inboundFlowWebhookTrigger`,
			{ events: ['call.completed'], fetchFullRecord: true, downloadRecording: true, binaryPropertyName: 'data', recordingOptions: {} },
			{
				webhookId: RECORDING_WEBHOOK_ID,
				credentials: { ...cred, inboundFlowWebhookApi: { id: WEBHOOK_CREDENTIAL_ID, name: 'InboundFlow webhook secret' } },
			},
		),
		postFile('Post File', `=${filesUrl}/webhook/{{ $json.call.id }}`),
	]);
}
