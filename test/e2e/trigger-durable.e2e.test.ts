// The polling trigger in a real n8n 2.x on its durable scheduler
// (N8N_SCHEDULER_ENABLED, N8N_SCHEDULER_POLL_TRIGGERS_ENABLED), with and without its
// durable poll cursors (N8N_POLLER_DURABLE_CURSORS_ENABLED): names as in n8n 2.41.1's
// @n8n/config (dist/configs/scheduler.config.js). Skipped for n8n 1.x, which has neither.
// With durable cursors the node's static data is a private copy per poll, and n8n drops
// the copy of the activation poll when that poll returns nothing: the baseline the trigger
// takes at activation is not kept. Records created between the activation and the first
// scheduled poll must still reach the workflow, once.
// Issue 23:
//  - settings changed while active and changed back (the editor's save + publish), with a
//    first-activation backfill (durable cursors): every record the settings active at its
//    creation select reaches the workflow once, nothing emitted before comes again;
//  - on both engines, a 10-second schedule of six poll times (and, without durable cursors,
//    an every-minute and a custom-cron trigger alongside), a backlog added while n8n is
//    down, and a restart: the durable
//    scheduler fires the missed ticks together, each poll from the position stored before
//    the other's execution was stored; every record must still reach the workflow once,
//    and no execution may fail.

import { FULL_KEY, startEmulator, type InboundFlowEmulator } from '../../emulator/server';
import { freePort, N8n, n8nInstalls, startSink, type Sink } from './n8n';
import { credentials, EVERY_10_SECONDS, pollingToSinkWorkflow } from './workflows';

const SCHEDULER = { N8N_SCHEDULER_ENABLED: 'true', N8N_SCHEDULER_POLL_TRIGGERS_ENABLED: 'true' };
const ENGINES = [
	{ engine: 'durable scheduler with durable poll cursors', env: { ...SCHEDULER, N8N_POLLER_DURABLE_CURSORS_ENABLED: 'true' }, cursors: true },
	{ engine: 'durable scheduler without durable poll cursors', env: SCHEDULER, cursors: false },
];
const WORKFLOW_ID = 'InbFlowDurable01';
const SETTINGS_ID = 'InbFlowDurable08';
const LEADS = '/v1/leads';
const CALLS = '/v1/calls';
type Resource = 'calls' | 'leads' | 'appointments' | 'contacts';
const EVENT_OF: Record<Resource, string> = { calls: 'newCall', leads: 'newLead', appointments: 'newAppointment', contacts: 'newContact' };
/**
 * Trigger workflows with a backlog: four on a 10-second schedule, one per event; one
 * polling every minute and one on a custom cron, both beside a 10-second one.
 */
const BACKLOG: Array<{ resource: Resource; id: string; event: string; sinkPath: string; schedule: string; pollTimes: Record<string, unknown> }> = [
	...(['calls', 'leads', 'appointments', 'contacts'] as const).map((resource, i) => ({
		resource,
		id: `InbFlowDurable0${i + 2}`,
		event: EVENT_OF[resource],
		sinkPath: `/backlog/${resource}`,
		schedule: '10-second (6 poll times)',
		pollTimes: EVERY_10_SECONDS,
	})),
	{ resource: 'leads', id: 'InbFlowDurable06', event: 'newLead', sinkPath: '/backlog/leads-every-minute', schedule: 'every minute', pollTimes: { item: [{ mode: 'everyMinute' }] } },
	{
		resource: 'calls',
		id: 'InbFlowDurable07',
		event: 'newCall',
		sinkPath: '/backlog/calls-cron',
		// n8n refuses a poll cron firing more than once a minute ("The polling interval is too
		// short"): a 6-field cron with anything but one second in its first field. A 5-field one.
		schedule: 'custom cron * * * * *',
		pollTimes: { item: [{ mode: 'custom', cronExpression: '* * * * *' }] },
	},
];
/** The trigger with On Activation, Also Emit the Last 1 Hours. */
function withBackfill(workflow: Record<string, unknown>): Record<string, unknown> {
	for (const node of workflow.nodes as Array<{ name: string; parameters: Record<string, unknown> }>) {
		if (node.name === 'Trigger') node.parameters.options = { firstRunHours: 1 };
	}
	return workflow;
}
/**
 * The backlog triggers an engine runs: the 10-second ones on both; the every-minute and cron
 * ones (up to a minute per poll, so slower to drain) on the engine without durable cursors only.
 */
const backlogOn = (cursors: boolean) => BACKLOG.filter((b) => !cursors || b.pollTimes === EVERY_10_SECONDS);

jest.setTimeout(480_000);

const installs = n8nInstalls().filter((install) => Number(install.version.split('.')[0]) >= 2);

(installs.length ? describe.each(installs) : describe.skip.each([{ version: 'none', bin: '' }]))('n8n $version', ({ bin }) => {
	describe.each(ENGINES)('$engine', ({ env, cursors }) => {
		let emulator: InboundFlowEmulator;
		let sink: Sink;
		let n8n: N8n;
		let started = false;
		const ensureStarted = async () => {
			if (started) return;
			await n8n.start();
			await n8n.setupOwner();
			started = true;
		};

		beforeAll(async () => {
			emulator = await startEmulator({ port: await freePort(), seed: { leads: 5, calls: 5 } });
			sink = await startSink();
			n8n = await N8n.create({ bin, env });
			await n8n.importCredentials(credentials(emulator.url, FULL_KEY, 'whsec_durable_secret_00'));
			await n8n.importWorkflows([
				...BACKLOG.map((b) =>
					pollingToSinkWorkflow({
						id: b.id,
						name: `InboundFlow durable scheduler, ${b.schedule}: ${b.event}`,
						event: b.event,
						pollTimes: b.pollTimes,
						sinkUrl: `${sink.url}${b.sinkPath}`,
					}),
				),
				withBackfill(
					pollingToSinkWorkflow({
						id: SETTINGS_ID,
						name: 'InboundFlow durable scheduler, settings changed and changed back',
						event: 'newCall',
						pollTimes: EVERY_10_SECONDS,
						sinkUrl: `${sink.url}/settings`,
					}),
				),
			]);
		});

		afterAll(async () => {
			await n8n?.stop();
			await sink?.close();
			await emulator?.stop();
		});

		(cursors ? it : it.skip)('records created between the activation poll and the first scheduled poll are emitted once', async () => {
			// Once a minute, at the second of the import: the start and the activation take well
			// under a minute, so the first scheduled poll comes after the records are created.
			const second = new Date().getUTCSeconds();
			await n8n.importWorkflows([
				pollingToSinkWorkflow({
					id: WORKFLOW_ID,
					name: 'InboundFlow durable cursors',
					event: 'newLead',
					pollTimes: { item: [{ mode: 'custom', cronExpression: `${second} * * * * *` }] },
					sinkUrl: `${sink.url}/leads`,
				}),
			]);
			await ensureStarted();
			emulator.clearLog();
			await n8n.activate(WORKFLOW_ID);

			// The activation poll takes the baseline: the server's time, then what exists.
			const deadline = Date.now() + 60_000;
			while (Date.now() < deadline && emulator.apiRequests({ path: LEADS }).length < 2) {
				await new Promise((r) => setTimeout(r, 100));
			}
			await new Promise((r) => setTimeout(r, 1000));
			const created = [
				emulator.add('leads', {}).id,
				emulator.add('leads', {}).id,
				// Listed late: created_at before the baseline of a second poll would be.
				emulator.add('leads', { created_at: new Date(Date.now() - 500).toISOString() }).id,
			];
			// The premise: only the activation poll has read the leads so far.
			expect(emulator.apiRequests({ path: LEADS }).map((r) => r.status)).toEqual([200, 200]);

			await sink.waitFor(created.length, 100_000);
			const scheduledPolls = emulator.apiRequests({ path: LEADS }).length - 2;
			// Once: the next scheduled poll (a minute later) emits nothing more.
			const readsSoFar = emulator.apiRequests({ path: LEADS }).length;
			const next = Date.now() + 90_000;
			while (Date.now() < next && emulator.apiRequests({ path: LEADS }).length === readsSoFar) {
				await new Promise((r) => setTimeout(r, 250));
			}
			await new Promise((r) => setTimeout(r, 3000));
			const received = sink.received.filter((entry) => entry.path === '/leads').map((entry) => String(entry.body.id));
			// The premise that the durable cursors were on: n8n keeps the trigger's position in poller_state.
			const cursors = await n8n.sqlite<{ n: number }>(`SELECT count(*) AS n FROM poller_state WHERE workflowId = '${WORKFLOW_ID}'`);
			expect({
				durableCursors: Number(cursors[0]?.n) > 0,
				scheduledPolls: scheduledPolls > 0,
				nextPollRan: emulator.apiRequests({ path: LEADS }).length > readsSoFar,
				received: received.sort(),
			}).toEqual({
				durableCursors: true,
				scheduledPolls: true,
				nextPollRan: true,
				received: created.sort(),
			});
			await n8n.request('POST', `/rest/workflows/${WORKFLOW_ID}/deactivate`, {});
		});

		// On the engine with durable cursors only (where n8n drops the activation poll's data);
		// measured passing without them too (README, engine table).
		(cursors ? it : it.skip)('settings changed while active and changed back: each record the settings active at its creation select, once', async () => {
			await ensureStarted();
			const got = () => sink.received.filter((entry) => entry.path === '/settings').map((entry) => String(entry.body.id));
			const reads = () => emulator.apiRequests({ path: CALLS }).length;
			const waitUntil = async (done: () => boolean, ms: number) => {
				const until = Date.now() + ms;
				while (Date.now() < until && !done()) await new Promise((r) => setTimeout(r, 250));
			};
			const activationPolls: number[] = [];
			/** Saves the trigger with these filters and publishes it, as the editor does; waits for the activation poll. */
			const publishWith = async (filters: Record<string, string> | undefined) => {
				if (filters !== undefined) {
					const workflow = await n8n.request<{ versionId: string; nodes: Array<{ name: string; parameters: Record<string, unknown> }>; connections: unknown }>(
						'GET',
						`/rest/workflows/${SETTINGS_ID}`,
					);
					const nodes = workflow.data.nodes.map((node) => {
						if (node.name !== 'Trigger') return node;
						const parameters = { ...node.parameters };
						if (Object.keys(filters).length) parameters.newCallFilters = filters;
						else delete parameters.newCallFilters;
						return { ...node, parameters };
					});
					const saved = await n8n.request('PATCH', `/rest/workflows/${SETTINGS_ID}`, {
						versionId: workflow.data.versionId,
						nodes,
						connections: workflow.data.connections,
					});
					expect(saved.status).toBe(200);
				}
				const before = reads();
				await n8n.activate(SETTINGS_ID);
				// The activation poll takes a new baseline (the server's time, then what exists).
				await waitUntil(() => reads() >= before + 2, 30_000);
				activationPolls.push(reads() - before);
				await new Promise((r) => setTimeout(r, 1500));
			};
			const add = (statuses: string[]) => statuses.map((status) => ({ id: emulator.add('calls', { status }).id, status }));

			// The first activation emits the calls of the last hour (On Activation, Also Emit the Last 1 Hours).
			emulator.add('calls', { status: 'completed', created_at: new Date(Date.now() - 30 * 60_000).toISOString() });
			const backfill = emulator.records.calls.filter((c) => Date.parse(c.created_at) > Date.now() - 55 * 60_000).map((c) => ({ id: c.id, status: String(c.status) }));
			await publishWith(undefined); // every call
			await waitUntil(() => backfill.every((c) => got().includes(c.id)), 30_000);
			const first = add(['completed', 'failed', 'completed']);
			await waitUntil(() => first.every((c) => got().includes(c.id)), 60_000);
			await publishWith({ status: 'completed' }); // completed calls only
			const second = add(['completed', 'failed', 'completed']);
			await waitUntil(() => second.filter((c) => c.status === 'completed').every((c) => got().includes(c.id)), 60_000);
			await publishWith({}); // every call again
			const third = add(['failed', 'completed']);
			await waitUntil(() => third.every((c) => got().includes(c.id)), 60_000);
			await new Promise((r) => setTimeout(r, 25_000)); // more ticks: nothing may come twice, nothing old may come
			await n8n.request('POST', `/rest/workflows/${SETTINGS_ID}/deactivate`, {});

			const received = got();
			// The changes never backfill: nothing emitted before comes again.
			const expected = [...backfill, ...first, ...second.filter((c) => c.status === 'completed'), ...third].map((c) => c.id);
			const statuses = await n8n.sqlite<{ status: string; n: number }>(
				`SELECT status, COUNT(*) AS n FROM execution_entity WHERE workflowId = '${SETTINGS_ID}' GROUP BY status`,
			);
			process.stdout.write(
				`\n[${cursors ? 'durable cursors' : 'durable scheduler'}: settings changed and changed back] expected ${expected.length}, ` +
					`emitted ${received.length}, activation polls (requests) ${JSON.stringify(activationPolls)}, executions ${JSON.stringify(statuses)}\n`,
			);
			expect({
				missed: expected.filter((id) => !received.includes(id)),
				duplicated: received.filter((id, i) => received.indexOf(id) !== i),
				unexpected: received.filter((id) => !expected.includes(id)),
				failed: statuses.filter((row) => row.status !== 'success').reduce((n, row) => n + Number(row.n), 0),
			}).toEqual({ missed: [], duplicated: [], unexpected: [], failed: 0 });
		});

		it('a backlog added while n8n is down, a restart (10-second, every-minute and cron schedules): every record once, no failed execution', async () => {
			await ensureStarted();
			const backlog = backlogOn(cursors);
			const got = (sinkPath: string) => sink.received.filter((entry) => entry.path === sinkPath).map((entry) => String(entry.body.id));
			const reads = (resource: string) => emulator.apiRequests({ path: `/v1/${resource}` });
			const triggersOn = (resource: string) => backlog.filter((b) => b.resource === resource).length;
			const before = new Map(backlog.map((b) => [b.resource, reads(b.resource).length]));
			for (const b of backlog) await n8n.activate(b.id);
			// Every activation poll: two reads per trigger (the server's time, then what exists).
			const deadline = Date.now() + 90_000;
			while (Date.now() < deadline && backlog.some((b) => reads(b.resource).length < before.get(b.resource)! + 2 * triggersOn(b.resource))) {
				await new Promise((r) => setTimeout(r, 100));
			}
			await new Promise((r) => setTimeout(r, 3000));
			const expected = new Map<Resource, string[]>(backlog.map((b) => [b.resource, []]));
			for (const resource of expected.keys()) for (let i = 0; i < 5; i++) expected.get(resource)!.push(emulator.add(resource, {}).id);
			const waitFor = async (ms: number, triggers = backlog) => {
				const until = Date.now() + ms;
				const done = () => triggers.every((b) => expected.get(b.resource)!.every((id) => got(b.sinkPath).includes(id)));
				while (Date.now() < until && !done()) await new Promise((r) => setTimeout(r, 250));
			};
			// The 10-second triggers only: what the once-a-minute ones have not emitted yet joins their backlog.
			await waitFor(60_000, backlog.filter((b) => b.pollTimes === EVERY_10_SECONDS));

			await n8n.stop();
			// The backlog: 150 of each, 30 of them listed late (created_at up to 60 s back).
			for (const resource of expected.keys()) {
				for (let i = 0; i < 150; i++) {
					const late: Record<string, string> = i % 5 === 0 ? { created_at: new Date(Date.now() - Math.random() * 60_000).toISOString() } : {};
					expected.get(resource)!.push(emulator.add(resource, late).id);
				}
			}
			await new Promise((r) => setTimeout(r, 25_000)); // ticks missed while n8n is down
			const restartedAt = Date.now();
			await n8n.start();
			await waitFor(150_000);
			await new Promise((r) => setTimeout(r, 30_000)); // three more ticks: nothing may come twice
			const ids = backlog.map((b) => `'${b.id}'`).join(', ');
			const statuses = await n8n.sqlite<{ status: string; n: number }>(
				`SELECT status, COUNT(*) AS n FROM execution_entity WHERE workflowId IN (${ids}) GROUP BY status`,
			);
			const rows = backlog.map((b) => {
				const received = got(b.sinkPath);
				const want = expected.get(b.resource)!;
				return {
					trigger: `${b.event}, ${b.schedule}`,
					expected: want.length,
					emitted: received.length,
					missed: want.filter((id) => !received.includes(id)).length,
					duplicated: received.length - new Set(received).size,
				};
			});
			const firstPagesAfterRestart = Object.fromEntries(
				[...expected.keys()].map((resource) => [resource, reads(resource).filter((r) => r.at >= restartedAt && !r.query.cursor).length]),
			);
			const failedExecutions = statuses.filter((row) => row.status !== 'success').reduce((n, row) => n + Number(row.n), 0);
			process.stdout.write(
				`\n[${cursors ? 'durable scheduler + durable cursors' : 'durable scheduler, no durable cursors'}: restart with a backlog]\n` +
					rows.map((r) => `  ${JSON.stringify(r)}`).join('\n') +
					`\n  first pages after the restart: ${JSON.stringify(firstPagesAfterRestart)}\n  executions: ${JSON.stringify(statuses)}\n`,
			);
			expect({ rows, failedExecutions }).toEqual({
				rows: backlog.map((b) => ({ trigger: `${b.event}, ${b.schedule}`, expected: 155, emitted: 155, missed: 0, duplicated: 0 })),
				failedExecutions: 0,
			});
		});
	});
});
