#!/usr/bin/env node
// Entry point of the npm scripts. On a fresh clone it brings Node 24 (when the
// machine's Node is older), installs the dev dependencies and, for the end-to-end
// suite and `npm start`, the pinned n8n; then runs the task.
//   test   build, lint, then every jest suite (unit, HTTP, package scan, real n8n e2e)
//   start  build, then the emulator, the demo sinks and a real n8n with our node
//   build  TypeScript to dist/ plus icons; tools to build/
//   lint   eslint with n8n's community-node rules
//   bench  benchmarks; prints a table and writes bench/results/latest.json
import { ensureDependencies, ensureN8n, ensureNode24, log, mustRun, n8nBin, ROOT } from './lib/env.mjs';
import fs from 'node:fs';
import path from 'node:path';

ensureNode24();
const task = process.argv[2] ?? 'test';
const bin = (name) => path.join(ROOT, 'node_modules', '.bin', name);

function build() {
	fs.rmSync(path.join(ROOT, 'dist'), { recursive: true, force: true });
	fs.rmSync(path.join(ROOT, 'build'), { recursive: true, force: true });
	mustRun(bin('tsc'), ['-p', 'tsconfig.build.json']);
	mustRun(bin('gulp'), ['build:icons', '--silent']);
	mustRun(bin('tsc'), ['-p', 'tsconfig.tools.json']);
}

function lint() {
	// Type-check everything, tests included (ts-jest compiles them without checking).
	mustRun(bin('tsc'), ['--noEmit', '-p', 'tsconfig.json']);
	mustRun(bin('eslint'), ['.', '--max-warnings', '0']);
}

ensureDependencies();
switch (task) {
	case 'build':
		build();
		break;
	case 'lint':
		lint();
		break;
	case 'test': {
		build();
		lint();
		const n8n = await ensureN8n();
		const args = ['--ci', ...process.argv.slice(3)];
		const env = { ...process.env, INBOUNDFLOW_N8N_BIN: n8n };
		mustRun(bin('jest'), args, { env });
		break;
	}
	case 'start': {
		build();
		const n8n = await ensureN8n();
		mustRun(process.execPath, [path.join(ROOT, 'build', 'test', 'e2e', 'start.js')], {
			env: { ...process.env, INBOUNDFLOW_N8N_BIN: n8n },
		});
		break;
	}
	case 'emulator':
		build();
		mustRun(process.execPath, [path.join(ROOT, 'build', 'emulator', 'cli.js')]);
		break;
	case 'bench':
		build();
		mustRun(process.execPath, ['--expose-gc', path.join(ROOT, 'build', 'bench', 'run.js'), ...process.argv.slice(3)], {
			env: { ...process.env, INBOUNDFLOW_N8N_BIN: n8nBin() },
		});
		break;
	default:
		log(`unknown task "${task}" (use test, start, build, lint, bench)`);
		process.exit(2);
}
