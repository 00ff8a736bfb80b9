// `npm start`: the InboundFlow emulator with seeded data, a local sink standing in for
// a CRM and Slack, and a real n8n with this package, a credential pointing at the
// emulator and the example workflows active. Runs until Ctrl-C, then stops it all.
import os from 'node:os';
import path from 'node:path';

import { FULL_KEY, startEmulator } from '../../emulator/server';
import { N8n, startSink } from './n8n';
import { credentials, example, EXAMPLES, EXAMPLE_SINK } from './workflows';

const say = (text: string) => process.stdout.write(`${text}\n`);

async function main(): Promise<void> {
	const emulatorPort = Number(process.env.INBOUNDFLOW_EMULATOR_PORT ?? 4010);
	const sinkPort = Number(process.env.INBOUNDFLOW_SINK_PORT ?? new URL(EXAMPLE_SINK).port);
	const n8nPort = Number(process.env.N8N_PORT ?? 5678);
	const emulator = await startEmulator({
		port: emulatorPort,
		seed: { calls: 40, contacts: 25, leads: 20, appointments: 15 },
	});
	const sink = await startSink(sinkPort);
	let shown = 0;
	const report = setInterval(() => {
		for (; shown < sink.received.length; shown++) {
			const { path: where, body } = sink.received[shown];
			say(`  → ${where === '/slack/webhook' ? 'Slack' : 'CRM'} received: ${JSON.stringify(body)}`);
		}
	}, 1000);

	const userFolder = process.env.INBOUNDFLOW_N8N_USER_FOLDER ?? path.join(os.homedir(), '.cache', 'n8n-nodes-inboundflow', 'start-n8n');
	const n8n = await N8n.create({ port: n8nPort, userFolder });
	say('Importing the InboundFlow credential and the example workflows…');
	await n8n.importCredentials(credentials(emulator.url, FULL_KEY, 'whsec_local_demo_secret'));
	await n8n.importWorkflows(EXAMPLES.map((file) => example(file, sink.url)));
	for (const workflow of EXAMPLES.map((file) => example(file, sink.url))) await n8n.publish(String(workflow.id));
	say(`Starting n8n (user folder ${userFolder})…`);
	await n8n.start();

	// Something to watch: a new lead and a booked appointment now and then.
	const feed =
		process.env.INBOUNDFLOW_DEMO_FEED === '0'
			? undefined
			: setInterval(() => {
					emulator.add('leads', { status: 'new' });
					emulator.add('appointments', { status: 'booked' });
				}, 45_000);

	say('');
	say(`  n8n editor:          ${n8n.url}  (first visit: create the owner account)`);
	say(`  InboundFlow emulator: ${emulator.url}  (API key ${FULL_KEY})`);
	say(`  CRM/Slack stand-in:   ${sink.url}`);
	say('  Active workflows: "new lead → create contact in CRM", "appointment booked → Slack message" (poll every minute).');
	say(`  Add a lead yourself:  curl -X POST ${emulator.url}/__admin/records/leads -d '{"caller_name":"Ada"}'`);
	say('  Ctrl-C stops everything.');
	say('');

	let stopping = false;
	const stop = async () => {
		if (stopping) return;
		stopping = true;
		say('Stopping n8n, the emulator and the sink…');
		clearInterval(report);
		if (feed) clearInterval(feed);
		await n8n.stop();
		await sink.close();
		await emulator.stop();
		process.exit(0);
	};
	process.on('SIGINT', () => void stop());
	process.on('SIGTERM', () => void stop());
}

main().catch((error: unknown) => {
	process.stderr.write(`npm start failed: ${error instanceof Error ? error.message : String(error)}\n`);
	process.exit(1);
});
