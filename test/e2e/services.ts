// PostgreSQL and Redis for n8n's queue mode: the Debian packages (installed with
// apt-get when missing), each started on loopback on a free port with its data in a
// temporary directory, and stopped (directory removed) afterwards. No containers.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { freePort } from './n8n';

export interface PostgresInfo {
	host: string;
	port: number;
	database: string;
	user: string;
	password: string;
}

export interface RedisInfo {
	host: string;
	port: number;
}

const say = (text: string) => process.stdout.write(`[services] ${text}\n`);

/** The newest installed PostgreSQL server's bin directory, if any. */
export function postgresBinDir(): string | undefined {
	const root = '/usr/lib/postgresql';
	if (!fs.existsSync(root)) return undefined;
	const versions = fs
		.readdirSync(root)
		.filter((v) => fs.existsSync(path.join(root, v, 'bin', 'initdb')) && fs.existsSync(path.join(root, v, 'bin', 'postgres')))
		.sort((a, b) => Number(b) - Number(a));
	return versions.length ? path.join(root, versions[0], 'bin') : undefined;
}

function redisServerBin(): string | undefined {
	for (const candidate of ['/usr/bin/redis-server', '/usr/local/bin/redis-server']) {
		if (fs.existsSync(candidate)) return candidate;
	}
	return undefined;
}

/**
 * Installs Debian packages with apt-get (`apt-get update` first), as root; waits for
 * another process's dpkg lock. Used when a suite's program is missing on the machine.
 */
export function aptInstall(packages: string[]): void {
	if (process.getuid?.() !== 0) {
		throw new Error(`${packages.join(' and ')} missing; install as root: apt-get install -y ${packages.join(' ')}`);
	}
	say(`installing ${packages.join(', ')} (apt-get)…`);
	const apt = (args: string[]) => {
		const result = spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=300', ...args], {
			env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
			encoding: 'utf8',
			timeout: 600_000,
		});
		if (result.status !== 0) {
			throw new Error(`apt-get ${args.join(' ')} failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
		}
	};
	apt(['update']);
	apt(['install', '-y', '--no-install-recommends', ...packages]);
}

/**
 * Installs the Debian packages `postgresql` and `redis-server` when their binaries are
 * missing. Returns at once when both are there.
 */
export function ensureInstalled(): { postgresBin: string; redisBin: string; installedMs: number } {
	const started = Date.now();
	const missing: string[] = [];
	if (!postgresBinDir()) missing.push('postgresql');
	if (!redisServerBin()) missing.push('redis-server');
	if (missing.length) aptInstall(missing);
	const postgresBin = postgresBinDir();
	const redisBin = redisServerBin();
	if (!postgresBin || !redisBin) throw new Error('postgresql or redis-server still missing after apt-get install');
	return { postgresBin, redisBin, installedMs: Date.now() - started };
}

/** Every child started here, killed if the test process exits without stopping them. */
const children = new Set<ChildProcess>();
process.on('exit', () => {
	for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});

function track(child: ChildProcess): ChildProcess {
	children.add(child);
	child.on('exit', () => children.delete(child));
	return child;
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
	if (child.exitCode !== null || child.signalCode !== null) return;
	await new Promise<void>((resolve) => {
		const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
		child.once('exit', () => {
			clearTimeout(timer);
			resolve();
		});
		child.kill(signal);
	});
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, output: () => string): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (Date.now() < deadline) {
		if (await check()) return;
		await new Promise((r) => setTimeout(r, 200));
	}
	throw new Error(`${what} not ready in ${timeoutMs} ms:\n${output()}`);
}

/** PING over Redis's protocol, without a client library. */
export async function redisCommand(port: number, ...args: string[]): Promise<string> {
	return await new Promise((resolve, reject) => {
		const socket = net.connect(port, '127.0.0.1');
		let reply = '';
		socket.setTimeout(2000, () => socket.destroy(new Error('redis timeout')));
		socket.on('connect', () => {
			socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
		});
		socket.on('data', (d: Buffer) => {
			reply += d.toString();
			if (reply.endsWith('\r\n')) {
				socket.end();
				resolve(reply.trim());
			}
		});
		socket.on('error', reject);
	});
}

export class Services {
	private pgProcess?: ChildProcess;
	private redisProcess?: ChildProcess;
	pgLog = '';
	redisLog = '';
	readonly postgres: PostgresInfo;
	readonly redis: RedisInfo;
	/** Milliseconds spent installing (0 when already installed) and starting. */
	timings = { installMs: 0, startMs: 0 };

	private constructor(
		readonly dir: string,
		private readonly bins: { postgresBin: string; redisBin: string },
		pgPort: number,
		redisPort: number,
	) {
		this.postgres = { host: '127.0.0.1', port: pgPort, database: 'n8n', user: 'n8n', password: 'n8n_local_pw' };
		this.redis = { host: '127.0.0.1', port: redisPort };
	}

	/** Installs when missing, then starts Postgres and Redis on free loopback ports. */
	static async start(): Promise<Services> {
		const bins = ensureInstalled();
		const started = Date.now();
		const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inboundflow-services-'));
		const services = new Services(dir, bins, await freePort(), await freePort());
		services.timings.installMs = bins.installedMs;
		try {
			await Promise.all([services.startPostgres(), services.startRedis()]);
		} catch (error) {
			await services.stop();
			throw error;
		}
		services.timings.startMs = Date.now() - started;
		return services;
	}

	/** initdb and postgres refuse to run as root: as root they run as the `postgres` user. */
	private asUser(): { uid?: number; gid?: number } {
		if (process.getuid?.() !== 0) return {};
		const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
		const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
		return { uid, gid };
	}

	private async startPostgres(): Promise<void> {
		const user = this.asUser();
		const pgDir = path.join(this.dir, 'pg');
		fs.mkdirSync(pgDir, { recursive: true });
		if (user.uid !== undefined) {
			fs.chmodSync(this.dir, 0o755);
			fs.chownSync(pgDir, user.uid, user.gid!);
		}
		const data = path.join(pgDir, 'data');
		const init = spawnSync(
			path.join(this.bins.postgresBin, 'initdb'),
			['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C'],
			{ ...user, encoding: 'utf8', cwd: pgDir, timeout: 120_000 },
		);
		if (init.status !== 0) throw new Error(`initdb failed:\n${init.stdout}\n${init.stderr}`);
		const { port } = this.postgres;
		// Throwaway data: durability off makes n8n's migrations and writes fast.
		const child = spawn(
			path.join(this.bins.postgresBin, 'postgres'),
			[
				'-D', data, '-p', String(port), '-k', pgDir,
				'-c', 'listen_addresses=127.0.0.1',
				'-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
				'-c', 'max_connections=200',
			],
			{ ...user, cwd: pgDir, stdio: ['ignore', 'pipe', 'pipe'] },
		);
		this.pgProcess = track(child);
		child.stdout?.on('data', (d: Buffer) => (this.pgLog += d.toString()));
		child.stderr?.on('data', (d: Buffer) => (this.pgLog += d.toString()));
		await waitFor(
			'PostgreSQL',
			async () => {
				if (child.exitCode !== null) throw new Error(`postgres exited:\n${this.pgLog}`);
				return this.psqlRaw('postgres', 'SELECT 1').status === 0;
			},
			60_000,
			() => this.pgLog,
		);
		const { user: dbUser, password, database } = this.postgres;
		this.psqlAsAdmin(`CREATE USER ${dbUser} WITH PASSWORD '${password}'`);
		this.psqlAsAdmin(`CREATE DATABASE ${database} OWNER ${dbUser}`);
	}

	private psqlRaw(database: string, sql: string, asUser = 'postgres') {
		return spawnSync(
			path.join(this.bins.postgresBin, 'psql'),
			['-h', '127.0.0.1', '-p', String(this.postgres.port), '-U', asUser, '-d', database, '-v', 'ON_ERROR_STOP=1', '-At', '-c', sql],
			{ encoding: 'utf8', timeout: 30_000, env: { ...process.env, PGPASSWORD: this.postgres.password, PGCONNECT_TIMEOUT: '5' } },
		);
	}

	private psqlAsAdmin(sql: string): string {
		const result = this.psqlRaw('postgres', sql);
		if (result.status !== 0) throw new Error(`psql failed: ${sql}\n${result.stderr}`);
		return result.stdout;
	}

	/** Runs SQL in n8n's database as n8n's user; rows as `|`-separated lines. */
	psql(sql: string): string {
		const result = this.psqlRaw(this.postgres.database, sql, this.postgres.user);
		if (result.status !== 0) throw new Error(`psql failed: ${sql}\n${result.stderr}`);
		return result.stdout.trim();
	}

	private async startRedis(): Promise<void> {
		const { port } = this.redis;
		const redisDir = path.join(this.dir, 'redis');
		fs.mkdirSync(redisDir);
		const child = spawn(
			this.bins.redisBin,
			['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', redisDir, '--daemonize', 'no'],
			{ cwd: redisDir, stdio: ['ignore', 'pipe', 'pipe'] },
		);
		this.redisProcess = track(child);
		child.stdout?.on('data', (d: Buffer) => (this.redisLog += d.toString()));
		child.stderr?.on('data', (d: Buffer) => (this.redisLog += d.toString()));
		await waitFor(
			'Redis',
			async () => {
				if (child.exitCode !== null) throw new Error(`redis-server exited:\n${this.redisLog}`);
				try {
					return (await redisCommand(port, 'PING')) === '+PONG';
				} catch {
					return false;
				}
			},
			30_000,
			() => this.redisLog,
		);
	}

	/** n8n's settings for this Postgres and Redis. */
	n8nEnv(): Record<string, string> {
		const pg = this.postgres;
		return {
			DB_TYPE: 'postgresdb',
			DB_POSTGRESDB_HOST: pg.host,
			DB_POSTGRESDB_PORT: String(pg.port),
			DB_POSTGRESDB_DATABASE: pg.database,
			DB_POSTGRESDB_USER: pg.user,
			DB_POSTGRESDB_PASSWORD: pg.password,
			QUEUE_BULL_REDIS_HOST: this.redis.host,
			QUEUE_BULL_REDIS_PORT: String(this.redis.port),
		};
	}

	/** Stops both (fast shutdown) and removes the temporary directory. Idempotent. */
	async stop(): Promise<void> {
		await Promise.all([
			this.pgProcess ? stopChild(this.pgProcess, 'SIGINT', 15_000) : undefined,
			this.redisProcess ? stopChild(this.redisProcess, 'SIGTERM', 10_000) : undefined,
		]);
		fs.rmSync(this.dir, { recursive: true, force: true });
	}
}
