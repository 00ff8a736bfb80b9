// n8n's queue mode, started by our own code: one main process (UI, REST, pollers,
// schedules), workers (`n8n worker`, executions from the Redis queue) and webhook
// processors (`n8n webhook`, production webhooks), sharing Postgres, Redis, one
// encryption key and one user folder in which this package is installed as a community
// package (the way test/e2e/n8n.ts installs it). Also: a REST client for the main
// process and the workflows the queue-mode suite and benchmark use.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import path from 'node:path';

import { buildWebhook, type InboundFlowEmulator } from '../../emulator/server';
import { freePort, N8n, PACKAGE_NAME, PACKAGE_ROOT, type Sink } from './n8n';
import type { Services } from './services';

export type Role = 'main' | 'worker' | 'webhook';

const live = new Set<ChildProcess>();
process.on('exit', () => {
	for (const child of live) if (child.exitCode === null) child.kill('SIGKILL');
});

/** One n8n process of the cluster. */
export class N8nProcess {
	private child?: ChildProcess;
	output = '';
	/** Times (ms) from spawn to ready, one per start. */
	readyMs: number[] = [];

	constructor(
		readonly name: string,
		readonly role: Role,
		readonly bin: string,
		readonly env: NodeJS.ProcessEnv,
		/** N8N_PORT (main, webhook) or the worker's health-check port. */
		readonly port: number,
		private readonly args: string[],
	) {}

	get url(): string {
		return `http://127.0.0.1:${this.port}`;
	}

	get running(): boolean {
		return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
	}

	async start(timeoutMs = 420_000): Promise<void> {
		if (this.running) return;
		const started = Date.now();
		const child = spawn(this.bin, this.args, { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
		this.child = child;
		live.add(child);
		child.on('exit', () => live.delete(child));
		const append = (d: Buffer) => {
			this.output += d.toString();
			// Keep the tail only: a long suite logs a lot.
			if (this.output.length > 4_000_000) this.output = this.output.slice(-2_000_000);
		};
		child.stdout?.on('data', append);
		child.stderr?.on('data', append);
		const deadline = Date.now() + timeoutMs;
		while (Date.now() < deadline) {
			if (child.exitCode !== null) throw new Error(`${this.name} exited early (${child.exitCode}):\n${this.output.slice(-4000)}`);
			try {
				const response = await fetch(`${this.url}/healthz/readiness`, { signal: AbortSignal.timeout(2000) });
				if (response.ok) {
					this.readyMs.push(Date.now() - started);
					return;
				}
			} catch {
				// not listening yet
			}
			await new Promise((r) => setTimeout(r, 300));
		}
		throw new Error(`${this.name} not ready in ${timeoutMs} ms:\n${this.output.slice(-4000)}`);
	}

	async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 20_000): Promise<void> {
		const child = this.child;
		if (!child || child.exitCode !== null || child.signalCode !== null) return;
		await new Promise<void>((resolve) => {
			const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
			child.once('exit', () => {
				clearTimeout(timer);
				resolve();
			});
			child.kill(signal);
		});
	}

	/** SIGTERM (or `signal`); SIGKILL after `graceMs`. How it ended. */
	async terminate(graceMs: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: string | null; killed: boolean }> {
		const child = this.child;
		if (!child || child.exitCode !== null || child.signalCode !== null) return { code: child?.exitCode ?? null, signal: child?.signalCode ?? null, killed: false };
		let killed = false;
		return await new Promise((resolve) => {
			const timer = setTimeout(() => {
				killed = true;
				child.kill('SIGKILL');
			}, graceMs);
			child.once('exit', (code, exitSignal) => {
				clearTimeout(timer);
				resolve({ code, signal: exitSignal, killed });
			});
			child.kill(signal);
		});
	}

	/** Execution ids this worker logged as started. */
	startedExecutions(): string[] {
		return [...this.output.matchAll(/Worker started execution (\d+)/g)].map((m) => m[1]);
	}
}

export interface ClusterOptions {
	services: Services;
	workers?: number;
	webhooks?: number;
	/** Jobs a worker runs at once (`n8n worker --concurrency`). */
	concurrency?: number;
	/** Extra settings for every process. */
	env?: Record<string, string>;
}

/** Settings every process of a queue-mode cluster shares. */
export function queueEnv(services: Services, webhookUrl: string): Record<string, string> {
	return {
		...services.n8nEnv(),
		EXECUTIONS_MODE: 'queue',
		// Production webhooks only on the webhook processors; manual runs on workers too.
		N8N_DISABLE_PRODUCTION_MAIN_PROCESS: 'true',
		OFFLOAD_MANUAL_EXECUTIONS_TO_WORKERS: 'true',
		// 2.41 reads N8N_WEBHOOK_URL (WEBHOOK_URL is its deprecated name, set by n8n.ts).
		N8N_WEBHOOK_URL: webhookUrl,
		WEBHOOK_URL: webhookUrl,
		N8N_GRACEFUL_SHUTDOWN_TIMEOUT: '10',
		// One connection pool per process is plenty here.
		DB_POSTGRESDB_POOL_SIZE: '4',
		...QUEUE_JOB_RETENTION,
	};
}

/**
 * Completed and failed Bull jobs kept in Redis (n8n's default: 0, removed at once). A webhook
 * processor (and main) keeps each execution it enqueued "active" until Bull's `job.finished()`
 * resolves; that listens for the queue's *completed* event only after a first state check,
 * and re-checks the state every 5 s. A job that completes before the listener is attached
 * (a processor slow for a moment under load) and is removed at once is never seen finished:
 * the execution stays active and SIGTERM waits for it until the shutdown timeout. Kept jobs
 * are found by those checks. Measured in the suite's "3c" (README "Webhook processors and SIGTERM").
 */
export const QUEUE_JOB_RETENTION = {
	N8N_EXECUTIONS_QUEUE_KEEP_LAST_COMPLETED: '1000',
	N8N_EXECUTIONS_QUEUE_KEEP_LAST_FAILED: '1000',
};

/** n8n's defaults for QUEUE_JOB_RETENTION's settings (jobs removed as soon as they end). */
export const N8N_DEFAULT_JOB_RETENTION = {
	N8N_EXECUTIONS_QUEUE_KEEP_LAST_COMPLETED: '0',
	N8N_EXECUTIONS_QUEUE_KEEP_LAST_FAILED: '0',
};

/**
 * A TCP proxy to Redis that passes replies on `delayMs` late, in order, on the connections
 * that run Lua scripts (Bull's queue client: addJob, isFinished); requests, and the other
 * connections (pub/sub, cache), go through at once. A webhook processor connected through it
 * handles each job it enqueued as if its event loop had stalled that long after adding it,
 * deterministically. `delayMs` can be raised while it runs (0 while a process starts); lower
 * it only once the process has stopped (replies already delayed would be overtaken).
 */
export async function startLaggingProxy(
	target: { host: string; port: number },
	delayMs: number,
): Promise<{ port: number; delayMs: number; close: () => Promise<void> }> {
	const sockets = new Set<net.Socket>();
	const proxy = {
		port: 0,
		delayMs,
		close: async () => {
			for (const socket of sockets) socket.destroy();
			await new Promise<void>((resolve) => server.close(() => resolve()));
		},
	};
	const server = net.createServer((client) => {
		const upstream = net.connect(target.port, target.host);
		for (const socket of [client, upstream]) {
			sockets.add(socket);
			socket.on('close', () => {
				sockets.delete(socket);
				client.destroy();
				upstream.destroy();
			});
			socket.on('error', () => undefined);
		}
		let scripts = false;
		client.on('data', (chunk: Buffer) => {
			scripts ||= /\$(7\r\nevalsha|4\r\neval)\r\n/i.test(chunk.toString('latin1'));
			upstream.write(chunk);
		});
		// Timers of one duration fire in the order they were set: replies stay in order.
		upstream.on('data', (chunk: Buffer) => {
			const delay = scripts ? proxy.delayMs : 0;
			if (delay <= 0) client.write(chunk);
			else setTimeout(() => client.destroyed || client.write(chunk), delay);
		});
	});
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	proxy.port = (server.address() as net.AddressInfo).port;
	return proxy;
}

export class QueueCluster {
	main!: N8nProcess;
	workers: N8nProcess[] = [];
	webhooks: N8nProcess[] = [];
	/** Processes started with a user folder without the package (see addProcess). */
	extras: N8nProcess[] = [];
	rest!: N8nRest;
	private tempDirs: string[] = [];

	private constructor(
		readonly options: ClusterOptions,
		readonly installed: N8n,
		readonly webhookPorts: number[],
	) {}

	get userFolder(): string {
		return this.installed.userFolder;
	}

	/**
	 * Starts main (and waits for its migrations), then the workers and webhook
	 * processors side by side; sets up the owner account over REST.
	 */
	static async start(options: ClusterOptions): Promise<QueueCluster> {
		const webhookCount = options.webhooks ?? 2;
		const webhookPorts = await Promise.all(Array.from({ length: webhookCount }, () => freePort()));
		const installed = await N8n.create();
		const cluster = new QueueCluster(options, installed, webhookPorts);
		try {
			cluster.main = await cluster.process('main', 'main', installed.port);
			await cluster.main.start();
			cluster.rest = new N8nRest(cluster.main.url);
			await cluster.rest.setupOwner();
			for (let i = 0; i < (options.workers ?? 2); i++) {
				cluster.workers.push(await cluster.process(`worker-${i + 1}`, 'worker', await freePort()));
			}
			for (let i = 0; i < webhookCount; i++) {
				cluster.webhooks.push(await cluster.process(`webhook-${i + 1}`, 'webhook', webhookPorts[i]));
			}
			await Promise.all([...cluster.workers, ...cluster.webhooks].map((p) => p.start()));
		} catch (error) {
			await cluster.stop();
			throw error;
		}
		return cluster;
	}

	/** A process of this cluster; `userFolder` overrides the shared one (e.g. without the package). */
	async process(name: string, role: Role, port: number, userFolder?: string, extraEnv: Record<string, string> = {}): Promise<N8nProcess> {
		const env: NodeJS.ProcessEnv = {
			...this.installed.env(),
			...queueEnv(this.options.services, `http://127.0.0.1:${this.webhookPorts[0] ?? this.installed.port}/`),
			N8N_RUNNERS_BROKER_PORT: String(await freePort()),
			N8N_PORT: String(role === 'worker' ? await freePort() : port),
			...this.options.env,
			...extraEnv,
		};
		if (userFolder) env.N8N_USER_FOLDER = userFolder;
		const args = role === 'main' ? ['start'] : role === 'webhook' ? ['webhook'] : ['worker', `--concurrency=${this.options.concurrency ?? 1}`];
		if (role === 'worker') {
			Object.assign(env, {
				QUEUE_HEALTH_CHECK_ACTIVE: 'true',
				QUEUE_HEALTH_CHECK_PORT: String(port),
				N8N_WORKER_SERVER_ADDRESS: '127.0.0.1',
			});
		}
		return new N8nProcess(name, role, this.installed.bin, env, port, args);
	}

	/** Starts one more worker or webhook processor whose user folder lacks this package. */
	async addProcessWithoutPackage(role: 'worker' | 'webhook'): Promise<N8nProcess> {
		const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'inboundflow-n8n-nopkg-'));
		this.tempDirs.push(folder);
		const process = await this.process(`${role}-without-package`, role, await freePort(), folder);
		this.extras.push(process);
		await process.start();
		return process;
	}

	/** One more webhook processor (with the package) with its own settings; not started. */
	async addWebhookProcessor(name: string, env: Record<string, string>): Promise<N8nProcess> {
		const process = await this.process(name, 'webhook', await freePort(), undefined, env);
		this.extras.push(process);
		return process;
	}

	webhookUrl(index: number, pathAfterWebhook: string): string {
		return `${this.webhooks[index].url}/webhook/${pathAfterWebhook}`;
	}

	async restartMain(): Promise<{ downMs: number }> {
		const started = Date.now();
		await this.main.stop();
		await this.main.start();
		await this.rest.login();
		return { downMs: Date.now() - started };
	}

	all(): N8nProcess[] {
		return [this.main, ...this.workers, ...this.webhooks, ...this.extras].filter(Boolean);
	}

	/** Stops every process (webhook processors and workers first) and removes the user folders. */
	async stop(): Promise<void> {
		await Promise.all([...this.webhooks, ...this.extras].map((p) => p.stop()));
		await Promise.all(this.workers.map((p) => p.stop()));
		await this.main?.stop();
		for (const dir of [this.installed.userFolder, ...this.tempDirs]) fs.rmSync(dir, { recursive: true, force: true });
	}
}

export interface ExecutionSummary {
	id: string;
	workflowId: string;
	status: string;
	mode: string;
	startedAt: string | null;
	stoppedAt: string | null;
	createdAt?: string;
}

/** The main process's REST API, as the editor uses it (cookie login). */
export class N8nRest {
	private cookie = '';
	private readonly browserId = 'inboundflow-e2e-browser';
	readonly email = 'owner@inboundflow.test';
	readonly password = 'InboundFlow-e2e-1';

	constructor(readonly baseUrl: string) {}

	async request<T = unknown>(method: string, route: string, body?: unknown): Promise<T> {
		const response = await fetch(`${this.baseUrl}/rest${route}`, {
			method,
			headers: { 'content-type': 'application/json', 'browser-id': this.browserId, cookie: this.cookie },
			body: body === undefined ? undefined : JSON.stringify(body),
			signal: AbortSignal.timeout(60_000),
		});
		const setCookie = response.headers.getSetCookie().find((c) => c.startsWith('n8n-auth='));
		if (setCookie) this.cookie = setCookie.split(';')[0];
		const text = await response.text();
		if (!response.ok) throw new Error(`${method} /rest${route}: HTTP ${response.status} ${text.slice(0, 500)}`);
		const parsed = text ? (JSON.parse(text) as { data?: T }) : {};
		return (parsed && typeof parsed === 'object' && 'data' in parsed ? parsed.data : parsed) as T;
	}

	async setupOwner(): Promise<void> {
		await this.request('POST', '/owner/setup', {
			email: this.email,
			firstName: 'Queue',
			lastName: 'Suite',
			password: this.password,
		});
		await this.login();
	}

	async login(): Promise<void> {
		await this.request('POST', '/login', { emailOrLdapLoginId: this.email, password: this.password });
	}

	async createCredential(name: string, type: string, data: Record<string, unknown>): Promise<string> {
		const created = await this.request<{ id: string }>('POST', '/credentials', { name, type, data });
		return created.id;
	}

	async createWorkflow(workflow: Record<string, unknown>): Promise<{ id: string; versionId: string }> {
		return await this.request<{ id: string; versionId: string }>('POST', '/workflows', workflow);
	}

	async activate(id: string, versionId: string): Promise<void> {
		await this.request('POST', `/workflows/${id}/activate`, { versionId });
	}

	async deactivate(id: string): Promise<void> {
		await this.request('POST', `/workflows/${id}/deactivate`, {});
	}

	/** Creates and publishes (activates) a workflow; returns its id. */
	async createActive(workflow: Record<string, unknown>): Promise<string> {
		const { id, versionId } = await this.createWorkflow(workflow);
		await this.activate(id, versionId);
		return id;
	}

	async workflow(id: string): Promise<Record<string, unknown>> {
		return await this.request('GET', `/workflows/${id}`);
	}

	/** Executions of a workflow, newest first (every page, up to `max`). */
	async executions(workflowId: string, max = 2000): Promise<ExecutionSummary[]> {
		const filter = encodeURIComponent(JSON.stringify({ workflowId }));
		const all: ExecutionSummary[] = [];
		let cursor: string | null | undefined;
		do {
			const page = await this.request<{ results: ExecutionSummary[]; nextCursor?: string | null }>(
				'GET',
				`/executions?filter=${filter}&limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
			);
			all.push(...page.results);
			cursor = page.nextCursor;
		} while (cursor && all.length < max);
		return all;
	}

	/** One execution with its run data (n8n sends it "flatted"; unflattened here). */
	async execution(id: string): Promise<{ status: string; data: unknown; raw: string }> {
		const execution = await this.request<{ status: string; data: string }>('GET', `/executions/${id}`);
		return { status: execution.status, data: unflatten(execution.data), raw: execution.data };
	}

	/** Waits until `count` executions of the workflow have finished (any status). */
	async waitForExecutions(workflowId: string, count: number, timeoutMs: number): Promise<ExecutionSummary[]> {
		const deadline = Date.now() + timeoutMs;
		let list: ExecutionSummary[] = [];
		while (Date.now() < deadline) {
			list = await this.executions(workflowId);
			const finished = list.filter((e) => !['new', 'running', 'waiting'].includes(e.status));
			if (finished.length >= count) return list;
			await new Promise((r) => setTimeout(r, 500));
		}
		return list;
	}
}

/**
 * n8n stores and sends run data in the "flatted" format: a JSON array whose first
 * element is the value, where every string is an index (in decimal) into the array.
 */
export function unflatten(text: string): unknown {
	const table = JSON.parse(text) as unknown[];
	const done = new Map<number, unknown>();
	const revive = (index: number): unknown => {
		if (done.has(index)) return done.get(index);
		const value = table[index];
		if (Array.isArray(value)) {
			const out: unknown[] = [];
			done.set(index, out);
			for (const v of value) out.push(typeof v === 'string' ? revive(Number(v)) : v);
			return out;
		}
		if (value !== null && typeof value === 'object') {
			const out: Record<string, unknown> = {};
			done.set(index, out);
			for (const [k, v] of Object.entries(value)) out[k] = typeof v === 'string' ? revive(Number(v)) : v;
			return out;
		}
		done.set(index, value);
		return value;
	};
	return revive(0);
}

// ---------------------------------------------------------------------------------
// Workflows of the queue-mode suite (and reusable elsewhere): plain n8n workflow JSON
// for POST /rest/workflows.

type Json = Record<string, unknown>;

export interface WorkflowNode extends Json {
	name: string;
}

let counter = 0;

/** A node with a fresh id; `extra` sets typeVersion, credentials, webhookId, … */
export function wfNode(name: string, type: string, parameters: Json, extra: Json = {}): WorkflowNode {
	counter++;
	return {
		id: `7a000000-0000-4000-8000-${String(counter).padStart(12, '0')}`,
		name,
		type,
		typeVersion: 1,
		position: [counter * 220, 0],
		parameters,
		...extra,
	};
}

/** A workflow whose nodes run one after the other. */
export function wfChain(name: string, nodes: WorkflowNode[], settings: Json = {}): Json {
	const connections: Json = {};
	for (let i = 0; i < nodes.length - 1; i++) {
		connections[nodes[i].name] = { main: [[{ node: nodes[i + 1].name, type: 'main', index: 0 }]] };
	}
	return { name, nodes, connections, settings: { executionOrder: 'v1', ...settings } };
}

/** n8n's Webhook node on `path` (production URL /webhook/<path>), answering at once. */
export function n8nWebhookNode(name: string, webhookPath: string): WorkflowNode {
	return wfNode(
		name,
		'n8n-nodes-base.webhook',
		{ httpMethod: 'POST', path: webhookPath, responseMode: 'onReceived', options: {} },
		{ typeVersion: 2, webhookId: cryptoId(webhookPath) },
	);
}

/** POSTs each item as JSON to `url` (a sink standing in for a CRM). */
export function postToSink(name: string, url: string): WorkflowNode {
	return wfNode(
		name,
		'n8n-nodes-base.httpRequest',
		{ method: 'POST', url, sendBody: true, specifyBody: 'json', jsonBody: '={{ JSON.stringify($json) }}', options: {} },
		{ typeVersion: 4.2 },
	);
}

/** Our action node: Return All over calls, optionally with a `since` that matches every record. */
export function returnAllCallsNode(name: string, credentialId: string, createdAfter?: string): WorkflowNode {
	return wfNode(
		name,
		`${PACKAGE_NAME}.inboundFlow`,
		{
			resource: 'call',
			operation: 'getAll',
			returnAll: true,
			simplify: true,
			...(createdAfter ? { filters: { createdAfter } } : {}),
		},
		{ credentials: { inboundFlowApi: { id: credentialId, name: 'InboundFlow account' } }, executeOnce: true },
	);
}

/** Our polling trigger on `event`, polling every 10 s (see EVERY_10_SECONDS). */
export function pollingTriggerNode(name: string, credentialId: string, event: string, pollTimes: Json): WorkflowNode {
	return wfNode(
		name,
		`${PACKAGE_NAME}.inboundFlowTrigger`,
		{ event, pollTimes, options: {} },
		{ credentials: { inboundFlowApi: { id: credentialId, name: 'InboundFlow account' } } },
	);
}

/** Our webhook trigger (production URL /webhook/<webhookId>/inboundflow). */
export function webhookTriggerNode(name: string, webhookId: string, signingCredentialId: string, events = ['call.completed', 'lead.created']): WorkflowNode {
	return wfNode(
		name,
		`${PACKAGE_NAME}.inboundFlowWebhookTrigger`,
		{ events },
		{
			webhookId,
			credentials: { inboundFlowWebhookApi: { id: signingCredentialId, name: 'InboundFlow webhook secret' } },
		},
	);
}

/**
 * n8n's Remove Duplicates node (v2), "Remove Items Processed in Previous Executions"
 * keyed on the delivery id; n8n keeps the seen values in its database.
 */
export function removeDuplicatesNode(name: string, value = '={{ $json.delivery_id }}'): WorkflowNode {
	return wfNode(
		name,
		'n8n-nodes-base.removeDuplicates',
		{
			operation: 'removeItemsSeenInPreviousExecutions',
			logic: 'removeItemsWithAlreadySeenKeyValues',
			dedupeValue: value,
			options: {},
		},
		{ typeVersion: 2 },
	);
}

// The claim step ships as two importable examples (examples/webhook-claim-*.json); the
// suite and the bench import those files, so what is proven here is what users get.

/** The claim examples: trigger → claim → Merge by position → If first copy → the user's steps. */
export const CLAIM_EXAMPLES = {
	redis: 'webhook-claim-redis.json',
	postgres: 'webhook-claim-postgres.json',
} as const;

type ClaimSetup = keyof typeof CLAIM_EXAMPLES;

function readClaimExample(setup: ClaimSetup): { name: string; nodes: WorkflowNode[]; connections: Json; settings: Json } {
	const file = path.join(PACKAGE_ROOT, 'examples', CLAIM_EXAMPLES[setup]);
	return JSON.parse(fs.readFileSync(file, 'utf8')) as { name: string; nodes: WorkflowNode[]; connections: Json; settings: Json };
}

/**
 * The Postgres example's `CREATE TABLE` (the one users are told to run), read from
 * its sticky note, so the suite creates exactly that table.
 */
export function claimTableSql(): string {
	const notes = readClaimExample('postgres').nodes.map((n) => String((n.parameters as Json).content ?? ''));
	const sql = notes.map((text) => /```sql\n([\s\S]*?CREATE TABLE[\s\S]*?)```/.exec(text)?.[1]).find(Boolean);
	if (!sql) throw new Error(`${CLAIM_EXAMPLES.postgres}: no CREATE TABLE in its notes`);
	return sql.trim();
}

/**
 * A claim example as the user imports it, with only what a user changes: the webhook
 * id, the credentials, and the URL of "Your Steps (CRM)" (pointed at the suite's sink).
 */
export function claimExampleWorkflow(
	setup: ClaimSetup,
	options: { name: string; webhookId: string; signingCredentialId: string; sinkUrl: string; claimCredentialId: string },
): Json {
	const workflow = readClaimExample(setup);
	for (const node of workflow.nodes) {
		const credentials = node.credentials as Record<string, { id: string; name: string }> | undefined;
		if (node.type === `${PACKAGE_NAME}.inboundFlowWebhookTrigger`) {
			node.webhookId = options.webhookId;
			node.credentials = { inboundFlowWebhookApi: { id: options.signingCredentialId, name: 'InboundFlow webhook secret' } };
		} else if (credentials?.redis) {
			node.credentials = { redis: { id: options.claimCredentialId, name: 'Redis' } };
		} else if (credentials?.postgres) {
			node.credentials = { postgres: { id: options.claimCredentialId, name: 'Postgres' } };
		} else if (node.name === 'Your Steps (CRM)') {
			(node.parameters as Json).url = options.sinkUrl;
		}
	}
	return { name: options.name, nodes: workflow.nodes, connections: workflow.connections, settings: workflow.settings };
}

/** The claim table, as the Postgres example's note gives it. */
export const DELIVERIES_TABLE_SQL = claimTableSql();

export type DedupSetup = 'trigger' | 'removeDuplicates' | 'redis' | 'postgres' | 'removeDuplicatesAlone';

export const DEDUP_SETUPS: Record<DedupSetup, string> = {
	trigger: '(a) trigger alone (static data)',
	removeDuplicates: '(b) trigger → Remove Duplicates',
	redis: '(c1) claim example: trigger → Redis INCR → Merge → If first',
	postgres: '(c2) claim example: trigger → Postgres INSERT ON CONFLICT → Merge → If first',
	removeDuplicatesAlone: "(b0) n8n's Webhook → Remove Duplicates (every copy reaches it)",
};

/**
 * The webhook trigger, the dedup step of `setup`, then a POST of the delivery to
 * `sinkUrl`. The sink's items carry `delivery_id`.
 */
export function webhookDedupWorkflow(
	setup: DedupSetup,
	options: { webhookId: string; signingCredentialId: string; sinkUrl: string; redisCredentialId?: string; postgresCredentialId?: string },
): Json {
	const trigger = webhookTriggerNode('InboundFlow Webhook', options.webhookId, options.signingCredentialId);
	const sink = (from: string) =>
		wfNode(
			'Forward',
			'n8n-nodes-base.httpRequest',
			{
				method: 'POST',
				url: options.sinkUrl,
				sendBody: true,
				specifyBody: 'json',
				jsonBody: `={{ JSON.stringify(${from}) }}`,
				options: {},
			},
			{ typeVersion: 4.2 },
		);
	const name = `InboundFlow queue: webhook ${DEDUP_SETUPS[setup]}`;
	switch (setup) {
		case 'removeDuplicatesAlone': {
			// Same URL shape as the trigger's, so the same senders work; no signature check.
			const hook = wfNode(
				'Webhook',
				'n8n-nodes-base.webhook',
				{ httpMethod: 'POST', path: `${options.webhookId}/inboundflow`, responseMode: 'onReceived', options: {} },
				{ typeVersion: 2, webhookId: options.webhookId },
			);
			return wfChain(name, [hook, removeDuplicatesNode('Remove Duplicates', '={{ $json.body.delivery_id }}'), sink('$json.body')]);
		}
		case 'trigger':
			return wfChain(name, [trigger, sink('$json')]);
		case 'removeDuplicates':
			return wfChain(name, [trigger, removeDuplicatesNode('Remove Duplicates'), sink('$json')]);
		case 'redis':
		case 'postgres': {
			const claimCredentialId = setup === 'redis' ? options.redisCredentialId : options.postgresCredentialId;
			if (!claimCredentialId) throw new Error(`${setup} setup needs ${setup}CredentialId`);
			return claimExampleWorkflow(setup, {
				name,
				webhookId: options.webhookId,
				signingCredentialId: options.signingCredentialId,
				sinkUrl: options.sinkUrl,
				claimCredentialId,
			});
		}
	}
}

/** A stable UUID-shaped id derived from a text (webhook ids must be unique per path). */
export function cryptoId(text: string): string {
	let h1 = 0x811c9dc5;
	let h2 = 0x01000193;
	for (let i = 0; i < text.length; i++) {
		h1 = Math.imul(h1 ^ text.charCodeAt(i), 0x01000193) >>> 0;
		h2 = Math.imul(h2 ^ text.charCodeAt(i), 0x5bd1e995) >>> 0;
	}
	const hex = (h1.toString(16).padStart(8, '0') + h2.toString(16).padStart(8, '0')).repeat(2);
	return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** n8n's Wait node, in-process for short waits (keeps a worker busy for `seconds`). */
export function waitNode(name: string, seconds: number): WorkflowNode {
	return wfNode(name, 'n8n-nodes-base.wait', { resume: 'timeInterval', amount: seconds, unit: 'seconds' }, { typeVersion: 1.1 });
}

// ---------------------------------------------------------------------------------
// Measurements shared by the queue-mode suite and `npm run bench`.

export const sleep = async (ms: number): Promise<void> => await new Promise((r) => setTimeout(r, ms));

export interface Delivery {
	body: string;
	headers: Record<string, string>;
}

export interface Answer {
	status: number;
	body: string;
}

export async function post(url: string, delivery: Delivery): Promise<Answer> {
	try {
		const response = await fetch(url, {
			method: 'POST',
			body: delivery.body,
			headers: delivery.headers,
			signal: AbortSignal.timeout(30_000),
		});
		return { status: response.status, body: await response.text() };
	} catch (error) {
		return { status: -1, body: String(error) };
	}
}

/**
 * Waits until each URL's POST webhook is registered: a GET is then answered "not
 * registered for GET requests" instead of "not registered". Starts nothing.
 */
export async function waitRegistered(urls: string[], timeoutMs = 30_000): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	for (const url of urls) {
		for (;;) {
			let text = '';
			try {
				text = await (await fetch(url, { signal: AbortSignal.timeout(5000) })).text();
			} catch {
				// not answering
			}
			if (/not registered for GET/.test(text)) break;
			if (Date.now() > deadline) throw new Error(`webhook ${url} still not registered: ${text.slice(0, 200)}`);
			await sleep(250);
		}
	}
}

const FINISHED = (status: string) => !['new', 'running', 'waiting', 'unknown'].includes(status);

/** Waits until every execution of these workflows has finished; returns them by workflow. */
export async function settle(rest: N8nRest, workflowIds: string[], timeoutMs = 120_000): Promise<Record<string, ExecutionSummary[]>> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const lists = await Promise.all(workflowIds.map(async (id) => [id, await rest.executions(id)] as const));
		const pending = lists.flatMap(([, list]) => list.filter((e) => !FINISHED(e.status)));
		if (pending.length === 0) return Object.fromEntries(lists);
		if (Date.now() > deadline) throw new Error(`executions still pending: ${pending.map((e) => `${e.id}:${e.status}`).join(', ')}`);
		await sleep(400);
	}
}

export interface RateWindow {
	limit: number;
	windowMs: number;
}

export interface ReturnAllRun {
	workflow: string;
	executionId: string;
	worker: string;
	status: string;
	records: number;
	seconds: number;
	requests: number;
	rateLimited429: number;
	/** Its share of the successful requests while both ran. */
	shareWhileBoth: number;
}

export interface ReturnAllFigures {
	window: RateWindow;
	recordsEach: number;
	runs: ReturnAllRun[];
	/** First API request to last answer, both workflows. */
	spanSeconds: number;
	/** What fixed windows allow for the successful requests made (see bench/run.ts). */
	minimumSeconds: number;
	shareOfCeiling: number;
	rateLimited429: number;
	requests: number;
	/** Per rate-limit window from the first request: successful requests of A and B, and 429s. */
	perWindow: Array<{ A: number; B: number; '429': number }>;
}

/** Length of the run data of `node` in a stored execution (its first output). */
export function outputLength(data: unknown, node: string): number {
	const runs = (data as { resultData?: { runData?: Record<string, Array<{ data?: { main?: unknown[][] } }>> } })
		.resultData?.runData?.[node];
	const first = runs?.[0]?.data?.main?.[0];
	return Array.isArray(first) ? first.length : -1;
}

/**
 * Two Return All workflows over the same calls with the same key, started at the same
 * moment through the two webhook processors so that they run on two workers. Workflow
 * B sends `since` (matching every record) so the emulator's log tells them apart.
 */
export async function measureReturnAll(
	cluster: QueueCluster,
	emulator: InboundFlowEmulator,
	credentialId: string,
	window: RateWindow,
	/** What a 429 carries: `seconds` as documented; `none` (a quirk) leaves the node to wait a documented 60-s window. */
	retryAfter: 'seconds' | 'none' = 'none',
): Promise<ReturnAllFigures> {
	const recordsEach = emulator.records.calls.length;
	const ids: string[] = [];
	const paths: string[] = [];
	for (const [label, since] of [['A', undefined], ['B', '2000-01-01T00:00:00.000Z']] as const) {
		const webhookPath = `inboundflow-return-all-${label.toLowerCase()}-${Date.now()}`;
		const workflow = wfChain(`InboundFlow queue: Return All ${label}`, [
			n8nWebhookNode('Start', webhookPath),
			returnAllCallsNode('Calls', credentialId, since),
		]);
		ids.push(await cluster.rest.createActive(workflow));
		paths.push(webhookPath);
	}
	await waitRegistered(paths.flatMap((p) => cluster.webhooks.map((_, i) => cluster.webhookUrl(i, p))));
	emulator.configure({ rateLimit: window, sendReset: false, retryAfter });
	// Start on a fresh window, as a key that was idle would.
	await sleep(window.windowMs - (Date.now() % window.windowMs) + 50);
	emulator.clearLog();
	const started = Date.now();
	const answers = await Promise.all(
		paths.map((p, i) => post(cluster.webhookUrl(i % cluster.webhooks.length, p), { body: '{}', headers: { 'content-type': 'application/json' } })),
	);
	for (const answer of answers) if (answer.status !== 200) throw new Error(`Return All start refused: ${answer.status} ${answer.body}`);
	const lists = await settle(cluster.rest, ids, 300_000);
	const log = emulator.requests.filter((r) => r.path === '/v1/calls');
	emulator.configure({ rateLimit: null, sendReset: true, retryAfter: 'seconds' });
	const mine = (i: number) => log.filter((r) => (i === 1) === ('since' in r.query));
	const firsts = [0, 1].map((i) => mine(i)[0]?.at ?? started);
	const lasts = [0, 1].map((i) => mine(i).at(-1)?.at ?? started);
	const bothFrom = Math.max(...firsts);
	const bothTo = Math.min(...lasts);
	const okWhileBoth = (i: number) => mine(i).filter((r) => r.status === 200 && r.at >= bothFrom && r.at <= bothTo).length;
	const totalWhileBoth = okWhileBoth(0) + okWhileBoth(1);
	const runs: ReturnAllRun[] = [];
	for (let i = 0; i < 2; i++) {
		const execution = lists[ids[i]][0];
		const full = await cluster.rest.execution(execution.id);
		const worker = cluster.workers.find((w) => w.startedExecutions().includes(execution.id))?.name ?? 'unknown';
		runs.push({
			workflow: i === 0 ? 'A' : 'B',
			executionId: execution.id,
			worker,
			status: execution.status,
			records: outputLength(full.data, 'Calls'),
			seconds: (Date.parse(execution.stoppedAt ?? '') - Date.parse(execution.startedAt ?? '')) / 1000,
			requests: mine(i).length,
			rateLimited429: mine(i).filter((r) => r.status === 429).length,
			shareWhileBoth: totalWhileBoth ? okWhileBoth(i) / totalWhileBoth : 0,
		});
	}
	const ok = log.filter((r) => r.status === 200).length;
	const spanSeconds = log.length > 1 ? (log[log.length - 1].at - log[0].at) / 1000 : 0;
	const minimumSeconds = ((Math.ceil(ok / window.limit) - 1) * window.windowMs) / 1000;
	const perWindow: ReturnAllFigures['perWindow'] = [];
	const firstWindow = Math.floor((log[0]?.at ?? started) / window.windowMs);
	for (const r of log) {
		const w = Math.floor(r.at / window.windowMs) - firstWindow;
		while (perWindow.length <= w) perWindow.push({ A: 0, B: 0, '429': 0 });
		if (r.status === 429) perWindow[w]['429']++;
		else if (r.status === 200) perWindow[w]['since' in r.query ? 'B' : 'A']++;
	}
	return {
		window,
		recordsEach,
		runs,
		perWindow,
		spanSeconds,
		minimumSeconds,
		shareOfCeiling: spanSeconds > 0 ? Math.min(1, minimumSeconds / spanSeconds) : 0,
		rateLimited429: log.filter((r) => r.status === 429).length,
		requests: log.length,
	};
}

export interface DedupCounts {
	/** Distinct deliveries sent (each should come out once). */
	expected: number;
	/** Items that reached the sink. */
	emitted: number;
	/** Deliveries that reached the sink more than once (extra copies counted in `extra`). */
	duplicated: number;
	extra: number;
	/** Deliveries that never reached the sink. */
	missed: number;
	failedExecutions: number;
}

/** Counts what reached the sink under `sinkPath` for the given delivery ids. */
export function countDeliveries(
	received: Array<{ path: string; body: Record<string, unknown> }>,
	sinkPath: string,
	deliveryIds: string[],
): Omit<DedupCounts, 'failedExecutions'> {
	const wanted = new Set(deliveryIds);
	const seen = new Map<string, number>();
	for (const r of received) {
		const id = String(r.body.delivery_id);
		if (r.path === sinkPath && wanted.has(id)) seen.set(id, (seen.get(id) ?? 0) + 1);
	}
	const counts = [...seen.values()];
	return {
		expected: wanted.size,
		emitted: counts.reduce((a, b) => a + b, 0),
		duplicated: counts.filter((n) => n > 1).length,
		extra: counts.reduce((a, n) => a + Math.max(0, n - 1), 0),
		missed: deliveryIds.filter((id) => !seen.has(id)).length,
	};
}

export type DedupScenario = 'distinct' | 'laterOther' | 'concurrent' | 'pairsAtOnce';

export const DEDUP_SCENARIOS: Record<DedupScenario | 'restart', string> = {
	distinct: 'distinct deliveries, alternating processors',
	laterOther: 'same delivery again later, to the other processor',
	concurrent: 'same delivery ×6 at once (3 to each processor)',
	pairsAtOnce: 'two distinct deliveries at the same moment, one to each processor; later each again to the other',
	restart: 'single process: same deliveries after a restart',
};

export interface DedupTarget {
	setup: DedupSetup;
	workflowId: string;
	webhookId: string;
	/** Path on the sink its Forward node posts to. */
	sinkPath: string;
}

export interface DedupRow extends DedupCounts {
	setup: DedupSetup;
	scenario: DedupScenario | 'restart';
	/** HTTP statuses the senders got, e.g. {200: 59, 500: 1}. */
	answers: Record<string, number>;
	/** One answer body per status (shortened). */
	answerBodies?: Record<string, string>;
	/** Time to the webhook's answer, ms: median and max. */
	answerMs?: { median: number; max: number };
	/** Executions (of this scenario) that ran at the same time as another one of the workflow. */
	parallelExecutions?: string;
	/** pairsAtOnce: how many of the delivery ids the workflow's saved static data held before the redeliveries. */
	savedBeforeRedelivery?: string;
}

/** How many of these executions overlapped in time with another one. */
export function overlapping(list: ExecutionSummary[]): number {
	const spans = list
		.filter((e) => e.startedAt && e.stoppedAt)
		.map((e) => [Date.parse(e.startedAt!), Date.parse(e.stoppedAt!)] as const);
	return spans.filter(([a, b], i) => spans.some(([c, d], j) => j !== i && a < d && c < b)).length;
}

export function triggerUrl(processorUrl: string, webhookId: string): string {
	return `${processorUrl}/webhook/${webhookId}/inboundflow`;
}

export function signedDelivery(secret: string, deliveryId: string): Delivery {
	return buildWebhook({
		event: 'lead.created',
		data: { lead_id: deliveryId, caller_name: 'Queue Suite' },
		secret,
		deliveryId,
	});
}

/** Waits until the sink holds an item with this delivery id under `sinkPath`. */
export async function waitForDelivery(sink: Sink, sinkPath: string, deliveryId: string, timeoutMs: number): Promise<boolean> {
	const deadline = Date.now() + timeoutMs;
	while (Date.now() < deadline) {
		if (sink.received.some((r) => r.path === sinkPath && r.body.delivery_id === deliveryId)) return true;
		await sleep(100);
	}
	return false;
}

/**
 * Sends deliveries of one scenario to every target workflow at once (each its own
 * ids), waits until n8n has run every execution, and counts what reached the sink.
 */
export async function runDedupScenario(
	scenario: DedupScenario,
	options: { rest: N8nRest; processors: string[]; targets: DedupTarget[]; sink: Sink; secret: string; rounds: number },
): Promise<DedupRow[]> {
	const { processors, sink, secret, rounds } = options;
	const tag = Date.now().toString(36);
	const since = new Date(Date.now() - 1000).toISOString();
	const sent = await Promise.all(
		options.targets.map(async (target) => {
			const ids: string[] = [];
			const answers: Record<string, number> = {};
			const answerBodies: Record<string, string> = {};
			const times: number[] = [];
			const send = async (processor: number, delivery: Delivery) => {
				const started = performance.now();
				const answer = await post(triggerUrl(processors[processor % processors.length], target.webhookId), delivery);
				times.push(performance.now() - started);
				answers[answer.status] = (answers[answer.status] ?? 0) + 1;
				answerBodies[answer.status] ??= answer.body.slice(0, 120);
			};
			if (scenario === 'pairsAtOnce') {
				// Distinct deliveries at the same moment on both processors (each processor
				// saves the static data it loaded: the last writer wins), then each one again,
				// later, to the processor that did not get it.
				const pairs = Array.from({ length: rounds }, (_, round) => [0, 1].map((p) => `${scenario}-${target.setup}-${round}-${p}-${tag}`));
				for (const pair of pairs) {
					ids.push(...pair);
					await Promise.all(pair.map(async (id, p) => await send(p, signedDelivery(secret, id))));
				}
				for (const id of ids) await waitForDelivery(sink, target.sinkPath, id, 30_000);
				await sleep(1000);
				const saved = JSON.stringify((await options.rest.workflow(target.workflowId)).staticData ?? {});
				const found = ids.filter((id) => saved.includes(id)).length;
				// A trigger that saves fingerprints instead of ids cannot be read this way.
				const savedBeforeRedelivery = found > 0 || target.setup !== 'trigger' ? `${found}/${ids.length}` : `not readable (no id in ${saved.length} characters)`;
				for (const pair of pairs) {
					for (const [p, id] of pair.entries()) await send(p + 1, signedDelivery(secret, id));
				}
				return { target, ids, answers, answerBodies, answerMs: msStats(times), savedBeforeRedelivery };
			}
			for (let round = 0; round < rounds; round++) {
				const id = `${scenario}-${target.setup}-${round}-${tag}`;
				ids.push(id);
				const delivery = signedDelivery(secret, id);
				if (scenario === 'distinct') {
					await send(round, delivery);
				} else if (scenario === 'laterOther') {
					await send(round, delivery);
					// "Later": once the first copy has gone all the way through.
					await waitForDelivery(sink, target.sinkPath, id, 30_000);
					await sleep(1000);
					await send(round + 1, delivery);
				} else {
					await Promise.all(Array.from({ length: 6 }, (_, copy) => send(copy, delivery)));
				}
			}
			return { target, ids, answers, answerBodies, answerMs: msStats(times), savedBeforeRedelivery: undefined as string | undefined };
		}),
	);
	const executions = await settle(options.rest, options.targets.map((t) => t.workflowId));
	return sent.map(({ target, ids, answers, answerBodies, answerMs, savedBeforeRedelivery }) => {
		const mine = executions[target.workflowId].filter((e) => (e.createdAt ?? e.startedAt ?? '') >= since);
		return {
			setup: target.setup,
			scenario,
			answerBodies,
			answerMs,
			...countDeliveries(sink.received, target.sinkPath, ids),
			failedExecutions: mine.filter((e) => ['error', 'crashed'].includes(e.status)).length,
			parallelExecutions: `${overlapping(mine)}/${mine.length}`,
			answers,
			...(savedBeforeRedelivery ? { savedBeforeRedelivery } : {}),
		};
	});
}

export function msStats(times: number[]): { median: number; max: number } {
	const sorted = [...times].sort((a, b) => a - b);
	return { median: Math.round(sorted[Math.floor(sorted.length / 2)] ?? 0), max: Math.round(sorted.at(-1) ?? 0) };
}

/** A Markdown table of rows (keys of all rows as columns). */
export function markdownTable(rows: Array<Record<string, unknown>>): string {
	if (rows.length === 0) return '';
	const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))];
	const cell = (v: unknown) => (v === undefined ? '' : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v));
	const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
	return [line(keys), line(keys.map(() => '---')), ...rows.map((r) => line(keys.map((k) => cell(r[k]))))].join('\n');
}

/** The table rows of dedup results: emitted/expected and duplicate rate. */
export function dedupTableRows(rows: DedupRow[]): Array<Record<string, unknown>> {
	return rows.map((r) => ({
		setup: DEDUP_SETUPS[r.setup],
		scenario: DEDUP_SCENARIOS[r.scenario],
		'emitted/expected': `${r.emitted}/${r.expected}`,
		'deliveries duplicated': `${r.duplicated}/${r.expected} (${((r.duplicated / Math.max(1, r.expected)) * 100).toFixed(0)} %)`,
		missed: r.missed,
		'failed executions': r.failedExecutions,
		'HTTP answers': Object.entries(r.answers)
			.map(([status, n]) => `${n}×${status}`)
			.join(' '),
		'answer ms (median/max)': r.answerMs ? `${r.answerMs.median}/${r.answerMs.max}` : '',
		'executions in parallel': r.parallelExecutions ?? '',
		...(r.savedBeforeRedelivery ? { 'ids in saved static data before redelivery': r.savedBeforeRedelivery } : {}),
	}));
}

/** The credentials the queue suites use, created over REST: the InboundFlow API and signing secret, Redis, Postgres. */
export async function createSuiteCredentials(
	rest: N8nRest,
	services: Services,
	apiKey: string,
	baseUrl: string,
	signingSecret: string,
): Promise<{ api: string; webhook: string; redis: string; postgres: string }> {
	const pg = services.postgres;
	return {
		api: await rest.createCredential('InboundFlow account', 'inboundFlowApi', { apiKey, baseUrl }),
		webhook: await rest.createCredential('InboundFlow webhook secret', 'inboundFlowWebhookApi', { signingSecret }),
		redis: await rest.createCredential('Redis', 'redis', { host: services.redis.host, port: services.redis.port, database: 0, password: '' }),
		postgres: await rest.createCredential('Postgres', 'postgres', {
			host: pg.host,
			port: pg.port,
			database: pg.database,
			user: pg.user,
			password: pg.password,
			ssl: 'disable',
		}),
	};
}

// ---------------------------------------------------------------------------------
// Webhook load through the webhook processors (issue 21): the InboundFlow trigger and
// n8n's own Webhook node, each → one HTTP Request to the sink, fed the same signed
// deliveries, alternating processors, at a fixed number in flight.

export type LoadNode = 'ours' | 'n8n';

export const LOAD_NODES: Record<LoadNode, string> = {
	ours: 'InboundFlow Webhook Trigger → HTTP Request',
	n8n: "n8n's Webhook node → HTTP Request",
};

export interface LoadTarget {
	node: LoadNode;
	workflowId: string;
	webhookId: string;
	sinkPath: string;
}

/** Creates and activates the two load workflows; waits until every processor knows them. */
export async function createLoadTargets(
	rest: N8nRest,
	processors: string[],
	options: { signingCredentialId: string; sinkUrl: string; prefix: string },
): Promise<Record<LoadNode, LoadTarget>> {
	const targets = {} as Record<LoadNode, LoadTarget>;
	for (const node of ['ours', 'n8n'] as const) {
		const webhookId = cryptoId(`${options.prefix}-load-${node}-${Date.now()}`);
		const sinkPath = `/${options.prefix}/load/${node}`;
		const start =
			node === 'ours'
				? webhookTriggerNode('InboundFlow Webhook', webhookId, options.signingCredentialId)
				: wfNode(
						'Webhook',
						'n8n-nodes-base.webhook',
						// The same URL shape as the trigger's, so the same deliveries go to both.
						{ httpMethod: 'POST', path: `${webhookId}/inboundflow`, responseMode: 'onReceived', options: {} },
						{ typeVersion: 2, webhookId },
					);
		const forward = wfNode(
			'Forward',
			'n8n-nodes-base.httpRequest',
			{
				method: 'POST',
				url: `${options.sinkUrl}${sinkPath}`,
				sendBody: true,
				specifyBody: 'json',
				jsonBody: node === 'ours' ? '={{ JSON.stringify($json) }}' : '={{ JSON.stringify($json.body) }}',
				options: {},
			},
			{ typeVersion: 4.2 },
		);
		const workflowId = await rest.createActive(wfChain(`InboundFlow queue: load, ${LOAD_NODES[node]}`, [start, forward]));
		targets[node] = { node, workflowId, webhookId, sinkPath };
	}
	await waitRegistered(Object.values(targets).flatMap((t) => processors.map((p) => triggerUrl(p, t.webhookId))));
	return targets;
}

export interface LoadRow {
	node: string;
	concurrency: number;
	sent: number;
	'2xx': number;
	/** Deliveries that reached the sink (at least once). */
	ran: number;
	/** Answered 2xx but never reached the sink. */
	lost: number;
	/** Reached the sink more than once. */
	duplicated: number;
	/** Other answers (status×count), e.g. 5xx the sender would retry. */
	other: string;
	/** Deliveries that ran per second: first send to last arrival at the sink. */
	perSecond: number;
	/** Time to the webhook's answer, ms. */
	p50: number;
	p99: number;
}

/**
 * Sends `count` distinct signed deliveries to `target` with `concurrency` in flight,
 * alternating processors, then waits until the sink holds them all (or nothing new has
 * arrived for `quietMs`) and counts.
 */
export async function webhookLoad(
	target: LoadTarget,
	options: { processors: string[]; sink: Sink; secret: string; count: number; concurrency: number; quietMs?: number },
): Promise<LoadRow> {
	const { processors, sink, count, concurrency } = options;
	const tag = `${target.node}-${concurrency}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
	const ids = Array.from({ length: count }, (_, i) => `load-${tag}-${i}`);
	const times: number[] = [];
	const statuses: Record<string, number> = {};
	const ok = new Set<string>();
	let next = 0;
	const startedAt = Date.now();
	let sending = true;
	const arrivals = arrivalsOf(sink, target.sinkPath, ids, startedAt, options.quietMs ?? 20_000, () => sending);
	await Promise.all(
		Array.from({ length: concurrency }, async () => {
			while (next < ids.length) {
				const i = next++;
				const t0 = performance.now();
				const answer = await post(triggerUrl(processors[i % processors.length], target.webhookId), signedDelivery(options.secret, ids[i]));
				times.push(performance.now() - t0);
				statuses[answer.status] = (statuses[answer.status] ?? 0) + 1;
				if (answer.status >= 200 && answer.status < 300) ok.add(ids[i]);
			}
		}),
	);
	sending = false;
	const mine = await arrivals;
	const counts = countDeliveries(mine.received, target.sinkPath, ids);
	const ranIds = new Set(mine.received.map((r) => String(r.body.delivery_id)));
	const elapsedMs = Math.max(1, mine.lastArrivalAt - startedAt);
	const sorted = [...times].sort((a, b) => a - b);
	const pct = (p: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0);
	return {
		node: LOAD_NODES[target.node],
		concurrency,
		sent: count,
		'2xx': ok.size,
		ran: ranIds.size,
		lost: [...ok].filter((id) => !ranIds.has(id)).length,
		duplicated: counts.duplicated,
		other: Object.entries(statuses)
			.filter(([s]) => !s.startsWith('2'))
			.map(([s, n]) => `${n}×${s}`)
			.join(' '),
		perSecond: Number(((ranIds.size / elapsedMs) * 1000).toFixed(1)),
		p50: pct(0.5),
		p99: pct(0.99),
	};
}

/**
 * Watches the sink from `startedAt` until every id has arrived or, once sending is over,
 * nothing new came for `quietMs`; returns what arrived and when the last one did (100 ms resolution).
 */
async function arrivalsOf(
	sink: Sink,
	sinkPath: string,
	ids: string[],
	startedAt: number,
	quietMs: number,
	stillSending: () => boolean,
): Promise<{ received: Sink['received']; lastArrivalAt: number }> {
	const wanted = new Set(ids);
	const from = sink.received.length;
	const mine = () => sink.received.slice(from).filter((r) => r.path === sinkPath && wanted.has(String(r.body.delivery_id)));
	let count = 0;
	let lastArrivalAt = startedAt;
	let lastChange = Date.now();
	for (;;) {
		const now = mine();
		if (now.length !== count) {
			count = now.length;
			lastArrivalAt = lastChange = Date.now();
		}
		if (stillSending()) lastChange = Date.now();
		if (new Set(now.map((r) => String(r.body.delivery_id))).size >= ids.length || Date.now() - lastChange > quietMs) {
			return { received: now, lastArrivalAt };
		}
		await sleep(100);
	}
}

export interface StopFigures {
	process: string;
	/** SIGTERM to exit, ms. */
	exitMs: number;
	code: number | null;
	signal: string | null;
	/** Killed with SIGKILL after `graceMs` (did not stop by itself). */
	killed: boolean;
	/** The largest "Waiting for N active executions to finish" n8n logged while stopping. */
	activeExecutionsWaitedFor: number;
	/** n8n gave up waiting (its N8N_GRACEFUL_SHUTDOWN_TIMEOUT passed). */
	shutdownTimedOut: boolean;
	/** "Database ping failed" lines in the process's whole log (it then answers every request 503 "Database is not ready!"). */
	dbPingFailures: number;
}

/** SIGTERM, timed; what the process logged while stopping. */
export async function stopTimed(process: N8nProcess, graceMs = 60_000): Promise<StopFigures> {
	const from = process.output.length;
	const started = performance.now();
	const result = await process.terminate(graceMs);
	const log = process.output.slice(from);
	const waits = [...log.matchAll(/Waiting for (\d+) active executions to finish/g)].map((m) => Number(m[1]));
	return {
		process: process.name,
		exitMs: Math.round(performance.now() - started),
		...result,
		activeExecutionsWaitedFor: waits.length ? Math.max(...waits) : 0,
		shutdownTimedOut: /Shutdown timed out after/.test(log),
		dbPingFailures: (process.output.match(/Database ping failed/g) ?? []).length,
	};
}
