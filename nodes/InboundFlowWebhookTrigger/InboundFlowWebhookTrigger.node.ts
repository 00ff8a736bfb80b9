import type {
	ICredentialsDecrypted,
	ICredentialTestFunctions,
	IDataObject,
	IHookFunctions,
	INodeExecutionData,
	INodeCredentialTestResult,
	INodeType,
	INodeTypeDescription,
	IWebhookFunctions,
	IWebhookResponseData,
} from 'n8n-workflow';
import { NodeConnectionTypes, sleep } from 'n8n-workflow';

import { optionsCollection } from '../shared/descriptions';
import { attachRecording, RECORDING_ERROR_FIELD, triggerRecordingFields, triggerRecordingSettings } from '../shared/recording';
import { apiRequest } from '../shared/transport';
import { redactError } from '../shared/transport/errors';
import { isUuid } from '../shared/utils';
import { checkDelivery } from './delivery';
import { type Claim, DeliveryLedger, type SavedDeliveries } from './ledger';

const SIGNING_CREDENTIAL = 'inboundFlowWebhookApi';
/** Fetch Full Call gives up after this: well under the 10–30 s senders commonly wait for an answer. */
export const FETCH_DEADLINE_MS = 5_000;
/** A copy of a delivery still being processed waits this long for the original's outcome… */
export const COPY_WAIT_MS = 8_000;
/** …then is answered 503 with this Retry-After. */
const RETRY_COPY_AFTER_SECONDS = 30;

/**
 * Download Recording's own limit, after Fetch Full Call's: the sender waits for both (and
 * for n8n to create the run) before it gets its answer. Mutable for tests.
 */
export const webhookTimings = { recordingDeadlineMs: 15_000 };

/** The deliveries this process has taken, per workflow trigger (see ledger.ts). */
export const ledger = new DeliveryLedger();

export class InboundFlowWebhookTrigger implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'InboundFlow Webhook Trigger',
		name: 'inboundFlowWebhookTrigger',
		icon: { light: 'file:inboundflow-trigger.svg', dark: 'file:inboundflow-trigger.dark.svg' },
		// A full URL is used as it is; without one n8n appends ?utm_… after the codex URL's #anchor.
		documentationUrl: 'https://github.com/inboundflow/n8n-nodes-inboundflow#webhook-trigger',
		group: ['trigger'],
		version: 1,
		subtitle: '={{$parameter["events"].join(", ")}}',
		description: 'Starts the workflow the moment InboundFlow sends a webhook (call completed, lead created…)',
		defaults: { name: 'InboundFlow Webhook Trigger' },
		inputs: [],
		outputs: [NodeConnectionTypes.Main],
		credentials: [
			{
				// A literal: n8n's lint reads which credential a node tests statically.
				name: 'inboundFlowWebhookApi',
				displayName: 'Signing Secret',
				required: true,
				testedBy: 'testSigningSecret',
				// The first key is a hidden field: n8n 1.x's editor hides the first field a
				// credential depends on (it takes it for an authentication choice), which
				// would hide the Verify Signatures switch.
				displayOptions: { show: { signingSecretShown: [true], verifySignature: [true] } },
			},
			{
				name: 'inboundFlowApi',
				displayName: 'InboundFlow API (for Fetch Full Call)',
				required: true,
				displayOptions: { show: { fetchFullRecord: [true] } },
			},
		],
		// n8n answers accepted deliveries itself (onReceived, with the node's webhookResponse);
		// responseData '' keeps n8n from answering with its default "firstEntryJson" text.
		webhooks: [{ name: 'default', httpMethod: 'POST', responseMode: 'onReceived', responseData: '', path: 'inboundflow' }],
		properties: [
			{
				displayName:
					'Setup: open "Webhook URLs" at the top of this panel, choose "Production URL" and copy it. In InboundFlow open Settings → Integrations → Custom Webhook, paste it, pick the events and set a signing secret; put the same secret into the Signing Secret credential below. Then activate this workflow.',
				name: 'setupNotice',
				type: 'notice',
				default: '',
			},
			{
				displayName: 'Signing Secret Shown',
				name: 'signingSecretShown',
				type: 'hidden',
				default: true,
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
				displayName: 'Verify Signatures',
				name: 'verifySignature',
				type: 'boolean',
				default: true,
				description:
					'Whether to accept only deliveries signed with your signing secret (recommended). Off: anyone who knows the URL can start this workflow.',
			},
			{
				displayName:
					'Deliveries are NOT verified: anyone who knows this webhook URL can start the workflow with made-up data. Turn on Verify Signatures unless something in front of n8n checks them.',
				name: 'unsignedNotice',
				type: 'notice',
				default: '',
				displayOptions: { show: { verifySignature: [false] } },
			},
			{
				displayName: 'Fetch Full Call',
				name: 'fetchFullRecord',
				type: 'boolean',
				default: false,
				description:
					'Whether to fetch the whole call (with its conversation) through the API for call events and add it as "call". Needs an InboundFlow API credential.',
			},
			// Fetch Full Call → Download Recording (issue 25): the call's file attached to the item.
			...triggerRecordingFields({ fetchFullRecord: [true] }, 'the call of each call event'),
			{
				// Where n8n's editor puts the credential selectors: after both switches that ask for
				// one (Signing Secret, then the API credential), not between them.
				displayName: '',
				name: 'credentialSelectors',
				type: 'credentials',
				default: '',
			},
			optionsCollection([
				{
					displayName: 'Signature Covers Timestamp',
					name: 'timestampedSignature',
					type: 'boolean',
					default: false,
					description:
						'Whether the signature is computed over "&lt;X-InboundFlow-Timestamp&gt;.&lt;raw body&gt;" instead of the raw body alone. Turn on only if InboundFlow tells you so: then the header timestamp is signed and used for the replay window.',
				},
				{
					displayName: 'Timestamp Tolerance (Seconds)',
					name: 'toleranceSeconds',
					type: 'number',
					typeOptions: { minValue: 0 },
					default: 300,
					description:
						'Deliveries whose signed timestamp (the body\'s "timestamp", or the header in the timestamped scheme) is further than this from now are refused, against replays. 0 turns the check off.',
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
		const req = this.getRequestObject() as unknown as { rawBody?: unknown };
		const res = this.getResponseObject();
		const options = this.getNodeParameter('options', {}) as IDataObject;
		const fetchFull = this.getNodeParameter('fetchFullRecord', false) === true;
		const answer = (status: number, body: IDataObject): IWebhookResponseData => {
			res.status(status).json(body);
			return { noWebhookResponse: true };
		};

		// Fail closed: verification is on unless switched off, and a secret that cannot be
		// read refuses the delivery (it never means "no check").
		let secret: string | undefined;
		if (this.getNodeParameter('verifySignature', true) !== false) {
			try {
				const credentials = await this.getCredentials(SIGNING_CREDENTIAL);
				secret = typeof credentials?.signingSecret === 'string' ? credentials.signingSecret : '';
			} catch (error) {
				const reason = error instanceof Error ? error.message : String(error);
				this.logger.error(`InboundFlow webhook: delivery refused, the signing secret could not be read: ${reason}`);
				return answer(500, { error: 'The signing secret could not be read; delivery refused' });
			}
			if (secret.trim() === '') {
				this.logger.error('InboundFlow webhook: delivery refused, the signing secret is empty');
				return answer(500, { error: 'No signing secret is set; delivery refused' });
			}
		}

		const verdict = checkDelivery({
			raw: Buffer.isBuffer(req.rawBody) ? req.rawBody : undefined,
			parsed: this.getBodyData(),
			headers: this.getHeaderData() as IDataObject,
			secret,
			timestampedSignature: options.timestampedSignature === true,
			toleranceSeconds: Number(options.toleranceSeconds ?? 300),
			nowMs: Date.now(),
			selectedEvents: this.getNodeParameter('events', []) as string[],
		});
		if (verdict.kind === 'refuse') return answer(verdict.status, { error: verdict.error });
		// A bad recording setting refuses every delivery (500, its retry runs once it is fixed).
		let recording: ReturnType<typeof triggerRecordingSettings>;
		try {
			recording = fetchFull && verdict.kind === 'accept' && verdict.event.startsWith('call.') ? triggerRecordingSettings.call(this) : undefined;
		} catch (error) {
			const reason = error instanceof Error ? error.message : String(error);
			this.logger.error(`InboundFlow webhook: delivery refused, ${reason}`);
			return answer(500, { error: `The trigger's Download Recording settings are invalid: ${reason}` });
		}
		if (verdict.kind === 'ignore') return answer(200, { received: true, ignored: `event ${verdict.event} is not selected` });

		// Taken before any await, so a concurrent copy in this process sees it.
		const key = verdict.deliveryKey;
		const staticData = this.getWorkflowStaticData('node');
		const trigger = `${this.getWorkflow().id ?? ''}:${this.getNode().id}`;
		ledger.absorb(trigger, staticData.deliveries, Date.now());
		// The newest save this delivery's request carries (its own, or one riding on it later).
		let latest: SavedDeliveries | undefined;
		const claim = await claimDelivery(trigger, key, (snapshot) => {
			latest = snapshot;
			staticData.deliveries = snapshot as unknown as IDataObject;
		});
		if (claim.kind === 'done') return answer(200, { received: true, duplicate: key });
		if (claim.kind === 'pending') {
			res.setHeader('retry-after', String(RETRY_COPY_AFTER_SECONDS));
			return answer(503, { error: 'The same delivery is still being processed; send it again later', delivery_id: key });
		}
		let settled = false;
		let handedToN8n = false;
		const settle = (accepted: boolean) => {
			if (settled) return;
			settled = true;
			ledger.settle(trigger, claim.fp, accepted);
		};

		try {
			const item = verdict.item;
			const data = item.data as IDataObject;
			if (fetchFull && verdict.event.startsWith('call.')) {
				const callId = data.call_id;
				if (callId !== undefined && callId !== null && !isUuid(callId)) {
					settle(false);
					return answer(400, { error: 'data.call_id is not an InboundFlow call id (a UUID); the call cannot be fetched' });
				}
				if (callId) {
					try {
						const response = await apiRequest.call(this, {
							method: 'GET',
							path: `/v1/calls/${callId}`,
							scope: 'calls:read',
							action: 'get the call of a webhook',
							notFound: { what: 'Call', id: callId },
							deadline: Date.now() + FETCH_DEADLINE_MS,
						});
						item.call = response.data as IDataObject;
					} catch (error) {
						// Not emitted: forgotten, so InboundFlow's retry is not taken for a duplicate.
						settle(false);
						const message = redactError(error instanceof Error ? error.message : String(error), [secret]);
						this.logger.error(`InboundFlow webhook: delivery ${key} not emitted: ${message}`);
						return answer(502, { error: 'Fetching the full call failed; delivery not emitted, send it again' });
					}
				}
			}
			// The call's recording, with its own deadline after the fetch's. Whatever the download
			// does the delivery is emitted (without the file when it fails or runs out of time),
			// except a call without a recording when the settings say to skip it: answered 200
			// and forgotten (a copy is skipped the same way).
			let output: INodeExecutionData = { json: item };
			if (recording) {
				const call = item.call as IDataObject | undefined;
				const deadline = Date.now() + webhookTimings.recordingDeadlineMs;
				const limit = `the webhook's ${Math.round(webhookTimings.recordingDeadlineMs / 1000)}-second limit for downloads`;
				const attached = call
					? await attachRecording.call(this, item, call, recording, deadline, limit)
					: { json: { ...item, [RECORDING_ERROR_FIELD]: 'The delivery names no call (data.call_id), so there is no recording to download' } };
				if (!attached) {
					settle(false);
					return answer(200, { received: true, ignored: `call ${String(call?.id)} has no recording` });
				}
				output = attached;
			}
			// n8n answers (onReceived): on n8n 2.x only after it created the execution, and
			// with a 5xx when it could not; static data is saved before that answer. The
			// delivery is remembered for good only when the answer is a 2xx.
			const end = res.end;
			res.end = function (this: typeof res, ...args: Parameters<typeof res.end>) {
				settle(res.statusCode >= 200 && res.statusCode < 300);
				return end.apply(this, args);
			} as typeof res.end;
			if (ledger.shouldSave(trigger, Date.now())) {
				latest = ledger.snapshot(trigger, claim.fp, Date.now());
				staticData.deliveries = latest as unknown as IDataObject;
			}
			handedToN8n = true;
			const acknowledgement = { received: true, delivery_id: key };
			let answerRead = false;
			const result: IWebhookResponseData = { workflowData: [[output]] };
			// n8n 2.x reads the answer body after it created the execution and before it saves
			// static data; building the execution re-wraps the same static-data object and clears
			// its "changed" flag, so the save is marked again here, where it counts.
			Object.defineProperty(result, 'webhookResponse', {
				enumerable: true,
				get: () => {
					if (!answerRead) {
						answerRead = true;
						const fresh = ledger.atSavePoint(trigger, claim.fp, Date.now());
						if (fresh) latest = fresh;
					}
					if (latest) staticData.deliveries = latest as unknown as IDataObject;
					return acknowledgement;
				},
			});
			return result;
		} finally {
			// Not handed to n8n (refused, or an unexpected error): not taken.
			if (!handedToN8n) settle(false);
		}
	}
}

/**
 * Takes a delivery; a copy of one still pending waits for its outcome (up to
 * COPY_WAIT_MS): emitted → done, failed → this copy takes it.
 */
async function claimDelivery(trigger: string, key: string, carry: (snapshot: SavedDeliveries) => void): Promise<Claim> {
	const until = Date.now() + COPY_WAIT_MS;
	for (;;) {
		const claim = ledger.claim(trigger, key, Date.now(), carry);
		const left = until - Date.now();
		if (claim.kind !== 'pending' || left <= 0) return claim;
		const stop = new AbortController();
		const timer = sleep(left, stop.signal).then(
			() => 'timeout' as const,
			() => 'timeout' as const,
		);
		const outcome = await Promise.race([claim.outcome, timer]);
		stop.abort();
		if (outcome === 'timeout') return claim;
	}
}