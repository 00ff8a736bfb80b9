// Publishing readiness: what `npm pack` ships, and the checks of
// @n8n/scan-community-package on our source and on the packed tarball.
import { spawnSync } from 'node:child_process';
import path from 'node:path';

import pkg from '../package.json';

const ROOT = path.resolve(__dirname, '..');

describe('the published package', () => {
	let result: {
		passed: boolean;
		files: string[];
		source: { passed: boolean; details?: string };
		tarball: { passed: boolean; details?: string };
	};

	beforeAll(() => {
		// Jest's NODE_ENV=test switches eslint-plugin-n8n-nodes-base into its own test mode.
		const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => key !== 'NODE_ENV'));
		const run = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'scan-package.mjs')], {
			cwd: ROOT,
			encoding: 'utf8',
			env,
		});
		result = JSON.parse(run.stdout.trim().split('\n').pop() ?? '{}') as typeof result;
	}, 180_000);

	it('passes the scanner checks on the source and on the tarball', () => {
		expect(result.source.details ?? '').toBe('');
		expect(result.tarball.details ?? '').toBe('');
		expect(result.passed).toBe(true);
	});

	it('holds only dist/, README, LICENSE and package.json', () => {
		const outside = result.files.filter((f) => !f.startsWith('dist/'));
		expect(outside.sort()).toEqual(['LICENSE', 'README.md', 'package.json']);
		for (const file of [...pkg.n8n.nodes, ...pkg.n8n.credentials]) expect(result.files).toContain(file);
		expect(result.files).toEqual(expect.arrayContaining(['dist/nodes/InboundFlow/inboundflow.svg', 'dist/nodes/InboundFlow/inboundflow.dark.svg']));
		expect(result.files.some((f) => f.startsWith('dist/emulator') || f.includes('.test.'))).toBe(false);
	});

	it('follows the community package conventions', () => {
		expect(pkg.keywords).toContain('n8n-community-node-package');
		expect(pkg.peerDependencies).toEqual({ 'n8n-workflow': '*' });
		expect((pkg as { dependencies?: object }).dependencies).toBeUndefined();
		expect(pkg.files).toEqual(['dist']);
		expect(pkg.n8n.n8nNodesApiVersion).toBe(1);
	});
});
