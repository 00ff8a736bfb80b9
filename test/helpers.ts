// Runs our nodes inside n8n-core's own execution contexts (ExecuteContext,
// PollContext, WebhookContext) over a real n8n-workflow Workflow, with HTTP going
// through n8n's real httpRequestWithAuthentication to the local emulator.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

import { ExecuteContext, LoadOptionsContext, PollContext, WebhookContext } from 'n8n-core';
import type {
	ICredentialDataDecryptedObject,
	ICredentialType,
	IDataObject,
	IExecuteFunctions,
	IHttpRequestOptions,
	INode,
	INodeExecutionData,
	INodeListSearchResult,
	INodeType,
	INodeTypes,
	IRunExecutionData,
	IWebhookData,
	IWorkflowExecuteAdditionalData,
	IWorkflowSettings,
	WorkflowExecuteMode,
} from 'n8n-workflow';
import { Workflow } from 'n8n-workflow';

import { InboundFlowApi } from '../credentials/InboundFlowApi.credentials';
import { InboundFlowWebhookApi } from '../credentials/InboundFlowWebhookApi.credentials';
import { FULL_KEY, startEmulator, type EmulatorOptions, type InboundFlowEmulator } from '../emulator/server';
import { InboundFlow } from '../nodes/InboundFlow/InboundFlow.node';
import { DEFAULT_SETTINGS, resetBudgets, settings } from '../nodes/shared/transport/pacing';
import { InboundFlowTrigger } from '../nodes/InboundFlowTrigger/InboundFlowTrigger.node';
import { InboundFlowWebhookTrigger } from '../nodes/InboundFlowWebhookTrigger/InboundFlowWebhookTrigger.node';

export const NODE_TYPES: Record<string, INodeType> = {
	'n8n-nodes-inboundflow.inboundFlow': new InboundFlow(),
	'n8n-nodes-inboundflow.inboundFlowTrigger': new InboundFlowTrigger(),
	'n8n-nodes-inboundflow.inboundFlowWebhookTrigger': new InboundFlowWebhookTrigger(),
};
const CREDENTIAL_TYPES: Record<string, ICredentialType> = {
	inboundFlowApi: new InboundFlowApi(),
	inboundFlowWebhookApi: new InboundFlowWebhookApi(),
};

/** Short waits, so retry tests take milliseconds; restored by `restoreTimings`. */
export function fastTimings(): void {
	Object.assign(settings, { baseDelayMs: 5, maxDelayMs: 50, timeoutMs: 5000 });
	resetBudgets();
}

export function restoreTimings(): void {
	Object.assign(settings, DEFAULT_SETTINGS);
	resetBudgets();
}

class TestNodeTypes implements INodeTypes {
	getByName(type: string): INodeType {
		return NODE_TYPES[type];
	}

	getByNameAndVersion(type: string): INodeType {
		return NODE_TYPES[type];
	}

	getKnownTypes() {
		return {};
	}
}

/** What n8n's CredentialsHelper does for a generic `authenticate` block. */
class TestCredentialsHelper {
	constructor(
		private data: Record<string, ICredentialDataDecryptedObject>,
		private onRead?: () => void,
	) {}

	getParentTypes(): string[] {
		return [];
	}

	isCredentialUsableByNode(): boolean {
		return true;
	}

	getCredentialsProperties(type: string) {
		return CREDENTIAL_TYPES[type]?.properties ?? [];
	}

	async getDecrypted(_additional: unknown, _nodeCredentials: unknown, type: string) {
		const data = this.data[type];
		if (!data) throw new Error(`no test credential of type ${type}`);
		this.onRead?.();
		return { ...data };
	}

	async preAuthentication() {
		return undefined;
	}

	async authenticate(
		credentials: ICredentialDataDecryptedObject,
		type: string,
		options: IHttpRequestOptions,
		workflow: Workflow,
		node: INode,
	): Promise<IHttpRequestOptions> {
		const authenticate = CREDENTIAL_TYPES[type]?.authenticate;
		// A function, as n8n's CredentialsHelper calls it.
		if (typeof authenticate === 'function') return await authenticate(credentials, options);
		if (!authenticate || authenticate.type !== 'generic') return options;
		const resolve = (value: string) =>
			String(
				workflow.expression.getSimpleParameterValue(node, value, 'internal', { $credentials: credentials }, undefined, ''),
			);
		const out: IHttpRequestOptions = { ...options, headers: { ...options.headers } };
		for (const [key, value] of Object.entries(authenticate.properties.headers ?? {})) {
			out.headers![resolve(key)] = resolve(String(value));
		}
		return out;
	}
}

export interface Credentials {
	apiKey?: string;
	baseUrl?: string;
	signingSecret?: string;
	/** The node names a signing-secret credential that cannot be read (deleted, not decryptable). */
	signingSecretUnreadable?: boolean;
	/** The API credential's Rate Limit Use (absent: as a credential saved before the field). */
	rateLimitUse?: string;
}

function makeWorkflow(node: INode, staticData: IDataObject = {}, settings?: IWorkflowSettings): Workflow {
	return new Workflow({
		id: 'test-workflow',
		name: 'test',
		nodes: [node],
		connections: {},
		active: false,
		nodeTypes: new TestNodeTypes(),
		staticData,
		settings,
	});
}

function makeNode(type: string, parameters: IDataObject, credentials: Credentials): INode {
	const nodeCredentials: INode['credentials'] = {};
	if (credentials.apiKey !== undefined) nodeCredentials.inboundFlowApi = { id: '1', name: 'InboundFlow account' };
	if (credentials.signingSecret !== undefined || credentials.signingSecretUnreadable) {
		nodeCredentials.inboundFlowWebhookApi = { id: '2', name: 'InboundFlow webhook' };
	}
	return {
		id: 'node-1',
		name: 'InboundFlow',
		type: `n8n-nodes-inboundflow.${type}`,
		typeVersion: 1,
		position: [0, 0],
		parameters: parameters as INode['parameters'],
		credentials: nodeCredentials,
	};
}

function additional(
	credentials: Credentials,
	extra: Partial<IWorkflowExecuteAdditionalData> = {},
	onCredentialRead?: () => void,
) {
	const data: Record<string, ICredentialDataDecryptedObject> = {};
	if (credentials.apiKey !== undefined) {
		data.inboundFlowApi = { apiKey: credentials.apiKey, baseUrl: credentials.baseUrl ?? '' };
		if (credentials.rateLimitUse !== undefined) data.inboundFlowApi.rateLimitUse = credentials.rateLimitUse;
	}
	if (credentials.signingSecret !== undefined) data.inboundFlowWebhookApi = { signingSecret: credentials.signingSecret };
	return {
		credentialsHelper: new TestCredentialsHelper(data, onCredentialRead),
		executionId: 'test-execution',
		restApiUrl: 'http://localhost:5678/rest',
		webhookBaseUrl: 'http://localhost:5678/webhook',
		webhookTestBaseUrl: 'http://localhost:5678/webhook-test',
		webhookWaitingBaseUrl: 'http://localhost:5678/webhook-waiting',
		formWaitingBaseUrl: 'http://localhost:5678/form-waiting',
		variables: {},
		...extra,
	} as unknown as IWorkflowExecuteAdditionalData;
}

export interface ExecuteOptions {
	credentials: Credentials;
	items?: IDataObject[];
	continueOnFail?: boolean;
	mode?: WorkflowExecuteMode;
	/** The execution's cancel signal (n8n aborts it when the user stops the run). */
	abortSignal?: AbortSignal;
	/** Called on each credential read (ours and n8n's own, per request). */
	onCredentialRead?: () => void;
	/** The node's typeVersion (default 1). */
	typeVersion?: number;
	/** Recordings (issue 25): stands in for n8n's prepareBinaryData, to watch the stream it is given. */
	prepareBinaryData?: IExecuteFunctions['helpers']['prepareBinaryData'];
}

/** Runs the action node's execute() in an n8n-core ExecuteContext. */
export async function executeNode(parameters: IDataObject, options: ExecuteOptions): Promise<INodeExecutionData[][]> {
	const node = makeNode('inboundFlow', parameters, options.credentials);
	if (options.typeVersion !== undefined) node.typeVersion = options.typeVersion;
	if (options.continueOnFail) node.onError = 'continueRegularOutput';
	const workflow = makeWorkflow(node);
	const items: INodeExecutionData[] = (options.items ?? [{}]).map((json) => ({ json }));
	const inputData = { main: [items] };
	const runExecutionData = { resultData: { runData: {} } } as unknown as IRunExecutionData;
	const context = new ExecuteContext(
		workflow,
		node,
		additional(options.credentials, {}, options.onCredentialRead),
		options.mode ?? 'manual',
		runExecutionData,
		0,
		items,
		inputData,
		{ node, data: inputData, source: null },
		[],
		options.abortSignal,
	);
	if (options.prepareBinaryData) context.helpers.prepareBinaryData = options.prepareBinaryData;
	const result = await NODE_TYPES[node.type].execute!.call(context);
	return result as INodeExecutionData[][];
}

export interface PollOptions {
	credentials: Credentials;
	/** The node's static data; kept by the caller between polls, as n8n keeps it. */
	staticData: IDataObject;
	mode?: WorkflowExecuteMode;
	pollBudgetMs?: number;
	/** The workflow's own static data (its `global` key is what getWorkflowStaticData('global') returns). */
	workflowStaticData?: IDataObject;
}

/** Runs the polling trigger's poll() in an n8n-core PollContext. */
export async function poll(parameters: IDataObject, options: PollOptions): Promise<INodeExecutionData[][] | null> {
	const node = makeNode('inboundFlowTrigger', parameters, options.credentials);
	const workflow = makeWorkflow(node, options.workflowStaticData);
	const context = new PollContext(
		workflow,
		node,
		additional(options.credentials),
		options.mode ?? 'trigger',
		'activate',
		undefined,
		undefined,
		undefined,
		undefined,
		() => options.staticData,
		() => options.pollBudgetMs ?? 5 * 60_000,
	);
	return await NODE_TYPES[node.type].poll!.call(context);
}

export interface WebhookServer {
	url: string;
	/** What the node emitted, one entry per request that produced workflow data. */
	emitted: INodeExecutionData[][][];
	staticData: IDataObject;
	close(): Promise<void>;
}

/**
 * Serves the webhook trigger on a real local port, as n8n's webhook server does:
 * raw body kept, JSON parsed, the node's webhook() run in an n8n-core WebhookContext.
 */
export async function serveWebhook(
	parameters: IDataObject,
	credentials: Credentials,
	options: {
		keepRawBody?: boolean;
		staticData?: IDataObject;
		/** n8n could not start the run of this accepted delivery: answered 500, nothing emitted. */
		runFails?: () => boolean;
	} = {},
): Promise<WebhookServer> {
	const node = makeNode('inboundFlowWebhookTrigger', parameters, credentials);
	const staticData: IDataObject = options.staticData ?? {};
	const workflow = makeWorkflow(node, { [`node:${node.name}`]: staticData });
	const emitted: INodeExecutionData[][][] = [];
	const server = http.createServer((req, res) => {
		const chunks: Buffer[] = [];
		req.on('data', (c: Buffer) => chunks.push(c));
		req.on('end', () => {
			const rawBody = Buffer.concat(chunks);
			let body: unknown = {};
			try {
				body = rawBody.length ? JSON.parse(rawBody.toString('utf8')) : {};
			} catch {
				body = {};
			}
			const request = Object.assign(req, { rawBody: options.keepRawBody === false ? undefined : rawBody, body, params: {}, query: {} });
			const response = Object.assign(res, {
				status(code: number) {
					res.statusCode = code;
					return response;
				},
				json(value: unknown) {
					res.setHeader('content-type', 'application/json');
					res.end(JSON.stringify(value));
				},
				send(value: unknown) {
					res.end(typeof value === 'string' ? value : JSON.stringify(value));
				},
			});
			const webhookData = {
				httpMethod: 'POST',
				node: node.name,
				path: 'inboundflow',
				webhookDescription: { name: 'default', httpMethod: 'POST', path: 'inboundflow' },
				workflowId: workflow.id,
				workflowExecuteAdditionalData: {},
			} as unknown as IWebhookData;
			const context = new WebhookContext(
				workflow,
				node,
				additional(credentials, { httpRequest: request, httpResponse: response } as never),
				'webhook',
				webhookData,
				[],
				null,
			);
			NODE_TYPES[node.type].webhook!.call(context).then(
				(result) => {
					if (result.workflowData && !result.noWebhookResponse && options.runFails?.()) {
						res.statusCode = 500;
						res.end(JSON.stringify({ message: 'There was a problem executing the workflow' }));
						return;
					}
					if (result.workflowData) emitted.push(result.workflowData);
					if (result.noWebhookResponse) return;
					res.statusCode = 200;
					res.setHeader('content-type', 'application/json');
					res.end(JSON.stringify(result.webhookResponse ?? { message: 'Workflow was started' }));
				},
				(error: Error) => {
					res.statusCode = 500;
					res.end(JSON.stringify({ message: error.message }));
				},
			);
		});
	});
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	const { port } = server.address() as AddressInfo;
	return {
		url: `http://127.0.0.1:${port}/webhook`,
		emitted,
		staticData,
		close: async () => await new Promise<void>((resolve) => server.close(() => resolve())),
	};
}

/** An emulator per test file, plus credentials pointing at it. */
export async function withEmulator(options: EmulatorOptions = {}): Promise<{
	emulator: InboundFlowEmulator;
	credentials: Credentials;
}> {
	const emulator = await startEmulator(options);
	return { emulator, credentials: { apiKey: FULL_KEY, baseUrl: emulator.url } };
}

export function json(output: INodeExecutionData[][] | null): IDataObject[] {
	return (output?.[0] ?? []).map((item) => item.json);
}

// ---- The credential's guarantees for any node (security) ----

/**
 * n8n-core's own request helpers for a node holding the InboundFlow credential: what
 * every node using it gets. `httpRequest` is httpRequestWithAuthentication (our nodes,
 * the credential test), `request` the older requestWithAuthentication (n8n's HTTP
 * Request node).
 */
export function credentialRequests(credentials: Credentials): {
	httpRequest: (options: IHttpRequestOptions) => Promise<unknown>;
	/** The older request options (`uri`, `followRedirect`, `rejectUnauthorized`, `proxy`…). */
	request: (options: Record<string, unknown>) => Promise<unknown>;
} {
	const node = makeNode('inboundFlowTrigger', {}, credentials);
	const context = new PollContext(makeWorkflow(node), node, additional(credentials), 'trigger', 'activate',
		undefined, undefined, undefined, undefined, () => ({}), () => 60_000);
	return {
		httpRequest: async (options) => await context.helpers.httpRequestWithAuthentication.call(context, 'inboundFlowApi', options),
		request: async (options) => await context.helpers.requestWithAuthentication.call(context, 'inboundFlowApi', options as never),
	};
}

/**
 * An emulator for the whole test file, started before its tests (with fast retry timings)
 * and stopped after them; read `emulator` and `credentials` from the returned object.
 */
/** jest's hooks, read from the global scope: this file is also loaded outside jest (benchmarks). */
interface FileHooks {
	beforeAll(fn: () => Promise<void>): void;
	afterAll(fn: () => Promise<void>): void;
}
const hooks = globalThis as unknown as FileHooks;

export function emulatorPerFile(options: EmulatorOptions = {}): { emulator: InboundFlowEmulator; credentials: Credentials } {
	const shared = {} as { emulator: InboundFlowEmulator; credentials: Credentials };
	hooks.beforeAll(async () => {
		Object.assign(shared, await withEmulator(options));
		fastTimings();
	});
	hooks.afterAll(async () => {
		restoreTimings();
		await shared.emulator?.stop();
	});
	return shared;
}

// ── Resource locator lists (issue 27) ───────────────────────────────────────────────

/**
 * Runs one of the action node's listSearch methods (a resource locator's From List) in
 * an n8n-core LoadOptionsContext, as n8n does when the panel asks for a page.
 */
export async function listSearch(
	method: string,
	options: { credentials: Credentials; filter?: string; paginationToken?: string; timezone?: string },
): Promise<INodeListSearchResult> {
	const node = makeNode('inboundFlow', { resource: 'call', operation: 'get' }, options.credentials);
	node.typeVersion = 2;
	const workflow = makeWorkflow(node, {}, { timezone: options.timezone ?? 'UTC' });
	const context = new LoadOptionsContext(workflow, node, additional(options.credentials), 'parameters.callId');
	const search = NODE_TYPES[node.type].methods?.listSearch?.[method];
	if (!search) throw new Error(`the action node has no listSearch method ${method}`);
	return await search.call(context, options.filter, options.paginationToken);
}

// ---- Rate limit: two clients of ours on one key (test/pacing.test.ts, test/transport.test.ts) ----

/**
 * The smaller part of the successful requests, while both ran, of client A (/v1/me) and
 * client B (/v1/calls) in the emulator's log: 0.5 is an even split.
 */
export function smallerShareWhileBoth(log: Array<{ path: string; status: number; at: number }>): number {
	const a = log.filter((r) => r.path === '/v1/me' && r.status === 200);
	const b = log.filter((r) => r.path === '/v1/calls' && r.status === 200);
	const bothTo = Math.min(a[a.length - 1].at, b[b.length - 1].at);
	const share = (list: Array<{ at: number }>) => list.filter((r) => r.at <= bothTo).length;
	return Math.min(share(a), share(b)) / (share(a) + share(b));
}
