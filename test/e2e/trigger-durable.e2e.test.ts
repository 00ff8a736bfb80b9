// The polling trigger in a real n8n 2.x with its durable poll cursors on
// (N8N_SCHEDULER_ENABLED, N8N_SCHEDULER_POLL_TRIGGERS_ENABLED, N8N_POLLER_DURABLE_CURSORS_ENABLED).
// There the node's static data is a private copy per poll, and n8n drops the copy of the
// activation poll when that poll returns nothing: the baseline the trigger takes at
// activation is not kept. Records created between the activation and the first scheduled
// poll must still reach the workflow, once. Skipped for n8n 1.x, which has no such setting.
// Then (issue 23) a 10-second schedule of six poll times, a backlog added while n8n is
// down, and a restart: n8n's durable scheduler fires the missed ticks together, each poll
// from the cursor stored before the other's execution was stored; every record must still
// reach the workflow once, and no execution may fail.

import { FULL_KEY, startEmulator, type InboundFlowEmulator } from '../../emulator/server';
import { freePort, N8n, n8nInstalls, startSink, type Sink } from './n8n';
import { credentials, EVERY_10_SECONDS, pollingToSinkWorkflow } from './workflows';

const DURABLE_CURSORS = {
	N8N_SCHEDULER_ENABLED: 'true',
	N8N_SCHEDULER_POLL_TRIGGERS_ENABLED: 'true',
	N8N_POLLER_DURABLE_CURSORS_ENABLED: 'true',
};
const WORKFLOW_ID = 'InbFlowDurable01';
const LEADS = '/v1/leads';
/** Four trigger workflows on a 10-second schedule, one per event, each with a backlog. */
const BACKLOG = (['calls', 'leads', 'appointments', 'contacts'] as const).map((resource, i) => ({
	resource,
	id: `InbFlowDurable0${i + 2}`,
	event: { calls: 'newCall', leads: 'newLead', appointments: 'newAppointment', contacts: 'newContact' }[resource],
	sinkPath: `/backlog/${resource}`,
}));

jest.setTimeout(420_000);

const installs = n8nInstalls().filter((install) => Number(install.version.split('.')[0]) >= 2);

(installs.length ? describe.each(installs) : describe.skip.each([{ version: 'none', bin: '' }]))(
	'n8n $version with durable poll cursors',
	({ bin }) => {
		let emulator: InboundFlowEmulator;
		let sink: Sink;
		let n8n: N8n;

		beforeAll(async () => {
			emulator = await startEmulator({ port: await freePort(), seed: { leads: 5 } });
			sink = await startSink();
			n8n = await N8n.create({ bin, env: DURABLE_CURSORS });
			await n8n.importCredentials(credentials(emulator.url, FULL_KEY, 'whsec_durable_secret_00'));
			await n8n.importWorkflows(
				BACKLOG.map((b) =>
					pollingToSinkWorkflow({
						id: b.id,
						name: `InboundFlow durable cursors, 10-second schedule: ${b.event}`,
						event: b.event,
						pollTimes: EVERY_10_SECONDS,
						sinkUrl: `${sink.url}${b.sinkPath}`,
					}),
				),
			);
		});

		afterAll(async () => {
			await n8n?.stop();
			await sink?.close();
			await emulator?.stop();
		});

		it('records created between the activation poll and the first scheduled poll are emitted once', async () => {
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
			await n8n.start();
			await n8n.setupOwner();
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
		});

		it('a 10-second schedule, a backlog added while n8n is down, a restart: every record once, no failed execution', async () => {
			const got = (sinkPath: string) => sink.received.filter((entry) => entry.path === sinkPath).map((entry) => String(entry.body.id));
			const reads = (resource: string) => emulator.apiRequests({ path: `/v1/${resource}` });
			for (const b of BACKLOG) await n8n.activate(b.id);
			const deadline = Date.now() + 90_000;
			while (Date.now() < deadline && BACKLOG.some((b) => reads(b.resource).length < 2)) await new Promise((r) => setTimeout(r, 100));
			await new Promise((r) => setTimeout(r, 1000));
			const expected = new Map<string, string[]>(BACKLOG.map((b) => [b.resource, []]));
			for (const b of BACKLOG) for (let i = 0; i < 5; i++) expected.get(b.resource)!.push(emulator.add(b.resource, {}).id);
			const waitFor = async (ms: number) => {
				const until = Date.now() + ms;
				const done = () => BACKLOG.every((b) => expected.get(b.resource)!.every((id) => got(b.sinkPath).includes(id)));
				while (Date.now() < until && !done()) await new Promise((r) => setTimeout(r, 250));
			};
			await waitFor(60_000);

			await n8n.stop();
			// The backlog: 150 of each, 30 of them listed late (created_at up to 60 s back).
			for (const b of BACKLOG) {
				for (let i = 0; i < 150; i++) {
					const late: Record<string, string> = i % 5 === 0 ? { created_at: new Date(Date.now() - Math.random() * 60_000).toISOString() } : {};
					expected.get(b.resource)!.push(emulator.add(b.resource, late).id);
				}
			}
			await new Promise((r) => setTimeout(r, 25_000)); // ticks missed while n8n is down
			const restartedAt = Date.now();
			await n8n.start();
			await waitFor(150_000);
			await new Promise((r) => setTimeout(r, 30_000)); // three more ticks: nothing may come twice
			const ids = BACKLOG.map((b) => `'${b.id}'`).join(', ');
			const statuses = await n8n.sqlite<{ status: string; n: number }>(
				`SELECT status, COUNT(*) AS n FROM execution_entity WHERE workflowId IN (${ids}) GROUP BY status`,
			);
			const rows = BACKLOG.map((b) => {
				const received = got(b.sinkPath);
				const want = expected.get(b.resource)!;
				const firstPages = reads(b.resource).filter((r) => r.at >= restartedAt && !r.query.cursor).length;
				return {
					resource: b.resource,
					expected: want.length,
					emitted: received.length,
					missed: want.filter((id) => !received.includes(id)).length,
					duplicated: received.length - new Set(received).size,
					firstPagesAfterRestart: firstPages,
				};
			});
			const failedExecutions = statuses.filter((row) => row.status !== 'success').reduce((n, row) => n + Number(row.n), 0);
			process.stdout.write(
				`\n[durable cursors, 10-second schedule (6 poll times), restart with a backlog]\n` +
					rows.map((r) => `  ${JSON.stringify(r)}`).join('\n') +
					`\n  executions: ${JSON.stringify(statuses)}\n`,
			);
			expect({ rows: rows.map((r) => ({ resource: r.resource, expected: r.expected, emitted: r.emitted, missed: r.missed, duplicated: r.duplicated })), failedExecutions }).toEqual({
				rows: BACKLOG.map((b) => ({ resource: b.resource, expected: 155, emitted: 155, missed: 0, duplicated: 0 })),
				failedExecutions: 0,
			});
		});
	},
);
