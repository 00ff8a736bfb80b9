// Publishing readiness: what `npm pack` ships, and the checks of
// @n8n/scan-community-package on our source and on the packed tarball.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import pkg from '../package.json';

const ROOT = path.resolve(__dirname, '..');

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
	return heading
		.trim()
		.toLowerCase()
		.replace(/[^\p{L}\p{N}\s_-]/gu, '')
		.replace(/\s/g, '-');
}

describe('documentation links', () => {
	it('every link to the README from a node, codex or credential resolves to a README heading', () => {
		const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
		const anchors = new Set([...readme.matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1])));
		const files = ['nodes', 'credentials'].flatMap((dir) =>
			(fs.readdirSync(path.join(ROOT, dir), { recursive: true }) as string[])
				.filter((f) => /\.(ts|json)$/.test(f))
				.map((f) => path.join(ROOT, dir, f)),
		);
		const links = files.flatMap((file) =>
			[...fs.readFileSync(file, 'utf8').matchAll(/github\.com\/inboundflow\/n8n-nodes-inboundflow#([\w-]+)/g)].map((m) => ({
				file: path.relative(ROOT, file),
				anchor: m[1],
			})),
		);
		expect(links.length).toBeGreaterThanOrEqual(9);
		expect(links.filter((l) => !anchors.has(l.anchor))).toEqual([]);
	});

	it("each node's documentationUrl is a full URL, the same as its codex's, so that n8n opens it unchanged", () => {
		// n8n's node panel uses a node's documentationUrl as it is when it starts with http;
		// otherwise it appends ?utm_… to the codex URL, after the #anchor, which breaks it.
		for (const dir of ['InboundFlow', 'InboundFlowTrigger', 'InboundFlowWebhookTrigger']) {
			// eslint-disable-next-line @typescript-eslint/no-require-imports
			const loaded = require(path.join(ROOT, 'nodes', dir, `${dir}.node.ts`)) as Record<string, new () => { description: { documentationUrl?: string } }>;
			const codex = JSON.parse(fs.readFileSync(path.join(ROOT, 'nodes', dir, `${dir}.node.json`), 'utf8')) as {
				resources: { primaryDocumentation: Array<{ url: string }> };
			};
			const url = new loaded[dir]().description.documentationUrl;
			expect({ dir, url }).toEqual({ dir, url: codex.resources.primaryDocumentation[0].url });
			expect(url).toMatch(/^https:\/\/github\.com\/inboundflow\/n8n-nodes-inboundflow#[\w-]+$/);
		}
	});
});

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
