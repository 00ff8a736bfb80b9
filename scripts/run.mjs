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
	ensureNode24,
	log,
	mustRun,
	n8nBin,
	n8nVersions,
	ROOT,
	run,
	installN8ns,
	settleN8ns,
} from './lib/env.mjs';
import fs from 'node:fs';
import path from 'node:path';

await ensureNode24();
const task = process.argv[2] ?? 'test';
/**
 * The e2e suites of the CPU-heavy stream (a queue-mode cluster, a browser, n8n execute runs,
 * the AI Agent); the others mostly wait for polls and schedules. Measured to end within a
 * minute of each other (README, Development).
 */
const HEAVY_E2E = '/e2e/(queue|panel|n8n|agent)\\.e2e';
/** Paths that are not e2e suites (jest ignores a path matching any ignore pattern). */
const NOT_E2E = '^((?!/e2e/).)*$';
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
		// The n8n installs (network and disk, minutes from a cold cache) run while the
		// build, the lint and the unit suites use the CPU; the e2e suites wait for them.
		const installs = installN8ns([...new Set(n8nVersions())]);
		const extra = process.argv.slice(3);
		const args = ['--ci', '--passWithNoTests', ...extra];
		let failure = 0;
		try {
			await build();
			await lint();
			// Unit and HTTP suites side by side (jest workers).
			const unitStarted = Date.now();
			failure = await run(bin('jest'), [...args, '--testPathIgnorePatterns', '/e2e/']);
			log(`unit and HTTP suites ended in ${Math.round((Date.now() - unitStarted) / 1000)} s`);
		} finally {
			// A failed step still waits for the installs, so none is left running.
			if (failure !== 0) await installs;
		}
		if (failure !== 0) {
			log(`the unit suites failed (exit ${failure})`);
			process.exit(failure);
		}
		const waited = Date.now();
		const bins = settleN8ns(await installs);
		log(`n8n ready (waited ${Math.round((Date.now() - waited) / 1000)} s for the installs); end-to-end suites start`);
		const env = { ...process.env, INBOUNDFLOW_N8N_BIN: bins[0], INBOUNDFLOW_N8N_BINS: bins.join(path.delimiter) };
		// The suites that run real n8n processes, each once per binary in
		// INBOUNDFLOW_N8N_BINS (INBOUNDFLOW_N8N_VERSION=2.41.1 picks one). Two streams side
		// by side, each suite on its own ports: the CPU-heavy suites (a cluster, a browser)
		// in one, the suites that mostly wait for polls and schedules in the other. With
		// test arguments (one suite picked), or INBOUNDFLOW_E2E_STREAMS=1, one stream.
		// Jest ORs several --testPathPatterns; a path matching NOT_E2E is ignored, so a
		// pattern given on the command line picks among the e2e suites only.
		const e2e = [...args, '--runInBand', '--verbose', '--testPathIgnorePatterns', NOT_E2E];
		const streams = extra.length > 0 || process.env.INBOUNDFLOW_E2E_STREAMS === '1'
			? [e2e]
			: [
				[...e2e, '--testPathPatterns', HEAVY_E2E],
				[...e2e, '--testPathIgnorePatterns', HEAVY_E2E],
			];
		const e2eStarted = Date.now();
		const codes = await Promise.all(
			streams.map(async (stream, i) => {
				const code = await run(bin('jest'), stream, { env });
				log(`end-to-end stream ${i + 1} of ${streams.length} ended in ${Math.round((Date.now() - e2eStarted) / 1000)} s (exit ${code})`);
				return code;
			}),
		);
		const failed = codes.find((code) => code !== 0);
		if (failed !== undefined) {
			log(`the end-to-end suites failed (exit codes ${codes.join(', ')})`);
			process.exit(failed);
		}
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
