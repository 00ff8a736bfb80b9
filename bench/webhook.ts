// Webhook table of `npm run bench`: one real n8n (single process, default SQLite), our
// InboundFlow Webhook Trigger and n8n's own Webhook node side by side in it, each → the
// same HTTP Request node → a local sink that counts runs. Per concurrency, signed
// deliveries with distinct ids, sent in alternating halves (ours, n8n's, ours, n8n's) so
// both see the same machine load; after each half, the runs are awaited.
// BENCH_WEBHOOK_DELIVERIES (default 1000 per target and concurrency),
// BENCH_WEBHOOK_CONCURRENCY (default 1,4,10,25,50), BENCH_WEBHOOK_EXPRESSION=1 adds a
// target: n8n's Webhook node with one expression parameter (n8n 2.x then takes an
// expression isolate for its webhook phase, as for every community node);
// BENCH_WEBHOOK_AUTH=1 adds n8n's Webhook node checking a secret header (Header Auth: a
// credential read per request, as our signature check needs). Each row also gives the CPU
// time n8n's process spent per delivery. n8n's
// N8N_EXPRESSION_ENGINE* settings in the environment reach the n8n started here and are
// printed with the table; BENCH_WEBHOOK_OUT names the result file (default webhook.json);
// BENCH_BUSY=N keeps the cores busy with N other processes (bench/busy.ts), and each row
// gives the load average at its end.
// Runs on its own too: node build/bench/webhook.js (INBOUNDFLOW_N8N_BIN set).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { IDataObject } from 'n8n-workflow';

import { busyMachine, describeBusy } from './busy';
import { checkDelivery } from '../nodes/InboundFlowWebhookTrigger/delivery';
import { DeliveryLedger } from '../nodes/InboundFlowWebhookTrigger/ledger';
import { n8nBin, n8nVersionOf } from '../test/e2e/n8n';
import { AUTH_HEADER, delivery, fire, percentile, SECRET, startLoadInstance, type LoadInstance, type Sent, type Target } from '../test/e2e/webhook-load';

const DELIVERIES = Number(process.env.BENCH_WEBHOOK_DELIVERIES ?? 1000);
const CONCURRENCY = (process.env.BENCH_WEBHOOK_CONCURRENCY ?? '1,4,10,25,50').split(',').map(Number);
const TARGETS: Target[] = [
	'ours',
	'theirs',
	...(process.env.BENCH_WEBHOOK_EXPRESSION === '1' ? (['theirsExpr'] as const) : []),
	...(process.env.BENCH_WEBHOOK_AUTH === '1' ? (['theirsAuth'] as const) : []),
];
const NAMES: Record<Target, string> = {
	ours: 'InboundFlow Webhook Trigger',
	theirs: "n8n's Webhook node",
	theirsExpr: "n8n's Webhook node, one expression parameter",
	theirsAuth: "n8n's Webhook node, Header Auth",
};
/** How each extra target reads in a summary line and in the ratio column's name. */
const EXTRA: Partial<Record<Target, { line: string; column: string }>> = {
	theirsExpr: { line: "n8n's with an expression", column: 'ofN8nNodeWithExpression' },
	theirsAuth: { line: "n8n's with Header Auth", column: 'ofN8nNodeWithHeaderAuth' },
};

/** A signed delivery for `target` (n8n's Header Auth node also gets its secret header). */
function deliveryFor(target: Target) {
	const d = delivery();
	return target === 'theirsAuth' ? { ...d, headers: { ...d.headers, [AUTH_HEADER.name]: AUTH_HEADER.value } } : d;
}

/** The n8n expression-engine settings in force (inherited by the n8n started here). */
export function engineSettings(): string {
	const set = Object.entries(process.env).filter(([key]) => key.startsWith('N8N_EXPRESSION_ENGINE'));
	return set.length === 0 ? 'n8n defaults' : set.map(([key, value]) => `${key}=${value}`).join(' ');
}

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
	/** CPU time n8n's process used (every thread) from the first send until the runs were in. */
	cpuMs: number;
}

/** Clock ticks a second, the unit of /proc/<pid>/stat's times (100 on Linux unless set otherwise). */
const TICKS_PER_SECOND = (() => {
	const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout;
	return Number(out?.trim()) > 0 ? Number(out.trim()) : 100;
})();

/** CPU time (user + system, ms) a process has used so far, from /proc (Linux); NaN elsewhere. */
export function processCpuMs(pid: number | undefined): number {
	try {
		const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
		// After the command name (in parentheses, which may hold any character): field 3 on.
		const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
		// Fields 14 and 15 of stat: utime and stime.
		return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
	} catch {
		return NaN;
	}
}

function row(instance: LoadInstance, target: Target, concurrency: number, halves: Half[]): IDataObject {
	const sent = halves.flatMap((h) => h.sent);
	const ms = halves.reduce((a, h) => a + h.ms, 0);
	const runs = instance.runs(target);
	const accepted = sent.filter((s) => s.status >= 200 && s.status < 300);
	const ran = sent.filter((s) => (runs.get(s.id) ?? 0) > 0).length;
	return {
		node: NAMES[target],
		concurrency,
		sent: sent.length,
		'2xx': accepted.length,
		ran,
		lost: accepted.filter((s) => !runs.get(s.id)).length,
		duplicated: sent.filter((s) => (runs.get(s.id) ?? 0) > 1).length,
		perSecond: Number(((sent.length / ms) * 1000).toFixed(1)),
		n8nCpuMsPerDelivery: Number((halves.reduce((a, h) => a + h.cpuMs, 0) / sent.length).toFixed(1)),
		p50ms: Math.round(percentile(sent.map((s) => s.ms), 50)),
		p99ms: Math.round(percentile(sent.map((s) => s.ms), 99)),
	};
}

export async function webhookBench(say: (text: string) => void): Promise<IDataObject[]> {
	const bin = n8nBin();
	const settings = engineSettings();
	const loadBefore = os.loadavg()[0];
	const busy = busyMachine();
	say(`Webhook deliveries in one n8n ${n8nVersionOf(bin)} (SQLite, single process, ${settings}; ${describeBusy(busy)}): ours vs n8n's Webhook node, ${DELIVERIES} each per concurrency…`);
	const rows: IDataObject[] = [];
	let instance: LoadInstance | undefined;
	try {
		instance = await startLoadInstance(bin, {}, { withExpression: TARGETS.includes('theirsExpr'), withAuth: TARGETS.includes('theirsAuth') });
		// Warm-up: the workflows compiled, connections open.
		for (const target of TARGETS) await fire(instance.url(target), Array.from({ length: 20 }, () => deliveryFor(target)), 4);
		for (const concurrency of CONCURRENCY) {
			const halves: Record<Target, Half[]> = { ours: [], theirs: [], theirsExpr: [], theirsAuth: [] };
			for (const round of [0, 1]) {
				for (const target of TARGETS) {
					const count = round === 0 ? Math.ceil(DELIVERIES / 2) : Math.floor(DELIVERIES / 2);
					const before = total(instance.runs(target));
					const cpuBefore = processCpuMs(instance.n8n.pid);
					const half = await fire(instance.url(target), Array.from({ length: count }, () => deliveryFor(target)), concurrency);
					await awaitRuns(instance, target, before + count);
					halves[target].push({ ...half, cpuMs: processCpuMs(instance.n8n.pid) - cpuBefore });
				}
			}
			const ours = row(instance, 'ours', concurrency, halves.ours);
			const theirs = row(instance, 'theirs', concurrency, halves.theirs);
			const share = (of: IDataObject) => `${Math.round((Number(ours.perSecond) / Number(of.perSecond)) * 100)} %`;
			ours.ofN8nNode = share(theirs);
			rows.push(ours, theirs);
			const detail = (r: IDataObject) =>
				`${String(r['2xx'])} of ${String(r.sent)} 2xx, lost ${String(r.lost)}, twice ${String(r.duplicated)}, n8n CPU ${String(r.n8nCpuMsPerDelivery)} ms each`;
			let line = `  concurrency ${concurrency}: ours ${String(ours.perSecond)}/s (${detail(ours)}), n8n's ${String(theirs.perSecond)}/s (${detail(theirs)}) (${String(ours.ofN8nNode)})`;
			for (const target of TARGETS) {
				const extra = EXTRA[target];
				if (!extra) continue;
				const other = row(instance, target, concurrency, halves[target]);
				ours[extra.column] = share(other);
				rows.push(other);
				line += `, ${extra.line} ${String(other.perSecond)}/s (${detail(other)}) (${String(ours[extra.column])})`;
			}
			const load = busy.load();
			for (const r of rows.slice(-TARGETS.length)) Object.assign(r, { settings, busyProcesses: busy.processes, loadAverage: load });
			say(`${line}; load average ${load}`);
		}
	} finally {
		await instance?.stop();
		busy.stop();
	}
	const load = `load average ${loadBefore.toFixed(1)} before, ${os.loadavg()[0].toFixed(1)} after, ${os.cpus().length} cores`;
	say(`(${load})`);
	const dir = path.resolve(__dirname, '..', '..', 'bench', 'results');
	fs.mkdirSync(dir, { recursive: true });
	const file = process.env.BENCH_WEBHOOK_OUT ?? 'webhook.json';
	// A name is kept under bench/results; an absolute path is used as given.
	fs.writeFileSync(path.resolve(dir, file), `${JSON.stringify({ date: new Date().toISOString(), n8n: n8nVersionOf(bin), settings, load, rows }, null, 2)}\n`);
	return rows;
}

/**
 * What one delivery costs in our own code (no n8n): the checks (HMAC over the raw bytes,
 * replay window, JSON parse), the ledger's claim and settle, and a save (the snapshot
 * and its JSON, as n8n serialises static data) with `remembered` keys already held;
 * beside it, what one expression isolate costs n8n 2.x (create, context, dispose), the
 * same n8n's IsolatedVmBridge the webhook phase of a community node takes.
 */
export async function profileDelivery(bin: string, remembered = 5000, count = 2000): Promise<IDataObject[]> {
	const list = Array.from({ length: count }, () => delivery());
	const ledger = new DeliveryLedger();
	const now = Date.now();
	for (let i = 0; i < remembered; i++) {
		const claim = ledger.claim('t', `old-${i}`, now);
		if (claim.kind === 'new') ledger.settle('t', claim.fp, true, now);
	}
	// CPU time of the whole process (every thread), per delivery: less sensitive to the
	// machine's load than wall time.
	const cpuMs = () => {
		const used = process.cpuUsage();
		return (used.user + used.system) / 1000;
	};
	const time = (fn: (d: (typeof list)[number], i: number) => void): number => {
		const started = cpuMs();
		list.forEach(fn);
		return ((cpuMs() - started) / count) * 1000;
	};
	const inputs = list.map((d) => ({ raw: Buffer.from(d.body), headers: d.headers }));
	const checkUs = time((_d, i) => {
		const verdict = checkDelivery({
			raw: inputs[i].raw,
			parsed: undefined,
			headers: inputs[i].headers,
			secret: SECRET,
			timestampedSignature: false,
			toleranceSeconds: 300,
			nowMs: Date.now(),
			selectedEvents: ['call.completed', 'lead.created'],
		});
		if (verdict.kind !== 'accept') throw new Error(`profile: delivery not accepted (${verdict.kind})`);
	});
	const fps: string[] = [];
	const claimUs = time((d) => {
		const claim = ledger.claim('t', d.id, Date.now());
		if (claim.kind === 'new') fps.push(claim.fp);
	});
	let bytes = 0;
	const saveUs = time((_d, i) => {
		bytes = JSON.stringify({ 'node:InboundFlow Webhook': { deliveries: ledger.snapshot('t', fps[i], Date.now()) } }).length;
	});
	const settleUs = time((_d, i) => ledger.settle('t', fps[i], true));
	const rows: IDataObject[] = [
		{ step: 'checks: HMAC-SHA256 of the raw body, timestamp window, JSON parse, event filter', perDeliveryMs: Number((checkUs / 1000).toFixed(3)) },
		{ step: 'ledger: claim + settle', perDeliveryMs: Number(((claimUs + settleUs) / 1000).toFixed(3)) },
		{ step: `ledger: one save (snapshot + JSON, ${remembered + count} keys, ${Math.round(bytes / 1024)} kB; at most one per request in flight)`, perDeliveryMs: Number((saveUs / 1000).toFixed(3)) },
	];
	// n8n's own isolate, from the n8n install this bench runs.
	try {
		const n8nRoot = path.resolve(path.dirname(fs.realpathSync(bin)), '..');
		const runtimePath = require.resolve('@n8n/expression-runtime', { paths: [n8nRoot] });
		const runtime = (await import(runtimePath)) as {
			IsolatedVmBridge: new (config: object) => { initialize(): Promise<void>; dispose(): Promise<void> };
		};
		const times: number[] = [];
		for (let i = 0; i < 21; i++) {
			const started = cpuMs();
			const bridge = new runtime.IsolatedVmBridge({ timeout: 5000, memoryLimit: 128 });
			await bridge.initialize();
			await bridge.dispose();
			if (i > 0) times.push(cpuMs() - started);
		}
		rows.push({ step: "n8n 2.x: one expression isolate (IsolatedVmBridge create + initialize + dispose), median of 20", perDeliveryMs: Number(percentile(times, 50).toFixed(2)) });
	} catch (error) {
		rows.push({ step: `n8n's expression isolate not measured: ${String(error).slice(0, 200)}`, perDeliveryMs: NaN });
	}
	return rows;
}

if (require.main === module && process.env.BENCH_WEBHOOK_PROFILE === '1') {
	profileDelivery(n8nBin()).then(
		(rows) => {
			for (const r of rows) process.stdout.write(`| ${String(r.step)} | ${String(r.perDeliveryMs)} |\n`);
		},
		(error: unknown) => {
			process.stderr.write(`${String(error)}\n`);
			process.exit(1);
		},
	);
} else if (require.main === module) {
	const say = (text: string) => process.stdout.write(`${text}\n`);
	webhookBench(say).then(
		(rows) => {
			const keys = rows.flatMap((r) => Object.keys(r)).filter((k, i, all) => all.indexOf(k) === i);
			const line = (cells: unknown[]) => `| ${cells.map((c) => String(c ?? '')).join(' | ')} |`;
			say([line(keys), line(keys.map(() => '---')), ...rows.map((r) => line(keys.map((k) => r[k])))].join('\n'));
		},
		(error: unknown) => {
			process.stderr.write(`${String(error)}\n`);
			process.exit(1);
		},
	);
}
