#!/usr/bin/env node
// Entry point of the npm scripts. On a fresh clone it brings Node 24 (when the
// machine's Node is older), installs the dev dependencies and, for the end-to-end
// suite and `npm start`, the n8n versions it runs; then runs the task. A stop signal
// (Ctrl-C, SIGTERM, SIGHUP) reaches the task and everything it started (see `run`).
//   test   build, lint, then every jest suite (unit, HTTP, package scan, and the real
//          n8n e2e once per tested n8n version, one after the other)
//   start  build, then the emulator, the demo sinks and a real n8n (the first tested
//          version) with our node
//   build  TypeScript to dist/ plus icons; tools to build/
//   lint   eslint with n8n's community-node rules
//   bench  benchmarks; prints a table and writes bench/results/latest.json
import {
	ensureDependencies,
	ensureN8n,
	ensureN8ns,
	ensureNode24,
	log,
	mustRun,
	n8nBin,
	n8nVersions,
	ROOT,
} from './lib/env.mjs';
import fs from 'node:fs';
import path from 'node:path';

await ensureNode24();
const task = process.argv[2] ?? 'test';
const bin = (name) => path.join(ROOT, 'node_modules', '.bin', name);

async function build() {
	const started = Date.now();
	log('Building: TypeScript to dist/ (the nodes) and build/ (emulator, tests), 10 to 20 s…');
	fs.rmSync(path.join(ROOT, 'dist'), { recursive: true, force: true });
	fs.rmSync(path.join(ROOT, 'build'), { recursive: true, force: true });
	await mustRun(bin('tsc'), ['-p', 'tsconfig.build.json']);
	await mustRun(bin('gulp'), ['build:icons', '--silent']);
	await mustRun(bin('tsc'), ['-p', 'tsconfig.tools.json']);
	log(`Built in ${Math.round((Date.now() - started) / 1000)} s`);
}

async function lint() {
	// Type-check everything, tests included (ts-jest compiles them without checking).
	await mustRun(bin('tsc'), ['--noEmit', '-p', 'tsconfig.json']);
	await mustRun(bin('eslint'), ['.', '--max-warnings', '0']);
}

await ensureDependencies();
switch (task) {
	case 'build':
		await build();
		break;
	case 'lint':
		await lint();
		break;
	case 'test': {
		await build();
		await lint();
		// Every tested n8n version, installed side by side; the e2e suite runs once per
		// binary in INBOUNDFLOW_N8N_BINS, one after the other (INBOUNDFLOW_N8N_VERSION=2.41.1
		// picks one).
		const bins = await ensureN8ns([...new Set(n8nVersions())]);
		const args = ['--ci', '--passWithNoTests', ...process.argv.slice(3)];
		const env = { ...process.env, INBOUNDFLOW_N8N_BIN: bins[0], INBOUNDFLOW_N8N_BINS: bins.join(path.delimiter) };
		// Unit and HTTP suites side by side; then the suites that run real n8n processes one
		// at a time (on 2 cores, two n8n clusters at once would time each other out).
		await mustRun(bin('jest'), [...args, '--testPathIgnorePatterns', '/e2e/'], { env });
		await mustRun(bin('jest'), [...args, '--runInBand', '--testPathPatterns', '/e2e/'], { env });
		break;
	}
	case 'start': {
		await build();
		const n8n = await ensureN8n();
		await mustRun(process.execPath, [path.join(ROOT, 'build', 'test', 'e2e', 'start.js')], {
			env: { ...process.env, INBOUNDFLOW_N8N_BIN: n8n },
		});
		break;
	}
	case 'emulator':
		await build();
		await mustRun(process.execPath, [path.join(ROOT, 'build', 'emulator', 'cli.js')]);
		break;
	case 'bench':
		await build();
		await mustRun(process.execPath, ['--expose-gc', path.join(ROOT, 'build', 'bench', 'run.js'), ...process.argv.slice(3)], {
			env: { ...process.env, INBOUNDFLOW_N8N_BIN: n8nBin() },
		});
		break;
	default:
		log(`unknown task "${task}" (use test, start, build, lint, bench)`);
		process.exit(2);
}
