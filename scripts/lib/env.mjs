// Bootstrap helpers: bring Node 24 where the machine has an older one, install the
// project's dependencies, and install the n8n versions the end-to-end suite runs into a
// cache folder outside the package. Uses Node built-ins only, because it runs before
// anything is installed.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CACHE_DIR =
	process.env.INBOUNDFLOW_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'n8n-nodes-inboundflow');

/** Node release brought by the project when the machine's is older than 24. */
export const NODE_PACKAGE = 'node@24.21.0';

/**
 * The n8n versions the end-to-end suite runs, newest first: the newest 2.x that
 * installs from the registry here (2.41.3 pulls a dependency the registry does not
 * serve) and the newest of the 1.123 line, the last 1.x.
 */
export const TESTED_N8N_VERSIONS = ['2.41.1', '1.123.81'];

/**
 * The n8n versions a run uses: `INBOUNDFLOW_N8N_VERSION` (one version, or several
 * separated by commas), else every tested version. `npm start` and the benchmark use
 * the first.
 */
export function n8nVersions() {
	const wanted = (process.env.INBOUNDFLOW_N8N_VERSION ?? '')
		.split(',')
		.map((v) => v.trim())
		.filter(Boolean);
	return wanted.length > 0 ? wanted : TESTED_N8N_VERSIONS;
}

/** The default n8n: the first of `n8nVersions()`. */
export const N8N_VERSION = n8nVersions()[0];

/**
 * npm `overrides` an n8n version needs to install. n8n 1.x depends on xlsx through a
 * tarball URL on cdn.sheetjs.com; the registry's 0.18.5 stands in for it.
 */
export function n8nOverrides(version) {
	return Number(version.split('.')[0]) < 2 ? { xlsx: '0.18.5' } : {};
}

export function log(message) {
	process.stderr.write(`[inboundflow ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'];
const GROUPS = process.platform !== 'win32';

function groupAlive(pid) {
	try {
		process.kill(-pid, 0);
		return true;
	} catch {
		return false;
	}
}

function signalTree(child, signal) {
	try {
		if (GROUPS) process.kill(-child.pid, signal);
		else child.kill(signal);
	} catch {
		// already gone
	}
}

/**
 * Runs a command to its end. The child gets its own process group; a stop signal this
 * process receives (SIGINT, SIGTERM, SIGHUP: Ctrl-C, a process manager, an IDE, a closed
 * terminal) goes to that whole group, so grandchildren (n8n, its task runner, the
 * emulator, jest workers) get it too. Under npm, and in the Node 24 re-launch, losing
 * the parent process counts as SIGTERM: npm runs a script through `sh -c`, and Debian's
 * sh dies of the SIGTERM npm forwards without passing it on. When the child has ended,
 * whatever it left in its group gets SIGTERM, and SIGKILL 10 s later. Resolves with the
 * child's exit code (128 + the signal's number for a child ended by a signal); after a
 * stop signal, this process exits with that code instead.
 */
export async function run(cmd, args, options = {}) {
	const { stdio = 'inherit', onChild, ...rest } = options;
	const child = spawn(cmd, args, { stdio, cwd: ROOT, ...rest, detached: GROUPS });
	onChild?.(child);
	let stopSignal;
	const forward = (signal) => {
		stopSignal ??= signal;
		signalTree(child, signal);
	};
	for (const signal of STOP_SIGNALS) process.on(signal, forward);
	const parent = process.ppid;
	const watchParent = Boolean(process.env.npm_lifecycle_event || process.env.INBOUNDFLOW_RELAUNCHED);
	const orphaned = setInterval(() => {
		if (watchParent && process.ppid !== parent) forward('SIGTERM');
	}, 500);
	const code = await new Promise((resolve, reject) => {
		child.once('error', reject);
		child.once('exit', (status, signal) =>
			resolve(status ?? 128 + (os.constants.signals[signal ?? 'SIGTERM'] ?? 15)),
		);
	}).finally(() => {
		clearInterval(orphaned);
		for (const signal of STOP_SIGNALS) process.off(signal, forward);
	});
	if (GROUPS && groupAlive(child.pid)) {
		signalTree(child, 'SIGTERM');
		const deadline = Date.now() + 10_000;
		while (groupAlive(child.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
		if (groupAlive(child.pid)) signalTree(child, 'SIGKILL');
	}
	// Stopped: end here, with the child's code (0 when it stopped cleanly), instead of
	// going on with the task's next step.
	if (stopSignal) process.exit(code);
	return code;
}

export async function mustRun(cmd, args, options = {}) {
	const status = await run(cmd, args, options);
	if (status !== 0) {
		log(`\`${cmd} ${args.join(' ')}\` failed with exit code ${status}`);
		process.exit(status);
	}
}

/** Runs a long command, printing a progress line every 20 s so a user knows it works. */
export async function runWithProgress(label, cmd, args, options = {}) {
	const started = Date.now();
	const { logFile: logPath, ...rest } = options;
	const logFile = logPath ? fs.createWriteStream(logPath) : null;
	const timer = setInterval(() => {
		log(`${label}: still working (${Math.round((Date.now() - started) / 1000)} s)…`);
	}, 20_000);
	const code = await run(cmd, args, {
		...rest,
		stdio: ['ignore', 'pipe', 'pipe'],
		onChild: (child) => {
			child.stdout.on('data', (d) => logFile?.write(d));
			child.stderr.on('data', (d) => logFile?.write(d));
		},
	}).finally(() => clearInterval(timer));
	await new Promise((resolve) => (logFile ? logFile.end(resolve) : resolve()));
	log(`${label}: ${code === 0 ? 'done' : `failed (exit ${code})`} in ${Math.round((Date.now() - started) / 1000)} s`);
	return code;
}

function nodeMajor(version) {
	return Number(version.replace(/^v/, '').split('.')[0]);
}

/**
 * Re-executes the current script under Node 24 when the running Node is older,
 * installing Node 24 from the npm registry (package `node`) into the cache first.
 * Stop signals reach the re-executed script (see `run`); this process exits with its code.
 */
export async function ensureNode24() {
	if (nodeMajor(process.versions.node) >= 24) return;
	const dir = path.join(CACHE_DIR, 'node24');
	const bin = path.join(dir, 'node_modules', '.bin', 'node');
	const works = () =>
		fs.existsSync(bin) && nodeMajor(spawnSync(bin, ['-v'], { encoding: 'utf8' }).stdout ?? '0') >= 24;
	if (!works()) {
		log(`Node ${process.versions.node} is older than 24; installing ${NODE_PACKAGE} into ${dir}`);
		fs.mkdirSync(dir, { recursive: true });
		fs.writeFileSync(path.join(dir, 'package.json'), '{ "private": true }\n');
		await mustRun('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', NODE_PACKAGE], { cwd: dir });
		if (!works()) {
			log(`Node 24 did not install into ${dir}`);
			process.exit(1);
		}
	}
	const env = {
		...process.env,
		PATH: `${path.dirname(bin)}${path.delimiter}${process.env.PATH}`,
		INBOUNDFLOW_RELAUNCHED: '1',
	};
	process.exit(await run(bin, [process.argv[1], ...process.argv.slice(2)], { env, cwd: process.cwd() }));
}

function lockHash() {
	return createHash('sha256').update(fs.readFileSync(path.join(ROOT, 'package-lock.json'))).digest('hex');
}

/** Installs the project's dev dependencies when node_modules is missing or stale. */
export async function ensureDependencies() {
	const stamp = path.join(ROOT, 'node_modules', '.inboundflow-lock-hash');
	const hash = lockHash();
	if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === hash) return;
	log('Installing dev dependencies (npm ci)…');
	await mustRun('npm', ['ci', '--no-audit', '--no-fund'], {
		env: { ...process.env, npm_config_yes: 'true' },
	});
	fs.writeFileSync(stamp, hash);
}

export function n8nDir(version = N8N_VERSION) {
	return path.join(CACHE_DIR, `n8n-${version}`);
}

export function n8nBin(version = N8N_VERSION) {
	return path.join(n8nDir(version), 'node_modules', '.bin', 'n8n');
}

/**
 * The running Node's own headers (the official tarballs, and the platform package the
 * npm `node` package installs, carry `include/node`), so the sqlite3 rebuild compiles
 * offline: node-gyp otherwise downloads them from nodejs.org, and sqlite3's prebuilt
 * binary comes from github.com, neither reachable from a machine that has only the npm
 * registry. Undefined when this Node has none (e.g. Debian's package): node-gyp's own
 * lookup then applies.
 */
function nodeHeadersDir() {
	const root = path.resolve(path.dirname(fs.realpathSync(process.execPath)), '..');
	const candidates = [root, path.join(root, 'node_modules', `node-${process.platform}-${process.arch}`)];
	return candidates.find((dir) => fs.existsSync(path.join(dir, 'include', 'node', 'common.gypi')));
}

/** sqlite3 builds in progress or done in this process, by sqlite3 version and Node ABI. */
const sqlite3Builds = new Map();

/** Whether the sqlite3 package in `dir` loads under the running Node. */
function sqlite3Loads(dir) {
	const probe = spawnSync(process.execPath, ['-e', 'require("sqlite3")'], { cwd: dir, encoding: 'utf8' });
	return probe.status === 0;
}

/**
 * Gives an n8n version's sqlite3 its native binary. Both tested n8n versions pin the same
 * sqlite3, and its compile is the longest CPU step of a cold install (1.5 to 2.5 minutes on
 * 2 cores): the first version's build is kept in the cache, by sqlite3 version and Node
 * ABI, and the other versions copy it (checked by loading it); they compile only when
 * the copy does not load. Resolves with an exit code.
 */
export async function buildSqlite3(version, env) {
	const dir = n8nDir(version);
	const pkg = path.join(dir, 'node_modules', 'sqlite3');
	const sqliteVersion = JSON.parse(fs.readFileSync(path.join(pkg, 'package.json'), 'utf8')).version;
	const key = `sqlite3-${sqliteVersion}-node-abi${process.versions.modules}-${process.platform}-${process.arch}`;
	const kept = path.join(CACHE_DIR, 'native', key, 'node_sqlite3.node');
	const target = path.join(pkg, 'build', 'Release', 'node_sqlite3.node');
	const compile = async () => {
		const code = await runWithProgress(`npm rebuild sqlite3 (n8n@${version})`, 'npm', ['rebuild', 'sqlite3'], {
			cwd: dir,
			env,
			logFile: path.join(dir, 'rebuild.log'),
		});
		if (code === 0 && fs.existsSync(target)) {
			// Best effort: without the kept copy the other versions compile their own.
			try {
				fs.mkdirSync(path.dirname(kept), { recursive: true });
				fs.copyFileSync(target, `${kept}.${process.pid}.tmp`);
				fs.renameSync(`${kept}.${process.pid}.tmp`, kept);
			} catch (error) {
				log(`sqlite3 build not kept for reuse (${error.message})`);
			}
		}
		return code;
	};
	const earlier = sqlite3Builds.get(key);
	if (earlier) await earlier;
	if (fs.existsSync(kept)) {
		fs.mkdirSync(path.dirname(target), { recursive: true });
		fs.copyFileSync(kept, target);
		if (sqlite3Loads(dir)) {
			log(`sqlite3 ${sqliteVersion} for n8n@${version}: reused the build in ${path.dirname(kept)}`);
			return 0;
		}
	}
	const build = compile();
	sqlite3Builds.set(key, build);
	return build;
}

/**
 * Installs an n8n version into the cache unless it is there (about 3 minutes and 2.8 GB
 * the first time). `--ignore-scripts` because the Kafka node's native build downloads
 * from the internet; sqlite3 is then rebuilt from its registry package. The version's
 * npm overrides go into the cache folder's package.json. Resolves with the n8n binary,
 * or with an error naming the log to read.
 */
async function installN8n(version) {
	const dir = n8nDir(version);
	const stamp = path.join(dir, '.inboundflow-complete');
	if (fs.existsSync(stamp) && fs.existsSync(n8nBin(version))) return n8nBin(version);
	fs.mkdirSync(dir, { recursive: true });
	const manifest = { private: true, overrides: n8nOverrides(version) };
	fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
	log(`Installing n8n@${version} into ${dir} (first time only: about 3 minutes, 2 to 3 GB)`);
	const env = { ...process.env, npm_config_yes: 'true' };
	const headers = nodeHeadersDir();
	if (headers && !env.npm_config_nodedir) env.npm_config_nodedir = headers;
	let code = await runWithProgress(
		`npm install n8n@${version}`,
		'npm',
		['install', '--ignore-scripts', '--no-audit', '--no-fund', `n8n@${version}`],
		{ cwd: dir, env, logFile: path.join(dir, 'install.log') },
	);
	if (code === 0) code = await buildSqlite3(version, env);
	if (code !== 0) {
		throw Object.assign(new Error(`Installing n8n@${version} failed; see ${path.join(dir, 'install.log')}`), { code });
	}
	fs.writeFileSync(stamp, new Date().toISOString());
	return n8nBin(version);
}

/** `installN8n` for one version; exits on failure. Returns the n8n binary. */
export async function ensureN8n(version = N8N_VERSION) {
	try {
		return await installN8n(version);
	} catch (error) {
		log(error.message);
		process.exit(Number.isInteger(error.code) ? error.code : 1);
	}
}

/**
 * Installs several n8n versions side by side (the downloads dominate: 5.3 minutes for
 * 2.41.1 and 1.123.81 from a cold cache, against 7.2 one after the other). Waits for
 * all before it exits on a failure, so no install is left running. Returns the binaries
 * in the order of `versions`.
 */
export async function ensureN8ns(versions) {
	return settleN8ns(await installN8ns(versions));
}

/**
 * Starts installing several n8n versions side by side and resolves, without exiting, once
 * every install has ended (so a caller can do other work meanwhile); `settleN8ns` then
 * exits on a failure or returns the binaries.
 */
export function installN8ns(versions) {
	return Promise.allSettled(versions.map((version) => installN8n(version)));
}

/** Exits with the first failed install's code, else returns the binaries in order. */
export function settleN8ns(results) {
	const failed = results.filter((r) => r.status === 'rejected');
	for (const failure of failed) log(failure.reason.message);
	if (failed.length > 0) process.exit(Number.isInteger(failed[0].reason.code) ? failed[0].reason.code : 1);
	return results.map((r) => r.value);
}
