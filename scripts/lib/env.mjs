// Bootstrap helpers: bring Node 24 where the machine has an older one, install the
// project's dependencies, and install the pinned n8n into a cache folder outside the
// package. Uses Node built-ins only, because it runs before anything is installed.
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
 * The n8n the end-to-end suite and `npm start` run. Newest 2.x that installs from the
 * registry here (2.41.3 pulls a dependency the registry does not serve).
 */
export const N8N_VERSION = process.env.INBOUNDFLOW_N8N_VERSION ?? '2.41.1';

export function log(message) {
	process.stderr.write(`[inboundflow] ${message}\n`);
}

export function run(cmd, args, options = {}) {
	const result = spawnSync(cmd, args, { stdio: 'inherit', cwd: ROOT, ...options });
	if (result.error) throw result.error;
	return result.status ?? 1;
}

export function mustRun(cmd, args, options = {}) {
	const status = run(cmd, args, options);
	if (status !== 0) {
		log(`\`${cmd} ${args.join(' ')}\` failed with exit code ${status}`);
		process.exit(status);
	}
}

/** Runs a long command, printing a progress line every 20 s so a user knows it works. */
export async function runWithProgress(label, cmd, args, options = {}) {
	const started = Date.now();
	const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
	const logFile = options.logFile ? fs.createWriteStream(options.logFile) : null;
	child.stdout.on('data', (d) => logFile?.write(d));
	child.stderr.on('data', (d) => logFile?.write(d));
	const timer = setInterval(() => {
		log(`${label}: still working (${Math.round((Date.now() - started) / 1000)} s)…`);
	}, 20_000);
	const code = await new Promise((resolve) => child.on('close', resolve));
	clearInterval(timer);
	logFile?.end();
	log(`${label}: ${code === 0 ? 'done' : `failed (exit ${code})`} in ${Math.round((Date.now() - started) / 1000)} s`);
	return code;
}

function nodeMajor(version) {
	return Number(version.replace(/^v/, '').split('.')[0]);
}

/**
 * Re-executes the current script under Node 24 when the running Node is older,
 * installing Node 24 from the npm registry (package `node`) into the cache first.
 */
export function ensureNode24() {
	if (nodeMajor(process.versions.node) >= 24) return;
	const dir = path.join(CACHE_DIR, 'node24');
	const bin = path.join(dir, 'node_modules', '.bin', 'node');
	const works = () =>
		fs.existsSync(bin) && nodeMajor(spawnSync(bin, ['-v'], { encoding: 'utf8' }).stdout ?? '0') >= 24;
	if (!works()) {
		log(`Node ${process.versions.node} is older than 24; installing ${NODE_PACKAGE} into ${dir}`);
		fs.mkdirSync(dir, { recursive: true });
		fs.writeFileSync(path.join(dir, 'package.json'), '{ "private": true }\n');
		mustRun('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', NODE_PACKAGE], { cwd: dir });
		if (!works()) {
			log(`Node 24 did not install into ${dir}`);
			process.exit(1);
		}
	}
	const env = { ...process.env, PATH: `${path.dirname(bin)}${path.delimiter}${process.env.PATH}` };
	const result = spawnSync(bin, [process.argv[1], ...process.argv.slice(2)], { stdio: 'inherit', env });
	process.exit(result.status ?? 1);
}

function lockHash() {
	return createHash('sha256').update(fs.readFileSync(path.join(ROOT, 'package-lock.json'))).digest('hex');
}

/** Installs the project's dev dependencies when node_modules is missing or stale. */
export function ensureDependencies() {
	const stamp = path.join(ROOT, 'node_modules', '.inboundflow-lock-hash');
	const hash = lockHash();
	if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === hash) return;
	log('Installing dev dependencies (npm ci)…');
	mustRun('npm', ['ci', '--no-audit', '--no-fund'], {
		env: { ...process.env, npm_config_yes: 'true' },
	});
	fs.writeFileSync(stamp, hash);
}

export function n8nDir() {
	return path.join(CACHE_DIR, `n8n-${N8N_VERSION}`);
}

export function n8nBin() {
	return path.join(n8nDir(), 'node_modules', '.bin', 'n8n');
}

/**
 * Installs the pinned n8n into the cache (about 3 minutes and 2.8 GB the first time).
 * `--ignore-scripts` because the Kafka node's native build downloads from the internet;
 * sqlite3 is then rebuilt from its registry package.
 */
export async function ensureN8n() {
	const dir = n8nDir();
	const stamp = path.join(dir, '.inboundflow-complete');
	if (fs.existsSync(stamp) && fs.existsSync(n8nBin())) return n8nBin();
	fs.mkdirSync(dir, { recursive: true });
	fs.writeFileSync(path.join(dir, 'package.json'), '{ "private": true }\n');
	log(`Installing n8n@${N8N_VERSION} into ${dir} (first time only: about 3 minutes, 2.8 GB)`);
	const env = { ...process.env, npm_config_yes: 'true' };
	let code = await runWithProgress(
		`npm install n8n@${N8N_VERSION}`,
		'npm',
		['install', '--ignore-scripts', '--no-audit', '--no-fund', `n8n@${N8N_VERSION}`],
		{ cwd: dir, env, logFile: path.join(dir, 'install.log') },
	);
	if (code === 0) {
		code = await runWithProgress('npm rebuild sqlite3', 'npm', ['rebuild', 'sqlite3'], {
			cwd: dir,
			env,
			logFile: path.join(dir, 'rebuild.log'),
		});
	}
	if (code !== 0) {
		log(`Installing n8n failed; see ${path.join(dir, 'install.log')}`);
		process.exit(code);
	}
	fs.writeFileSync(stamp, new Date().toISOString());
	return n8nBin();
}
