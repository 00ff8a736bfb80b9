// Queue-mode table of `npm run bench`: n8n 2.41.1 as main + 2 workers + 2 webhook
// processors on Postgres and Redis (test/e2e/queue.ts), the emulator as the API.
//   1. Two Return All workflows on the two workers, same key, the documented limit's
//      shape (60 requests per window, window shrunk to 6 s), documented headers only.
//   2. Webhook deliveries sent again later to the other processor, and 6 copies at once
//      (3 per processor), per duplicate-protection setup.
// Runs on its own too: node build/bench/queue.js (INBOUNDFLOW_N8N_BIN set).
import type { IDataObject } from 'n8n-workflow';

import { FULL_KEY, startEmulator } from '../emulator/server';
import { freePort, startSink } from '../test/e2e/n8n';
import {
	cryptoId,
	DEDUP_SETUPS,
	dedupTableRows,
	DELIVERIES_TABLE_SQL,
	type DedupSetup,
	type DedupTarget,
	markdownTable,
	measureReturnAll,
	QueueCluster,
	runDedupScenario,
	triggerUrl,
	waitRegistered,
	webhookDedupWorkflow,
	createSuiteCredentials,
} from '../test/e2e/queue';
import { Services } from '../test/e2e/services';

const CALLS = Number(process.env.BENCH_QUEUE_CALLS ?? 9000);
const ROUNDS = Number(process.env.BENCH_QUEUE_ROUNDS ?? 20);
const WINDOW = { limit: 60, windowMs: 6000 };
const SECRET = 'whsec_queue_bench_secret_1';

export interface QueueBench {
	returnAll: IDataObject[];
	webhooks: IDataObject[];
	startup: IDataObject;
}

export async function queueBench(say: (text: string) => void): Promise<QueueBench | undefined> {
	if (!process.env.INBOUNDFLOW_N8N_BIN) {
		say('(queue mode skipped: n8n not installed; run `npm test` once)');
		return undefined;
	}
	const started = Date.now();
	const services = await Services.start();
	const emulator = await startEmulator({ port: await freePort(), seed: { calls: CALLS }, logRequests: true });
	const sink = await startSink();
	let cluster: QueueCluster | undefined;
	try {
		services.psql(DELIVERIES_TABLE_SQL);
		cluster = await QueueCluster.start({ services });
		const startup = {
			servicesMs: services.timings.startMs,
			installMs: services.timings.installMs,
			...Object.fromEntries(cluster.all().map((p) => [`${p.name}Ms`, p.readyMs[0]])),
			totalMs: Date.now() - started,
		};
		const rest = cluster.rest;
		const { api, webhook: signing, redis, postgres } = await createSuiteCredentials(rest, services, FULL_KEY, emulator.url, SECRET);

		say(`Queue mode: Return All across two workers (${CALLS} calls each, ${WINDOW.limit} requests per ${WINDOW.windowMs / 1000} s, no Reset/Retry-After headers)…`);
		const r = await measureReturnAll(cluster, emulator, api, WINDOW);
		const returnAll: IDataObject[] = [
			...r.runs.map((run) => ({
				client: `Return All ${run.workflow} on ${run.worker}`,
				records: run.records,
				seconds: Number(run.seconds.toFixed(1)),
				requests: run.requests,
				rateLimited429: run.rateLimited429,
				shareWhileBoth: `${(run.shareWhileBoth * 100).toFixed(0)} %`,
				status: run.status,
			})),
			{
				client: 'both, same key',
				records: r.runs.reduce((n, run) => n + run.records, 0),
				seconds: Number(r.spanSeconds.toFixed(1)),
				minimumSeconds: r.minimumSeconds,
				requests: r.requests,
				rateLimited429: r.rateLimited429,
				shareOfCeiling: `${(r.shareOfCeiling * 100).toFixed(1)} %`,
			},
		];
		say(markdownTable(returnAll));

		const setups: DedupSetup[] = ['trigger', 'removeDuplicates', 'redis', 'postgres', 'removeDuplicatesAlone'];
		const targets: DedupTarget[] = [];
		for (const setup of setups) {
			const webhookId = cryptoId(`bench-${setup}-${Date.now()}`);
			const sinkPath = `/bench/${setup}`;
			const workflowId = await rest.createActive(
				webhookDedupWorkflow(setup, {
					webhookId,
					signingCredentialId: signing,
					sinkUrl: `${sink.url}${sinkPath}`,
					redisCredentialId: redis,
					postgresCredentialId: postgres,
				}),
			);
			targets.push({ setup, webhookId, sinkPath, workflowId });
		}
		await waitRegistered(targets.flatMap((t) => cluster!.webhooks.map((w) => triggerUrl(w.url, t.webhookId))));
		say(`\nQueue mode: webhook duplicates, ${ROUNDS} deliveries per scenario (${Object.values(DEDUP_SETUPS).join('; ')})…`);
		const rows = [];
		for (const scenario of ['laterOther', 'concurrent'] as const) {
			rows.push(
				...(await runDedupScenario(scenario, {
					rest,
					processors: cluster.webhooks.map((w) => w.url),
					targets,
					sink,
					secret: SECRET,
					rounds: ROUNDS,
				})),
			);
		}
		const webhooks = dedupTableRows(rows) as IDataObject[];
		say(markdownTable(webhooks));
		return { returnAll, webhooks, startup };
	} finally {
		await cluster?.stop();
		await services.stop();
		await sink.close();
		await emulator.stop();
	}
}

if (require.main === module) {
	queueBench((text) => process.stdout.write(`${text}\n`)).catch((error: unknown) => {
		process.stderr.write(`${String(error)}\n`);
		process.exit(1);
	});
}
