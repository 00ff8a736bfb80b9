import { createHmac, timingSafeEqual } from 'crypto';
import type {
	ICredentialsDecrypted,
	ICredentialTestFunctions,
	IDataObject,
	IHookFunctions,
	INodeCredentialTestResult,
	INodeType,
	INodeTypeDescription,
	IWebhookFunctions,
	IWebhookResponseData,
} from 'n8n-workflow';
import { NodeConnectionTypes } from 'n8n-workflow';

import { optionsCollection } from '../shared/descriptions';
import { apiRequest } from '../shared/transport';

export const WEBHOOK_EVENTS = ['call.completed', 'call.transferred', 'appointment.booked', 'lead.created'];
/** Delivery ids remembered for duplicate detection, per trigger. */
const REMEMBERED_DELIVERIES = 500;

/** Deliveries in flight or just emitted in this process, before static data is saved. */
const recentDeliveries = new Map<string, string[]>();

function remembered(list: unknown): string[] {
	return Array.isArray(list) ? list.filter((v): v is string => typeof v === 'string') : [];
}

function header(headers: IDataObject, name: string): string | undefined {
	const value = headers[name];
	if (Array.isArray(value)) return typeof value[0] === 'string' ? value[0] : undefined;
	return typeof value === 'string' && value !== '' ? value : undefined;
}

function signatureMatches(secret: string, payload: Buffer, signature: string): boolean {
	const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(payload).digest('hex')}`);
	const given = Buffer.from(signature.trim());
	return given.length === expected.length && timingSafeEqual(given, expected);
}

export class InboundFlowWebhookTrigger implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'InboundFlow Webhook Trigger',
		name: 'inboundFlowWebhookTrigger',
		icon: { light: 'file:inboundflow.svg', dark: 'file:inboundflow.dark.svg' },
		group: ['trigger'],
		version: 1,
		subtitle: '={{$parameter["events"].join(", ")}}',
		description: 'Starts the workflow the moment InboundFlow sends a webhook (call completed, lead created…)',
		defaults: { name: 'InboundFlow Webhook Trigger' },
		inputs: [],
		outputs: [NodeConnectionTypes.Main],
		credentials: [
			{ name: 'inboundFlowWebhookApi', required: false, testedBy: 'testSigningSecret' },
			{ name: 'inboundFlowApi', required: true, displayOptions: { show: { fetchFullRecord: [true] } } },
		],
		webhooks: [{ name: 'default', httpMethod: 'POST', responseMode: 'onReceived', path: 'inboundflow' }],
		properties: [
			{
				displayName:
					'In InboundFlow open Settings → Integrations → Custom Webhook, paste the Production URL shown above, pick the events, and set a signing secret (the same secret goes into this node’s credential). Activate this workflow to receive deliveries.',
				name: 'setupNotice',
				type: 'notice',
				default: '',
			},
			{
				displayName: 'Events',
				name: 'events',
				type: 'multiOptions',
				required: true,
				default: ['call.completed'],
				description: 'Deliveries of other events are acknowledged and ignored',
				options: [
					{ name: 'Appointment Booked', value: 'appointment.booked' },
					{ name: 'Call Completed', value: 'call.completed' },
					{ name: 'Call Transferred', value: 'call.transferred' },
					{ name: 'Lead Created', value: 'lead.created' },
				],
			},
			{
				displayName: 'Fetch Full Call',
				name: 'fetchFullRecord',
				type: 'boolean',
				default: false,
				description:
					'Whether to fetch the whole call (with its conversation) through the API for call events and add it as "call". Needs an InboundFlow API credential.',
			},
			optionsCollection([
				{
					displayName: 'Signature Covers Timestamp',
					name: 'timestampedSignature',
					type: 'boolean',
					default: false,
					description:
						'Whether the signature is computed over "&lt;X-InboundFlow-Timestamp&gt;.&lt;raw body&gt;" instead of the raw body alone. Turn on only if InboundFlow tells you so.',
				},
				{
					displayName: 'Timestamp Tolerance (Seconds)',
					name: 'toleranceSeconds',
					type: 'number',
					typeOptions: { minValue: 0 },
					default: 300,
					description:
						'Deliveries whose X-InboundFlow-Timestamp is further than this from now are refused, against replays. 0 turns the check off.',
				},
			]),
		],
	};

	methods = {
		credentialTest: {
			// A signing secret cannot be checked against InboundFlow (it has no API for
			// webhooks); the test checks it is usable and says what it is used for.
			async testSigningSecret(
				this: ICredentialTestFunctions,
				credential: ICredentialsDecrypted,
			): Promise<INodeCredentialTestResult> {
				const secret = credential.data?.signingSecret;
				if (typeof secret !== 'string' || secret.trim().length < 8) {
					return {
						status: 'Error',
						message: 'Signing Secret: enter the secret set in InboundFlow (at least 8 characters)',
					};
				}
				return {
					status: 'OK',
					message: 'Saved. Each delivery’s X-InboundFlow-Signature is checked against this secret.',
				};
			},
		},
	};

	webhookMethods = {
		default: {
			// InboundFlow has no API to register webhooks: the URL is pasted in its dashboard.
			async checkExists(this: IHookFunctions): Promise<boolean> {
				return true;
			},
			async create(this: IHookFunctions): Promise<boolean> {
				return true;
			},
			async delete(this: IHookFunctions): Promise<boolean> {
				return true;
			},
		},
	};

	async webhook(this: IWebhookFunctions): Promise<IWebhookResponseData> {
		const req = this.getRequestObject() as unknown as { rawBody?: Buffer };
		const res = this.getResponseObject();
		const headers = this.getHeaderData() as IDataObject;
		const options = this.getNodeParameter('options', {}) as IDataObject;
		const refuse = (status: number, error: string): IWebhookResponseData => {
			res.status(status).json({ error });
			return { noWebhookResponse: true };
		};
		const raw = Buffer.isBuffer(req.rawBody)
			? req.rawBody
			: Buffer.from(JSON.stringify(this.getBodyData() ?? {}));

		let secret = '';
		try {
			const credentials = await this.getCredentials('inboundFlowWebhookApi');
			secret = typeof credentials?.signingSecret === 'string' ? credentials.signingSecret : '';
		} catch {
			secret = ''; // no signing-secret credential: deliveries are accepted unsigned
		}

		const timestamp = header(headers, 'x-inboundflow-timestamp');
		if (secret) {
			const signature = header(headers, 'x-inboundflow-signature');
			if (!signature) return refuse(401, 'Missing X-InboundFlow-Signature header');
			const signed = options.timestampedSignature === true;
			if (signed && !timestamp) return refuse(401, 'Missing X-InboundFlow-Timestamp header');
			const payload = signed ? Buffer.concat([Buffer.from(`${timestamp}.`), raw]) : raw;
			if (!signatureMatches(secret, payload, signature)) return refuse(401, 'Invalid signature');
		}
		const tolerance = Number(options.toleranceSeconds ?? 300);
		if (timestamp !== undefined && tolerance > 0) {
			const seconds = Number(timestamp);
			if (!Number.isFinite(seconds)) return refuse(400, 'X-InboundFlow-Timestamp is not a Unix time');
			if (Math.abs(Date.now() / 1000 - seconds) > tolerance) {
				return refuse(401, `Timestamp is more than ${tolerance} seconds from now (replayed or delayed delivery)`);
			}
		}

		let body: IDataObject;
		try {
			const parsed = JSON.parse(raw.toString('utf8')) as unknown;
			if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
				return refuse(400, 'The body must be a JSON object');
			}
			body = parsed as IDataObject;
		} catch {
			return refuse(400, 'The body is not valid JSON');
		}

		const event = header(headers, 'x-inboundflow-event') ?? (typeof body.event === 'string' ? body.event : undefined);
		if (!event) return refuse(400, 'Missing X-InboundFlow-Event header and "event" field');
		const selected = this.getNodeParameter('events', []) as string[];
		if (!WEBHOOK_EVENTS.includes(event) || !selected.includes(event)) {
			return { webhookResponse: { received: true, ignored: `event ${event} is not selected` } };
		}

		const deliveryId =
			header(headers, 'x-inboundflow-delivery-id') ??
			(typeof body.delivery_id === 'string' ? body.delivery_id : undefined);
		const staticData = this.getWorkflowStaticData('node');
		const memoryKey = `${this.getWorkflow().id ?? ''}:${this.getNode().id}`;
		const known = [...remembered(staticData.deliveries), ...(recentDeliveries.get(memoryKey) ?? [])];
		if (deliveryId && known.includes(deliveryId)) {
			return { webhookResponse: { received: true, duplicate: deliveryId } };
		}

		const data = typeof body.data === 'object' && body.data !== null ? (body.data as IDataObject) : {};
		const item: IDataObject = {
			event,
			delivery_id: deliveryId ?? null,
			timestamp: body.timestamp ?? (timestamp ? new Date(Number(timestamp) * 1000).toISOString() : null),
			organization_id: body.organization_id ?? null,
			data,
		};
		if (this.getNodeParameter('fetchFullRecord', false) === true && event.startsWith('call.')) {
			const callId = typeof data.call_id === 'string' ? data.call_id : undefined;
			if (callId) {
				const response = await apiRequest.call(this, {
					method: 'GET',
					path: `/v1/calls/${encodeURIComponent(callId)}`,
					scope: 'calls:read',
					action: 'get the call of a webhook',
					notFound: { what: 'Call', id: callId },
				});
				item.call = response.data as IDataObject;
			}
		}

		if (deliveryId) {
			const next = [...remembered(staticData.deliveries), deliveryId].slice(-REMEMBERED_DELIVERIES);
			staticData.deliveries = next;
			recentDeliveries.set(memoryKey, [...(recentDeliveries.get(memoryKey) ?? []), deliveryId].slice(-REMEMBERED_DELIVERIES));
		}
		return { workflowData: [this.helpers.returnJsonArray([item])] };
	}
}
