// Webhook table of `npm run bench`: one real n8n (single process, default SQLite), our
// InboundFlow Webhook Trigger and n8n's own Webhook node side by side in it, each → the
// same HTTP Request node → a local sink that counts runs. Per concurrency, signed
// deliveries with distinct ids, sent in alternating halves (ours, n8n's, ours, n8n's) so
// both see the same machine load; after each half, the runs are awaited.
// BENCH_WEBHOOK_DELIVERIES (default 1000 per target and concurrency),
// BENCH_WEBHOOK_CONCURRENCY (default 1,4,10,25,50). Runs on its own too:
// node build/bench/webhook.js (INBOUNDFLOW_N8N_BIN set).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { IDataObject } from 'n8n-workflow';

import { n8nBin, n8nVersionOf } from '../test/e2e/n8n';
import { delivery, fire, percentile, startLoadInstance, type LoadInstance, type Sent, type Target } from '../test/e2e/webhook-load';

const DELIVERIES = Number(process.env.BENCH_WEBHOOK_DELIVERIES ?? 1000);
const CONCURRENCY = (process.env.BENCH_WEBHOOK_CONCURRENCY ?? '1,4,10,25,50').split(',').map(Number);

const total = (runs: Map<string, number>) => [...runs.values()].reduce((a, b) => a + b, 0);

async function awaitRuns(instance: LoadInstance, target: Target, expected: number): Promise<void> {
	let last = -1;
	let stableSince = Date.now();
	for (;;) {
		const now = total(instance.runs(target));
		if (now !== last) {
			last = now;
			stableSince = Date.now();
		}
		if (now >= expected && Date.now() - stableSince > 1000) return;
		if (Date.now() - stableSince > 30_000) return; // nothing more is coming
		await new Promise((r) => setTimeout(r, 250));
	}
}

interface Half {
	sent: Sent[];
	ms: number;
}

function row(instance: LoadInstance, target: Target, concurrency: number, halves: Half[]): IDataObject {
	const sent = halves.flatMap((h) => h.sent);
	const ms = halves.reduce((a, h) => a + h.ms, 0);
	const runs = instance.runs(target);
	const accepted = sent.filter((s) => s.status >= 200 && s.status < 300);
	const ran = sent.filter((s) => (runs.get(s.id) ?? 0) > 0).length;
	return {
		node: target === 'ours' ? 'InboundFlow Webhook Trigger' : "n8n's Webhook node",
		concurrency,
		sent: sent.length,
		'2xx': accepted.length,
		ran,
		lost: accepted.filter((s) => !runs.get(s.id)).length,
		duplicated: sent.filter((s) => (runs.get(s.id) ?? 0) > 1).length,
		perSecond: Number(((sent.length / ms) * 1000).toFixed(1)),
		p50ms: Math.round(percentile(sent.map((s) => s.ms), 50)),
		p99ms: Math.round(percentile(sent.map((s) => s.ms), 99)),
	};
}

export async function webhookBench(say: (text: string) => void): Promise<IDataObject[]> {
	const bin = n8nBin();
	say(`Webhook deliveries in one n8n ${n8nVersionOf(bin)} (SQLite, single process): ours vs n8n's Webhook node, ${DELIVERIES} each per concurrency…`);
	const loadBefore = os.loadavg()[0];
	const instance = await startLoadInstance(bin);
	const rows: IDataObject[] = [];
	try {
		// Warm-up: both workflows compiled, connections open.
		for (const target of ['ours', 'theirs'] as const) await fire(instance.url(target), Array.from({ length: 20 }, () => delivery()), 4);
		for (const concurrency of CONCURRENCY) {
			const halves: Record<Target, Half[]> = { ours: [], theirs: [] };
			for (const round of [0, 1]) {
				for (const target of ['ours', 'theirs'] as const) {
					const count = round === 0 ? Math.ceil(DELIVERIES / 2) : Math.floor(DELIVERIES / 2);
					const before = total(instance.runs(target));
					const half = await fire(instance.url(target), Array.from({ length: count }, () => delivery()), concurrency);
					halves[target].push(half);
					await awaitRuns(instance, target, before + count);
				}
			}
			const ours = row(instance, 'ours', concurrency, halves.ours);
			const theirs = row(instance, 'theirs', concurrency, halves.theirs);
			ours.ofN8nNode = `${Math.round((Number(ours.perSecond) / Number(theirs.perSecond)) * 100)} %`;
			rows.push(ours, theirs);
			say(`  concurrency ${concurrency}: ours ${String(ours.perSecond)}/s, n8n's ${String(theirs.perSecond)}/s (${String(ours.ofN8nNode)})`);
		}
	} finally {
		await instance.stop();
	}
	const load = `load average ${loadBefore.toFixed(1)} before, ${os.loadavg()[0].toFixed(1)} after, ${os.cpus().length} cores`;
	say(`(${load})`);
	const dir = path.resolve(__dirname, '..', '..', 'bench', 'results');
	fs.mkdirSync(dir, { recursive: true });
	fs.writeFileSync(path.join(dir, 'webhook.json'), `${JSON.stringify({ date: new Date().toISOString(), load, rows }, null, 2)}\n`);
	return rows;
}

if (require.main === module) {
	const say = (text: string) => process.stdout.write(`${text}\n`);
	webhookBench(say).then(
		(rows) => {
			const keys = Object.keys(rows[0] ?? {}).concat('ofN8nNode').filter((k, i, all) => all.indexOf(k) === i);
			const line = (cells: unknown[]) => `| ${cells.map((c) => String(c ?? '')).join(' | ')} |`;
			say([line(keys), line(keys.map(() => '---')), ...rows.map((r) => line(keys.map((k) => r[k])))].join('\n'));
		},
		(error: unknown) => {
			process.stderr.write(`${String(error)}\n`);
			process.exit(1);
		},
	);
}
