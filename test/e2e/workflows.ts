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

/**
 * An example workflow from examples/, with its sink URL pointed at `sinkUrl`, and
 * optionally its triggers polling every 10 s instead of every minute.
 */
export function example(file: string, sinkUrl: string, fastPolling = false): Json {
	const text = fs.readFileSync(path.join(PACKAGE_ROOT, 'examples', file), 'utf8');
	const workflow = JSON.parse(text.split(EXAMPLE_SINK).join(sinkUrl)) as { nodes: Array<{ parameters: Json }> };
	if (fastPolling) {
		for (const node of workflow.nodes) if (node.parameters.pollTimes) node.parameters.pollTimes = EVERY_10_SECONDS;
	}
	return workflow as unknown as Json;
}

export const EXAMPLES = ['new-lead-to-crm.json', 'appointment-booked-to-slack.json'];

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

function inboundFlow(name: string, parameters: Json): Json {
	return node(name, `${PACKAGE_NAME}.inboundFlow`, parameters, { credentials: cred, executeOnce: true });
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
