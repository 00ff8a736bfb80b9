// Issue 21 point 4, reproduction: webhook processors that do not stop on SIGTERM after a
// burst. Starts Postgres, Redis and an n8n 2.41.1 queue cluster (main + 2 workers) once,
// then per round: one webhook processor for the InboundFlow trigger and one for n8n's own
// Webhook node (each → HTTP Request to a sink), a burst of distinct signed deliveries to
// each at once (some sent twice at the same moment, some aborted by the client), then
// SIGTERM to both; records whether each stopped by itself.
//
//   node build/bench/sigterm-repro.js          (INBOUNDFLOW_N8N_BIN set, as for the bench)
//   REPRO_ROUNDS (10), REPRO_BURST (300), REPRO_CONCURRENCY (25), REPRO_COPIES (0.05: share
//   sent twice at once), REPRO_ABORTS (0.05: share aborted by the sender after 5–300 ms),
//   REPRO_LAG_MS (0: Redis answers the webhook processors' queue client that much late, through
//   startLaggingProxy), REPRO_RETENTION (n8n: n8n's default job retention, 0 kept; suite:
//   QUEUE_JOB_RETENTION).
import { performance } from 'node:perf_hooks';

import { startSink } from '../test/e2e/n8n';
import {
	createLoadTargets,
	markdownTable,
	N8N_DEFAULT_JOB_RETENTION,
	QUEUE_JOB_RETENTION,
	QueueCluster,
	signedDelivery,
	sleep,
	startLaggingProxy,
	stopTimed,
	triggerUrl,
	type LoadTarget,
	type N8nProcess,
} from '../test/e2e/queue';
import { Services } from '../test/e2e/services';

const SECRET = 'whsec_sigterm_repro_secret_1';
const ROUNDS = Number(process.env.REPRO_ROUNDS ?? 10);
const BURST = Number(process.env.REPRO_BURST ?? 300);
const CONCURRENCY = Number(process.env.REPRO_CONCURRENCY ?? 25);
const COPIES = Number(process.env.REPRO_COPIES ?? 0.05);
const ABORTS = Number(process.env.REPRO_ABORTS ?? 0.05);
const LAG_MS = Number(process.env.REPRO_LAG_MS ?? 0);
const RETENTION = process.env.REPRO_RETENTION === 'suite' ? 'suite' : 'n8n';

const say = (text: string) => process.stdout.write(`${text}\n`);

interface BurstFigures {
	sent: number;
	answers: string;
	ms: number;
}

async function send(url: string, deliveryId: string, abortAfterMs?: number): Promise<string> {
	const delivery = signedDelivery(SECRET, deliveryId);
	try {
		const response = await fetch(url, {
			method: 'POST',
			body: delivery.body,
			headers: delivery.headers,
			signal: AbortSignal.timeout(abortAfterMs ?? 30_000),
		});
		await response.text();
		return String(response.status);
	} catch {
		return abortAfterMs === undefined ? 'error' : 'aborted';
	}
}

async function burst(processor: string, target: LoadTarget, tag: string): Promise<BurstFigures> {
	const started = performance.now();
	const answers: Record<string, number> = {};
	let next = 0;
	await Promise.all(
		Array.from({ length: CONCURRENCY }, async () => {
			while (next < BURST) {
				const i = next++;
				const id = `repro-${tag}-${i}`;
				const url = triggerUrl(processor, target.webhookId);
				const abort = Math.random() < ABORTS ? 5 + Math.random() * 295 : undefined;
				const sends = [send(url, id, abort)];
				if (Math.random() < COPIES) sends.push(send(url, id));
				for (const answer of await Promise.all(sends)) answers[answer] = (answers[answer] ?? 0) + 1;
			}
		}),
	);
	return {
		sent: BURST,
		answers: Object.entries(answers)
			.map(([a, n]) => `${n}×${a}`)
			.join(' '),
		ms: Math.round(performance.now() - started),
	};
}

async function main(): Promise<void> {
	const services = await Services.start();
	const sink = await startSink();
	const retention = RETENTION === 'suite' ? QUEUE_JOB_RETENTION : N8N_DEFAULT_JOB_RETENTION;
	const cluster = await QueueCluster.start({ services, webhooks: 0, env: retention });
	const proxy = LAG_MS > 0 ? await startLaggingProxy(services.redis, 0) : undefined;
	const rows: Array<Record<string, unknown>> = [];
	try {
		const signing = await cluster.rest.createCredential('InboundFlow webhook secret', 'inboundFlowWebhookApi', { signingSecret: SECRET });
		const redisPort = String(proxy?.port ?? services.redis.port);
		const processors: Record<'ours' | 'n8n', N8nProcess> = {
			ours: await cluster.addWebhookProcessor('webhook-ours', { QUEUE_BULL_REDIS_PORT: redisPort }),
			n8n: await cluster.addWebhookProcessor('webhook-n8n', { QUEUE_BULL_REDIS_PORT: redisPort }),
		};
		await Promise.all(Object.values(processors).map((p) => p.start()));
		const targets = await createLoadTargets(
			cluster.rest,
			Object.values(processors).map((p) => p.url),
			{ signingCredentialId: signing, sinkUrl: sink.url, prefix: 'repro' },
		);
		say(
			`[repro] ${ROUNDS} rounds of ${BURST} deliveries, ${CONCURRENCY} in flight, ${COPIES * 100} % sent twice, ` +
				`${ABORTS * 100} % aborted, Redis answers the queue client ${LAG_MS} ms late, job retention ${RETENTION} (${JSON.stringify(retention)})`,
		);
		for (let round = 1; round <= ROUNDS; round++) {
			if (round > 1) {
				if (proxy) proxy.delayMs = 0;
				await Promise.all(Object.values(processors).map((p) => p.start()));
			}
			if (proxy) proxy.delayMs = LAG_MS;
			const tag = `${round}-${Date.now().toString(36)}`;
			const bursts = await Promise.all(
				(['ours', 'n8n'] as const).map(async (node) => [node, await burst(processors[node].url, targets[node], `${node}-${tag}`)] as const),
			);
			// Let the workers finish what was enqueued (the sink goes quiet), then stop both.
			let seen = -1;
			while (sink.received.length !== seen) {
				seen = sink.received.length;
				await sleep(3000);
			}
			const stops = await Promise.all((['ours', 'n8n'] as const).map(async (node) => [node, await stopTimed(processors[node], 30_000)] as const));
			for (const [node, figures] of bursts) {
				const stop = stops.find(([n]) => n === node)![1];
				const hung = stop.killed || stop.shutdownTimedOut || stop.code !== 0;
				const row = { round, node, ...figures, exitMs: stop.exitMs, code: stop.code, waitedFor: stop.activeExecutionsWaitedFor, timedOut: stop.shutdownTimedOut, hung };
				rows.push(row);
				say(`[repro] ${JSON.stringify(row)}`);
			}
		}
	} finally {
		say(`\n${markdownTable(rows)}`);
		for (const node of ['ours', 'n8n']) {
			const mine = rows.filter((r) => r.node === node);
			say(`[repro] ${node}: hung ${mine.filter((r) => r.hung).length} of ${mine.length} stops`);
		}
		await cluster.stop();
		await proxy?.close();
		await services.stop();
		await sink.close();
	}
}

main().catch((error: unknown) => {
	process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
	process.exitCode = 1;
});
