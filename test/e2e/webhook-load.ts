// A real n8n (single process, default SQLite) with two webhook workflows side by side:
// our InboundFlow Webhook Trigger and n8n's own Webhook node, each → the same HTTP
// Request node → a local sink that counts the runs. Shared by the webhook e2e test and
// `npm run bench` (bench/webhook.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

import { buildWebhook, FULL_KEY } from '../../emulator/server';
import { N8n, PACKAGE_NAME, startSink, type Sink } from './n8n';
import { credentials, WEBHOOK_CREDENTIAL_ID } from './workflows';

export const SECRET = 'whsec_load_secret_123';
const OURS = { id: 'InbFlowLoadOurs1', webhookId: '0c0d5c1e-3a4b-4c5d-8e6f-7a8b9c0d1e2f', path: 'inboundflow' };
const THEIRS = { id: 'InbFlowLoadN8nWh', webhookId: '1d2e3f40-5a6b-4c7d-8e9f-0a1b2c3d4e5f', path: 'reference' };
/** n8n's Webhook node with one expression among its parameters (bench only). */
const THEIRS_EXPR = { id: 'InbFlowLoadN8nEx', webhookId: '2e3f4051-6b7c-4d8e-9f0a-1b2c3d4e5f60', path: 'reference-expression' };
/** n8n's Webhook node checking a secret header with a Header Auth credential (bench only). */
const THEIRS_AUTH = { id: 'InbFlowLoadN8nAu', webhookId: '3f405162-7c8d-4e9f-8a1b-2c3d4e5f6071', path: 'reference-header-auth' };
const HEADER_AUTH_CREDENTIAL_ID = 'InbFlowLoadHdrAu';
/** The header n8n's node checks (THEIRS_AUTH), sent with each delivery to it. */
export const AUTH_HEADER = { name: 'x-load-auth', value: SECRET };

/**
 * ours; n8n's Webhook node with static parameters; the same with one expression parameter;
 * the same checking a secret header (it reads a credential per request, as ours does).
 */
export type Target = 'ours' | 'theirs' | 'theirsExpr' | 'theirsAuth';

function forward(sinkUrl: string, target: Target, position: number) {
	return {
		id: randomUUID(),
		name: 'Forward',
		type: 'n8n-nodes-base.httpRequest',
		typeVersion: 4.2,
		position: [position, 0],
		parameters: {
			method: 'POST',
			url: `${sinkUrl}/${target}`,
			sendBody: true,
			specifyBody: 'json',
			// Both forward the delivery's own body: ours emits it parsed, n8n's node as "body".
			jsonBody: target === 'ours' ? '={{ JSON.stringify({ delivery_id: $json.delivery_id }) }}' : '={{ JSON.stringify({ delivery_id: $json.body.delivery_id }) }}',
			options: {},
		},
	};
}

function workflows(sinkUrl: string, withExpression: boolean, withAuth: boolean): unknown[] {
	const chain = (id: string, name: string, trigger: Record<string, unknown>, target: Target) => ({
		id,
		name,
		nodes: [trigger, forward(sinkUrl, target, 220)],
		connections: { [trigger.name as string]: { main: [[{ node: 'Forward', type: 'main', index: 0 }]] } },
		settings: { executionOrder: 'v1' },
		active: false,
	});
	/** n8n's Webhook node at `spec.path`, answering on receipt, with extra parameters. */
	const n8nWebhook = (spec: { webhookId: string; path: string }, extra: Record<string, unknown>, credentials?: Record<string, unknown>) => ({
		id: randomUUID(),
		name: 'Webhook',
		type: 'n8n-nodes-base.webhook',
		typeVersion: 2,
		position: [0, 0],
		webhookId: spec.webhookId,
		parameters: { httpMethod: 'POST', path: spec.path, responseMode: 'onReceived', options: {}, ...extra },
		...(credentials ? { credentials } : {}),
	});
	return [
		chain(
			OURS.id,
			'Load: InboundFlow Webhook Trigger',
			{
				id: randomUUID(),
				name: 'InboundFlow Webhook',
				type: `${PACKAGE_NAME}.inboundFlowWebhookTrigger`,
				typeVersion: 1,
				position: [0, 0],
				webhookId: OURS.webhookId,
				parameters: { events: ['call.completed', 'lead.created'] },
				credentials: { inboundFlowWebhookApi: { id: WEBHOOK_CREDENTIAL_ID, name: 'InboundFlow webhook secret' } },
			},
			'ours',
		),
		chain(THEIRS.id, "Load: n8n's Webhook node", n8nWebhook(THEIRS, {}), 'theirs'),
		// Checks a secret header: n8n reads the Header Auth credential on every request.
		...(withAuth
			? [
					chain(
						THEIRS_AUTH.id,
						"Load: n8n's Webhook node with Header Auth",
						n8nWebhook(THEIRS_AUTH, { authentication: 'headerAuth' }, { httpHeaderAuth: { id: HEADER_AUTH_CREDENTIAL_ID, name: 'Load header auth' } }),
						'theirsAuth',
					),
				]
			: []),
		// In n8n 2.x a Webhook node whose parameters are all static skips the expression
		// isolate of the webhook phase (live-webhooks webhookPhaseNeedsIsolate); one "=" value
		// (here Ignore Bots, evaluating to its default) makes it acquire one, as every
		// community node does.
		...(withExpression
			? [
					chain(
						THEIRS_EXPR.id,
						"Load: n8n's Webhook node with an expression parameter",
						n8nWebhook(THEIRS_EXPR, { options: { ignoreBots: '={{ false }}' } }),
						'theirsExpr',
					),
				]
			: []),
	];
}

const ours = (n8n: N8n) => `${n8n.url}/webhook/${OURS.webhookId}/${OURS.path}`;
const theirs = (n8n: N8n) => `${n8n.url}/webhook/${THEIRS.path}`;
const theirsExpr = (n8n: N8n) => `${n8n.url}/webhook/${THEIRS_EXPR.path}`;
const theirsAuth = (n8n: N8n) => `${n8n.url}/webhook/${THEIRS_AUTH.path}`;

/** Waits until n8n serves a POST webhook: a GET is then refused with "Did you mean to make a POST request?". */
async function registered(url: string): Promise<void> {
	const deadline = Date.now() + 60_000;
	while (Date.now() < deadline) {
		const text = await (await fetch(url)).text();
		if (text.includes('Did you mean to make a POST request')) return;
		await new Promise((r) => setTimeout(r, 250));
	}
	throw new Error(`n8n did not register ${url} within 60 s`);
}

export interface LoadInstance {
	n8n: N8n;
	sink: Sink;
	url(target: Target): string;
	/** Runs seen by the sink, per delivery id. */
	runs(target: Target): Map<string, number>;
	stop(): Promise<void>;
}

/**
 * Starts n8n with both workflows active (and the expression variant of n8n's node,
 * `withExpression`; its Header Auth variant, `withAuth`).
 */
export async function startLoadInstance(
	bin: string,
	env: Record<string, string> = {},
	options: { withExpression?: boolean; withAuth?: boolean } = {},
): Promise<LoadInstance> {
	const withExpression = options.withExpression === true;
	const withAuth = options.withAuth === true;
	const sink = await startSink();
	const n8n = await N8n.create({ bin, env });
	try {
		const headerAuth = { id: HEADER_AUTH_CREDENTIAL_ID, name: 'Load header auth', type: 'httpHeaderAuth', data: { name: AUTH_HEADER.name, value: AUTH_HEADER.value } };
		await n8n.importCredentials([...credentials('http://127.0.0.1:9', FULL_KEY, SECRET), ...(withAuth ? [headerAuth] : [])]);
		await n8n.importWorkflows(workflows(sink.url, withExpression, withAuth));
		await n8n.start();
		await n8n.setupOwner();
		await n8n.activate(OURS.id);
		await n8n.activate(THEIRS.id);
		if (withExpression) await n8n.activate(THEIRS_EXPR.id);
		if (withAuth) await n8n.activate(THEIRS_AUTH.id);
		// n8n 2.x registers a published workflow's webhooks after answering the activation.
		for (const url of [ours(n8n), theirs(n8n), ...(withExpression ? [theirsExpr(n8n)] : []), ...(withAuth ? [theirsAuth(n8n)] : [])]) await registered(url);
	} catch (error) {
		await n8n.stop();
		await sink.close();
		throw error;
	}
	return {
		n8n,
		sink,
		url: (target) => ({ ours, theirs, theirsExpr, theirsAuth })[target](n8n),
		runs(target) {
			const counts = new Map<string, number>();
			for (const r of sink.received) {
				if (r.path !== `/${target}`) continue;
				const id = String(r.body.delivery_id);
				counts.set(id, (counts.get(id) ?? 0) + 1);
			}
			return counts;
		},
		async stop() {
			await n8n.stop();
			await sink.close();
			fs.rmSync(n8n.userFolder, { recursive: true, force: true });
		},
	};
}

export interface Delivery {
	id: string;
	body: string;
	headers: Record<string, string>;
}

/** A signed delivery with its own delivery_id. */
export function delivery(id: string = randomUUID()): Delivery {
	return { id, ...buildWebhook({ event: 'lead.created', data: { id }, secret: SECRET, deliveryId: id }) };
}

export interface Sent {
	id: string;
	status: number;
	ms: number;
}

export async function post(url: string, d: Delivery): Promise<Sent> {
	const started = performance.now();
	try {
		const response = await fetch(url, { method: 'POST', body: d.body, headers: d.headers, signal: AbortSignal.timeout(120_000) });
		await response.arrayBuffer();
		return { id: d.id, status: response.status, ms: performance.now() - started };
	} catch {
		return { id: d.id, status: 0, ms: performance.now() - started };
	}
}

/** Sends every delivery, `concurrency` at a time. */
export async function fire(url: string, deliveries: Delivery[], concurrency: number): Promise<{ sent: Sent[]; ms: number }> {
	const sent: Sent[] = [];
	let next = 0;
	const started = performance.now();
	await Promise.all(
		Array.from({ length: concurrency }, async () => {
			while (next < deliveries.length) sent.push(await post(url, deliveries[next++]));
		}),
	);
	return { sent, ms: performance.now() - started };
}

/**
 * Holds a write lock on n8n's SQLite database (BEGIN IMMEDIATE, from a child process
 * with the sqlite3 module n8n ships): n8n can read but cannot write until `release`.
 */
export async function lockDatabase(n8n: N8n): Promise<{ release(): Promise<void> }> {
	const n8nRoot = path.resolve(path.dirname(fs.realpathSync(n8n.bin)), '..');
	const sqlite3 = [path.join(n8nRoot, 'node_modules', 'sqlite3'), path.join(n8nRoot, '..', 'sqlite3')].find((p) => fs.existsSync(p));
	if (!sqlite3) throw new Error(`sqlite3 module not found near ${n8nRoot}`);
	const file = path.join(n8n.userFolder, '.n8n', 'database.sqlite');
	const script = `
		const [modulePath, file] = process.argv.slice(1);
		const db = new (require(modulePath).Database)(file);
		db.configure('busyTimeout', 30000);
		db.exec('BEGIN IMMEDIATE', (error) => {
			if (error) { console.error(String(error)); process.exit(2); }
			process.stdout.write('locked\\n');
		});
		process.stdin.on('end', () => db.exec('ROLLBACK', () => db.close(() => process.exit(0))));
		process.stdin.resume();`;
	const child: ChildProcess = spawn(process.execPath, ['-e', script, sqlite3, file], { stdio: ['pipe', 'pipe', 'inherit'] });
	await new Promise<void>((resolve, reject) => {
		child.stdout!.once('data', () => resolve());
		child.once('exit', (code) => reject(new Error(`the lock holder exited (${code})`)));
	});
	return {
		async release() {
			const exited = new Promise((r) => child.once('exit', r));
			child.stdin!.end();
			await exited;
		},
	};
}

export function percentile(values: number[], p: number): number {
	if (values.length === 0) return NaN;
	const sorted = [...values].sort((a, b) => a - b);
	return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
