// The polling trigger in a real n8n 2.x with its durable poll cursors on
// (N8N_SCHEDULER_ENABLED, N8N_SCHEDULER_POLL_TRIGGERS_ENABLED, N8N_POLLER_DURABLE_CURSORS_ENABLED).
// There the node's static data is a private copy per poll, and n8n drops the copy of the
// activation poll when that poll returns nothing: the baseline the trigger takes at
// activation is not kept. Records created between the activation and the first scheduled
// poll must still reach the workflow, once. Skipped for n8n 1.x, which has no such setting.

import { FULL_KEY, startEmulator, type InboundFlowEmulator } from '../../emulator/server';
import { freePort, N8n, n8nInstalls, startSink, type Sink } from './n8n';
import { credentials, pollingToSinkWorkflow } from './workflows';

const DURABLE_CURSORS = {
	N8N_SCHEDULER_ENABLED: 'true',
	N8N_SCHEDULER_POLL_TRIGGERS_ENABLED: 'true',
	N8N_POLLER_DURABLE_CURSORS_ENABLED: 'true',
};
const WORKFLOW_ID = 'InbFlowDurable01';
const LEADS = '/v1/leads';

jest.setTimeout(300_000);

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
			const received = sink.received.map((entry) => String(entry.body.id));
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
	},
);
