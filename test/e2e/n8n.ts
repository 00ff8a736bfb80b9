// A real n8n (a version installed by scripts/lib/env.mjs) with this package installed
// as a user would: linked into <user folder>/.n8n/nodes/node_modules and listed in that
// folder's package.json. Used by the end-to-end suite and `npm start`. Knows where n8n
// 1.x and 2.x differ (activating a workflow, the login body).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const PACKAGE_ROOT = path.resolve(__dirname, '..', '..', ...(__dirname.includes(`${path.sep}build${path.sep}`) ? ['..'] : []));
export const PACKAGE_NAME = 'n8n-nodes-inboundflow';

export function n8nBin(): string {
	const bin = process.env.INBOUNDFLOW_N8N_BIN;
	if (!bin || !fs.existsSync(bin)) {
		throw new Error('INBOUNDFLOW_N8N_BIN is not set: run the suite with `npm test`, which installs the pinned n8n');
	}
	return bin;
}

/** The version of the n8n an `n8n` binary (node_modules/.bin/n8n) belongs to. */
export function n8nVersionOf(bin: string): string {
	const packageJson = path.join(path.dirname(path.dirname(fs.realpathSync(bin))), 'package.json');
	return (JSON.parse(fs.readFileSync(packageJson, 'utf8')) as { version: string }).version;
}

/**
 * The n8n installs the end-to-end suite runs against, in order: INBOUNDFLOW_N8N_BINS
 * (binaries separated by the path delimiter, set by `npm test`), else INBOUNDFLOW_N8N_BIN.
 */
export function n8nInstalls(): Array<{ bin: string; version: string; node: string }> {
	const list = process.env.INBOUNDFLOW_N8N_BINS?.split(path.delimiter).filter(Boolean) ?? [n8nBin()];
	// n8n starts with `#!/usr/bin/env node`: the first Node on the PATH runs it.
	const node = spawnSync('node', ['-v'], { encoding: 'utf8' }).stdout?.trim().replace(/^v/, '') || 'unknown';
	return list.map((bin) => {
		if (!fs.existsSync(bin)) throw new Error(`no n8n binary at ${bin} (INBOUNDFLOW_N8N_BINS)`);
		return { bin, version: n8nVersionOf(bin), node };
	});
}

/** The owner account the suite creates in a fresh instance. */
export const OWNER = {
	email: 'owner@inboundflow.test',
	firstName: 'Test',
	lastName: 'Owner',
	password: 'Inboundflow-e2e-1',
};

export interface CliResult {
	code: number;
	stdout: string;
	stderr: string;
}

export class N8n {
	private server?: ChildProcess;
	private cookie = '';
	private logFile?: string;
	private outputFiles = 0;
	/** n8n's version, e.g. "2.41.1". */
	readonly version: string;

	/** The running server's process id (undefined when stopped). */
	get pid(): number | undefined {
		return this.server?.exitCode === null && this.server.signalCode === null ? this.server.pid : undefined;
	}

	private constructor(
		readonly userFolder: string,
		readonly bin: string,
		readonly port: number,
		/** n8n 2.x opens its task-broker port even with runners off: one per process. */
		readonly brokerPort: number,
	) {
		this.version = n8nVersionOf(bin);
	}

	get major(): number {
		return Number(this.version.split('.')[0]);
	}

	/**
	 * A user folder with the package installed as n8n installs a community package: the
	 * published files (dist/ and package.json without dev and peer dependencies) in
	 * <user folder>/.n8n/nodes/node_modules, listed in that folder's package.json. A copy,
	 * not a link to the repository, so that `require('n8n-workflow')` in our code resolves
	 * to the running n8n's own copy (through the NODE_PATH n8n sets), as for a user, and
	 * not to the repository's dev dependency.
	 */
	static async create(
		options: { port?: number; userFolder?: string; bin?: string; env?: Record<string, string> } = {},
	): Promise<N8n> {
		const userFolder = options.userFolder ?? fs.mkdtempSync(path.join(os.tmpdir(), 'inboundflow-n8n-'));
		const nodesDir = path.join(userFolder, '.n8n', 'nodes');
		fs.mkdirSync(path.join(nodesDir, 'node_modules'), { recursive: true });
		const manifest = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as Record<
			string,
			unknown
		> & { version: string };
		fs.writeFileSync(
			path.join(nodesDir, 'package.json'),
			JSON.stringify(
				{ name: 'installed-nodes', private: true, dependencies: { [PACKAGE_NAME]: manifest.version } },
				null,
				2,
			),
		);
		const target = path.join(nodesDir, 'node_modules', PACKAGE_NAME);
		fs.rmSync(target, { force: true, recursive: true });
		fs.mkdirSync(target);
		fs.cpSync(path.join(PACKAGE_ROOT, 'dist'), path.join(target, 'dist'), { recursive: true });
		for (const key of ['devDependencies', 'peerDependencies', 'scripts']) delete manifest[key];
		fs.writeFileSync(path.join(target, 'package.json'), JSON.stringify(manifest, null, 2));
		const n8n = new N8n(userFolder, options.bin ?? n8nBin(), options.port ?? (await freePort()), await freePort());
		Object.assign(n8n.extraEnv, options.env);
		return n8n;
	}

	/** Settings added to every process of this instance (e.g. n8n's scheduler switches). */
	readonly extraEnv: Record<string, string> = {};

	env(): NodeJS.ProcessEnv {
		// Jest's NODE_ENV=test would put n8n in its own test mode (silent logger, …).
		const inherited = Object.fromEntries(
			Object.entries(process.env).filter(([key]) => key !== 'NODE_ENV' && !key.startsWith('JEST')),
		);
		return {
			...inherited,
			N8N_USER_FOLDER: this.userFolder,
			N8N_DIAGNOSTICS_ENABLED: 'false',
			N8N_VERSION_NOTIFICATIONS_ENABLED: 'false',
			N8N_TEMPLATES_ENABLED: 'false',
			N8N_PERSONALIZATION_ENABLED: 'false',
			N8N_ENCRYPTION_KEY: 'inboundflow-local-e2e-key',
			N8N_PORT: String(this.port),
			N8N_LISTEN_ADDRESS: '127.0.0.1',
			N8N_HOST: '127.0.0.1',
			WEBHOOK_URL: `http://127.0.0.1:${this.port}/`,
			N8N_SECURE_COOKIE: 'false',
			// `n8n execute` prints its JSON through the logger: info is needed to see it.
			N8N_LOG_LEVEL: process.env.N8N_LOG_LEVEL ?? 'info',
			// The emulator and the demo sinks listen on loopback.
			N8N_SSRF_PROTECTION_ENABLED: 'false',
			N8N_RUNNERS_ENABLED: 'false',
			N8N_RUNNERS_BROKER_PORT: String(this.brokerPort),
			DB_SQLITE_POOL_SIZE: '2',
			GENERIC_TIMEZONE: 'UTC',
			...this.extraEnv,
		};
	}

	/**
	 * A new file in the user folder for a process's output. n8n writes to files, not
	 * pipes: when the reader of its pipe is gone (jest stopped by a signal), n8n spins
	 * at 100% CPU instead of shutting down.
	 */
	private outputFile(name: string): { file: string; fd: number } {
		const file = path.join(this.userFolder, `${name}-${++this.outputFiles}.log`);
		return { file, fd: fs.openSync(file, 'w') };
	}

	async cli(args: string[], timeoutMs = 180_000): Promise<CliResult> {
		const out = this.outputFile('cli-stdout');
		const err = this.outputFile('cli-stderr');
		const child = spawn(this.bin, args, { env: this.env(), stdio: ['ignore', out.fd, err.fd] });
		fs.closeSync(out.fd);
		fs.closeSync(err.fd);
		const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
		const code = await new Promise<number>((resolve) => {
			child.on('error', () => resolve(-1));
			child.on('close', (status) => resolve(status ?? -1));
		});
		clearTimeout(timer);
		const read = (file: string) => {
			const text = fs.readFileSync(file, 'utf8');
			fs.rmSync(file, { force: true });
			return text;
		};
		return { code, stdout: read(out.file), stderr: read(err.file) };
	}

	private async importFile(kind: 'credentials' | 'workflow', data: unknown): Promise<void> {
		// Credentials hold the API key and the signing secret in plain text here: readable by
		// the owner only, and gone as soon as n8n has them in its encrypted store.
		const file = path.join(this.userFolder, `import-${kind}-${Date.now()}.json`);
		fs.writeFileSync(file, JSON.stringify(data, null, 2), { mode: 0o600 });
		try {
			const result = await this.cli([`import:${kind}`, `--input=${file}`]);
			if (result.code !== 0) throw new Error(`n8n import:${kind} failed: ${result.stdout}\n${result.stderr}`);
		} finally {
			fs.rmSync(file, { force: true });
		}
	}

	async importCredentials(list: unknown[]): Promise<void> {
		await this.importFile('credentials', list);
	}

	async importWorkflows(list: unknown[]): Promise<void> {
		await this.importFile('workflow', list);
	}

	/** The CLI arguments of `publish`, for callers that run n8n commands themselves. */
	activationArgs(id: string): string[] {
		return this.major >= 2 ? ['publish:workflow', `--id=${id}`] : ['update:workflow', `--id=${id}`, '--active=true'];
	}

	/**
	 * Makes an imported workflow active from the next `start` (the instance must not be
	 * running): `publish:workflow` on n8n 2.x, `update:workflow --active=true` on 1.x,
	 * which has no publishing.
	 */
	async publish(id: string): Promise<void> {
		const args = this.activationArgs(id);
		const result = await this.cli(args);
		// Both exit 0 when the database update failed; they say so.
		if (result.code !== 0 || /Error updating database/.test(result.stdout + result.stderr)) {
			throw new Error(`n8n ${args[0]} failed: ${result.stdout}\n${result.stderr}`);
		}
	}

	/** `n8n execute --id … --rawOutput`: the run's JSON (after n8n's log lines), or the failure output. */
	async execute(id: string): Promise<{ code: number; run?: ExecutionRun; stdout: string; stderr: string }> {
		const result = await this.cli(['execute', `--id=${id}`, '--rawOutput']);
		// n8n 2.x exits 0 after a failed execution; it says so in its output.
		const failed = result.code !== 0 || /Execution was NOT successful/.test(result.stdout + result.stderr);
		const run = failed ? undefined : rawOutputJson<ExecutionRun>(result.stdout);
		return { ...result, code: failed ? Math.max(1, result.code) : 0, run };
	}

	/**
	 * `n8n start`, resolved once the instance answers its health check and has said that
	 * the editor is accessible: n8n 1.x answers the health check before its REST routes
	 * exist.
	 */
	async start(timeoutMs = 180_000): Promise<void> {
		const log = this.outputFile('n8n-start');
		this.logFile = log.file;
		this.server = spawn(this.bin, ['start'], { env: this.env(), stdio: ['ignore', log.fd, log.fd] });
		fs.closeSync(log.fd);
		const deadline = Date.now() + timeoutMs;
		while (Date.now() < deadline) {
			if (this.server.exitCode !== null) throw new Error(`n8n exited early:\n${this.output}`);
			try {
				const response = await fetch(`${this.url}/healthz/readiness`);
				if (response.ok && this.output.includes('Editor is now accessible via')) return;
			} catch {
				// not listening yet
			}
			await new Promise((r) => setTimeout(r, 500));
		}
		throw new Error(`n8n did not become ready in ${timeoutMs} ms:\n${this.output}`);
	}

	/** What the running instance (`start`) has printed so far. */
	get output(): string {
		try {
			return this.logFile ? fs.readFileSync(this.logFile, 'utf8') : '';
		} catch {
			return '';
		}
	}

	get url(): string {
		return `http://127.0.0.1:${this.port}`;
	}

	/** Everything every n8n process of this instance printed (its log files in the user folder). */
	allOutput(): string {
		return fs
			.readdirSync(this.userFolder)
			.filter((f) => f.endsWith('.log'))
			.map((f) => fs.readFileSync(path.join(this.userFolder, f), 'utf8'))
			.join('\n');
	}

	/**
	 * A read-only query of n8n's own SQLite database, with the sqlite3 module n8n ships, in
	 * a child process (one process loading two n8n versions' native sqlite3 fails).
	 */
	async sqlite<T = Record<string, unknown>>(sql: string): Promise<T[]> {
		// <install>/node_modules/.bin/n8n → <install>/node_modules/n8n/bin/n8n
		const n8nRoot = path.resolve(path.dirname(fs.realpathSync(this.bin)), '..');
		const modulePath = [path.join(n8nRoot, 'node_modules', 'sqlite3'), path.join(n8nRoot, '..', 'sqlite3')].find((p) =>
			fs.existsSync(p),
		);
		if (!modulePath) throw new Error(`sqlite3 module not found near ${n8nRoot}`);
		const file = path.join(this.userFolder, '.n8n', 'database.sqlite');
		const script = `
			const [modulePath, file, sql] = process.argv.slice(1);
			const sqlite3 = require(modulePath);
			const db = new sqlite3.Database(file, sqlite3.OPEN_READONLY, (error) => { if (error) { console.error(String(error)); process.exit(2); } });
			db.all(sql, (error, rows) => { db.close(); if (error) { console.error(String(error)); process.exit(3); } process.stdout.write(JSON.stringify(rows)); });`;
		const result = spawnSync(process.execPath, ['-e', script, modulePath, file, sql], { encoding: 'utf8', maxBuffer: 512 * 1024 * 1024 });
		if (result.status !== 0) throw new Error(`reading ${file} failed: ${result.stderr.trim()}`);
		return JSON.parse(result.stdout) as T[];
	}

	/**
	 * A request to the running instance's REST API (`/rest/…`) or another of its paths,
	 * with the session cookie of `setupOwner`. Resolves with the status and the body's
	 * `data` (n8n wraps REST answers in `{ data }`), or the whole body where there is none.
	 */
	async request<T = unknown>(method: string, pathname: string, body?: unknown): Promise<{ status: number; data: T }> {
		const response = await fetch(`${this.url}${pathname}`, {
			method,
			headers: {
				'content-type': 'application/json',
				'browser-id': 'inboundflow-e2e',
				...(this.cookie ? { cookie: this.cookie } : {}),
			},
			body: body === undefined ? undefined : JSON.stringify(body),
		});
		const setCookie = response.headers.getSetCookie().find((c) => c.startsWith('n8n-auth='));
		if (setCookie) this.cookie = setCookie.split(';')[0];
		const text = await response.text();
		let parsed: unknown = text;
		try {
			parsed = JSON.parse(text) as unknown;
		} catch {
			// not JSON
		}
		const data =
			parsed && typeof parsed === 'object' && 'data' in parsed ? (parsed as { data: unknown }).data : parsed;
		return { status: response.status, data: data as T };
	}

	private async mustRequest<T>(method: string, pathname: string, body?: unknown): Promise<T> {
		const { status, data } = await this.request<T>(method, pathname, body);
		if (status >= 300) throw new Error(`n8n ${method} ${pathname}: HTTP ${status} ${JSON.stringify(data)}`);
		return data;
	}

	/**
	 * Creates the owner account of a fresh instance, then logs in as the owner, as a user
	 * does on the first visit (same endpoints and bodies on n8n 1.123 and 2.x).
	 */
	async setupOwner(): Promise<void> {
		await this.mustRequest('POST', '/rest/owner/setup', OWNER);
		this.cookie = '';
		await this.mustRequest('POST', '/rest/login', {
			emailOrLdapLoginId: OWNER.email,
			password: OWNER.password,
		});
	}

	/** The editor's credential test (Save or Retry in a credential's dialog). */
	async testCredential(credential: {
		id: string;
		name: string;
		type: string;
		data: Record<string, unknown>;
	}): Promise<{ status: string; message: string }> {
		return await this.mustRequest('POST', '/rest/credentials/test', { credentials: credential });
	}

	/** The node types the editor offers (its node list), as served to the editor. */
	async nodeTypes(): Promise<Array<{ name: string; displayName: string; version: number | number[] }>> {
		return await this.mustRequest('GET', '/types/nodes.json');
	}

	/** A workflow as the editor loads it. */
	async workflow(id: string): Promise<{ id: string; name: string; active: boolean; versionId: string }> {
		return await this.mustRequest('GET', `/rest/workflows/${id}`);
	}

	/**
	 * Activates a workflow in the running instance as the editor's toggle (1.x) or
	 * Publish button (2.x) does: `POST /rest/workflows/:id/activate` with its current
	 * version, on both lines.
	 */
	async activate(id: string): Promise<void> {
		const { versionId } = await this.workflow(id);
		await this.mustRequest('POST', `/rest/workflows/${id}/activate`, { versionId });
	}

	async stop(): Promise<void> {
		const server = this.server;
		if (!server || server.exitCode !== null) return;
		await new Promise<void>((resolve) => {
			const timer = setTimeout(() => server.kill('SIGKILL'), 15_000);
			server.on('close', () => {
				clearTimeout(timer);
				resolve();
			});
			server.kill('SIGTERM');
		});
	}
}

/**
 * The JSON document `--rawOutput` prints: from a line starting with `{` to a line
 * starting with `}`, with n8n's log lines possibly before and after it.
 */
function rawOutputJson<T>(stdout: string): T | undefined {
	const start = stdout.search(/^\{/m);
	if (start < 0) return undefined;
	for (const end of stdout.slice(start).matchAll(/^\}/gm)) {
		try {
			return JSON.parse(stdout.slice(start, start + end.index + 1)) as T;
		} catch {
			// a nested closing brace at the start of a line: try the next one
		}
	}
	throw new Error(`no JSON document in the output of n8n execute:\n${stdout.slice(-2000)}`);
}

export interface NodeRun {
	data?: { main: Array<Array<{ json: Record<string, unknown> }> | null> };
	error?: { message: string; description?: string };
}

export interface ExecutionRun {
	data: { resultData: { runData: Record<string, NodeRun[]>; error?: { message: string } } };
}

/** Outputs of a node in an execution's run data. */
export function outputOf(run: ExecutionRun, node: string): Array<Record<string, unknown>> {
	const runs = run.data.resultData.runData[node];
	if (!runs) throw new Error(`node "${node}" did not run`);
	return (runs[0].data?.main[0] ?? []).map((item) => item.json);
}

export async function freePort(): Promise<number> {
	const server = http.createServer();
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	const { port } = server.address() as AddressInfo;
	await new Promise<void>((resolve) => server.close(() => resolve()));
	return port;
}

export interface Sink {
	url: string;
	received: Array<{ path: string; body: Record<string, unknown> }>;
	waitFor(count: number, timeoutMs: number): Promise<void>;
	close(): Promise<void>;
}

/** A local HTTP endpoint standing in for a CRM or Slack: it records every POST. */
export async function startSink(port = 0): Promise<Sink> {
	const received: Sink['received'] = [];
	const server = http.createServer((req, res) => {
		const chunks: Buffer[] = [];
		req.on('data', (c: Buffer) => chunks.push(c));
		req.on('end', () => {
			let body: Record<string, unknown> = {};
			try {
				body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
			} catch {
				body = { raw: Buffer.concat(chunks).toString('utf8') };
			}
			received.push({ path: req.url ?? '/', body });
			res.writeHead(200, { 'content-type': 'application/json' });
			res.end('{"ok":true}');
		});
	});
	await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
	const address = server.address() as AddressInfo;
	return {
		url: `http://127.0.0.1:${address.port}`,
		received,
		async waitFor(count, timeoutMs) {
			const deadline = Date.now() + timeoutMs;
			while (received.length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
		},
		close: async () => {
			server.closeAllConnections();
			await new Promise<void>((resolve) => server.close(() => resolve()));
		},
	};
}
