// The webhook trigger in a real n8n (single process, SQLite), beside n8n's own Webhook
// node: a delivery n8n cannot start is not answered 2xx (and its retry runs), a burst of
// concurrent deliveries runs each once and saves every key, redeliveries never run again.
import { savedHas } from '../../nodes/InboundFlowWebhookTrigger/ledger';
import { n8nInstalls } from './n8n';
import { delivery, fire, lockDatabase, post, startLoadInstance, type LoadInstance, type Target } from './webhook-load';

const ok = (status: number) => status >= 200 && status < 300;

async function settle(instance: LoadInstance, target: Target, expected: number): Promise<Map<string, number>> {
	const deadline = Date.now() + 60_000;
	while (Date.now() < deadline && [...instance.runs(target).values()].reduce((a, b) => a + b, 0) < expected) {
		await new Promise((r) => setTimeout(r, 250));
	}
	await new Promise((r) => setTimeout(r, 1500)); // anything extra (a duplicate run) arrives too
	return instance.runs(target);
}

// On n8n 1.x the write-locked test waits out n8n's lock timeouts (over a minute) and asserts
// little (1.x answers before it creates the run, for its own node too): it runs only with
// INBOUNDFLOW_WEBHOOK_LOAD_1X=1. The burst runs on every version (it found 1.x's unsaved
// end of a burst).
const FULL_1X = process.env.INBOUNDFLOW_WEBHOOK_LOAD_1X === '1';
describe.each(n8nInstalls())('webhook trigger under load, n8n $version', ({ bin, version }) => {
	let instance: LoadInstance;
	const major = Number(version.split('.')[0]);
	const itLocked = major >= 2 || FULL_1X ? it : it.skip;

	beforeAll(async () => {
		instance = await startLoadInstance(bin);
	}, 600_000);
	afterAll(async () => await instance?.stop(), 60_000);

	itLocked('a delivery n8n cannot start (its database write-locked) is answered like n8n’s Webhook node answers; no 2xx without a run on n8n 2.x, and the retry runs once', async () => {
		const ours = delivery();
		const theirs = delivery();
		const lock = await lockDatabase(instance.n8n);
		let first: Awaited<ReturnType<typeof post>>[];
		try {
			first = await Promise.all([post(instance.url('ours'), ours), post(instance.url('theirs'), theirs)]);
		} finally {
			await lock.release();
		}
		const [oursFirst, theirsFirst] = first;
		if (major >= 2) {
			// n8n 2.x answers onReceived only once it created the execution: 5xx here.
			expect(theirsFirst.status).toBeGreaterThanOrEqual(500);
			expect(oursFirst.status).toBeGreaterThanOrEqual(500);
		} else {
			// n8n 1.x answers before it creates the execution, for its own node too; a failed
			// static-data save is logged and answered 200 all the same.
			expect(ok(theirsFirst.status)).toBe(true);
			expect(ok(oursFirst.status)).toBe(true);
		}
		// The sender retries what was not answered 2xx.
		for (const [target, d, answer] of [['ours', ours, oursFirst], ['theirs', theirs, theirsFirst]] as const) {
			if (!ok(answer.status)) expect((await post(instance.url(target), d)).status).toBe(200);
		}
		const oursRuns = await settle(instance, 'ours', 1);
		const theirsRuns = await settle(instance, 'theirs', 1);
		if (major >= 2) {
			expect(oursRuns.get(ours.id) ?? 0).toBe(theirsRuns.get(theirs.id) ?? 0);
			expect(oursRuns.get(ours.id)).toBe(1);
		} else {
			// 1.x: whether a run whose creation met the lock survives is n8n's timing (its own
			// node's was lost in the runs measured); never more than once.
			expect(oursRuns.get(ours.id) ?? 0).toBeLessThanOrEqual(1);
			expect(theirsRuns.get(theirs.id) ?? 0).toBeLessThanOrEqual(1);
		}
		// Answered 2xx means remembered: sent again, it does not run again.
		expect((await post(instance.url('ours'), ours)).status).toBe(200);
		expect((await settle(instance, 'ours', 0)).get(ours.id) ?? 0).toBe(oursRuns.get(ours.id) ?? 0);
	}, 240_000);

	it('one delivery at a time: every key reaches n8n’s database (n8n 2.x clears the change flag when it builds the execution)', async () => {
		const list = Array.from({ length: 4 }, () => delivery());
		for (const d of list) expect((await post(instance.url('ours'), d)).status).toBe(200);
		const [row] = await instance.n8n.sqlite<{ staticData: string }>(
			"SELECT staticData FROM workflow_entity WHERE id = 'InbFlowLoadOurs1'",
		);
		const saved = (JSON.parse(row.staticData) as Record<string, { deliveries?: unknown }>)['node:InboundFlow Webhook']?.deliveries;
		expect(list.filter((d) => !savedHas(saved, d.id)).map((d) => d.id)).toEqual([]);
	}, 120_000);

	it('200 distinct deliveries, 50 at a time: each runs once, the saved static data holds every key, and redelivered none runs again', async () => {
		const before = [...instance.runs('ours').values()].reduce((a, b) => a + b, 0);
		const burst = Array.from({ length: 200 }, () => delivery());
		let { sent } = await fire(instance.url('ours'), burst, 50);
		// As a sender does: what was not answered 2xx is sent again (on a loaded machine n8n
		// may answer 503 "Database is not ready!" while its database ping lags).
		for (let round = 0; round < 5 && sent.some((s) => !ok(s.status)); round++) {
			const retry = new Set(sent.filter((s) => !ok(s.status)).map((s) => s.id));
			await new Promise((r) => setTimeout(r, 2000));
			const again = await fire(instance.url('ours'), burst.filter((d) => retry.has(d.id)), 10);
			sent = [...sent.filter((s) => !retry.has(s.id)), ...again.sent];
		}
		expect(sent.filter((s) => s.status !== 200)).toEqual([]);
		const runs = await settle(instance, 'ours', before + burst.length);
		expect(burst.filter((d) => runs.get(d.id) !== 1).map((d) => [d.id, runs.get(d.id)])).toEqual([]);

		// What n8n saved (read from its database, as a restart would load it).
		const [row] = await instance.n8n.sqlite<{ staticData: string }>(
			"SELECT staticData FROM workflow_entity WHERE id = 'InbFlowLoadOurs1'",
		);
		const saved = (JSON.parse(row.staticData) as Record<string, { deliveries?: unknown }>)['node:InboundFlow Webhook']?.deliveries;
		expect(burst.filter((d) => !savedHas(saved, d.id)).map((d) => d.id)).toEqual([]);

		const again = await fire(instance.url('ours'), burst, 50);
		expect(again.sent.filter((s) => s.status === 200).length).toBeGreaterThan(0);
		const after = await settle(instance, 'ours', 0);
		expect(burst.filter((d) => after.get(d.id) !== 1).map((d) => [d.id, after.get(d.id)])).toEqual([]);
	}, 600_000);
});
