// `npm start`: the InboundFlow emulator with seeded data, a local sink standing in for
// a CRM and Slack, and a real n8n with this package, a credential pointing at the
// emulator and the example workflows. Runs until a stop signal (Ctrl-C, SIGTERM from a
// process manager or an IDE, SIGHUP when the terminal closes), then stops it all.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { buildWebhook, FULL_KEY, startEmulator, type InboundFlowEmulator } from '../../emulator/server';
import { N8n, startSink, type Sink } from './n8n';
import {
	ACTIVE_EXAMPLES,
	credentials,
	example,
	EXAMPLE_SINK,
	EXAMPLE_WEBHOOK_ID,
	EXAMPLES,
} from './workflows';

const SIGNING_SECRET = 'whsec_local_demo_secret';
/** How long n8n gets to finish running executions when stopped (its default is 30 s). */
const SHUTDOWN_SECONDS = '5';
const FEED_INTERVAL_MS = Number(process.env.INBOUNDFLOW_DEMO_FEED_MS ?? 45_000);

const say = (text: string) => process.stdout.write(`${text}\n`);

/** A problem the user can fix, told in one line without a stack trace. */
class UserFacingError extends Error {}

interface PortSetting {
	what: string;
	env: string;
	fallback: number;
}

const PORTS: PortSetting[] = [
	{ what: 'the InboundFlow emulator', env: 'INBOUNDFLOW_EMULATOR_PORT', fallback: 4010 },
	{ what: 'the CRM/Slack stand-in', env: 'INBOUNDFLOW_SINK_PORT', fallback: Number(new URL(EXAMPLE_SINK).port) },
	{ what: 'n8n', env: 'N8N_PORT', fallback: 5678 },
];

function portOf(setting: PortSetting): number {
	const raw = process.env[setting.env];
	if (raw === undefined || raw === '') return setting.fallback;
	const port = Number(raw);
	if (!Number.isInteger(port) || port < 1 || port > 65535) {
		throw new UserFacingError(`${setting.env}=${raw} is not a port number (1 to 65535).`);
	}
	return port;
}

/** Resolves when the port can be listened on at 127.0.0.1; otherwise says which setting moves it. */
async function checkPort(setting: PortSetting, port: number): Promise<void> {
	await new Promise<void>((resolve, reject) => {
		const probe = net.createServer();
		probe.once('error', (error: NodeJS.ErrnoException) => {
			const why = error.code === 'EADDRINUSE' ? 'is already in use' : `cannot be used (${error.code ?? error.message})`;
			reject(
				new UserFacingError(
					`Port ${port} (${setting.what}) ${why}: stop what runs there, or choose another port with ${setting.env}=<port> npm start.`,
				),
			);
		});
		probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()));
	});
}

/** Prints "label… 12 s" while `work` runs (in place on a terminal, every 10 s otherwise). */
async function withProgress<T>(label: string, work: Promise<T>): Promise<T> {
	const started = Date.now();
	const tty = process.stdout.isTTY === true;
	const seconds = () => Math.round((Date.now() - started) / 1000);
	if (tty) process.stdout.write(`${label}…`);
	else say(`${label}…`);
	const timer = setInterval(
		() => {
			if (tty) process.stdout.write(`\r${label}… ${seconds()} s`);
			else say(`  … still ${label.charAt(0).toLowerCase()}${label.slice(1)} (${seconds()} s)`);
		},
		tty ? 1000 : 10_000,
	);
	try {
		const result = await work;
		if (tty) process.stdout.write(`\r${label}… done in ${seconds()} s\n`);
		else say(`  done in ${seconds()} s`);
		return result;
	} finally {
		clearInterval(timer);
	}
}

// What is running, so that a stop signal at any moment can end it.
let stopping = false;
let emulator: InboundFlowEmulator | undefined;
let sink: Sink | undefined;
let n8n: N8n | undefined;
const cliChildren = new Set<ChildProcess>();
const timers: NodeJS.Timeout[] = [];

/** An n8n CLI command (import, list, publish), tracked so that a stop signal ends it too. */
async function cli(args: string[]): Promise<string> {
	const instance = n8n!;
	return await new Promise((resolve, reject) => {
		const child = spawn(instance.bin, args, { env: instance.env(), stdio: ['ignore', 'pipe', 'pipe'] });
		cliChildren.add(child);
		let output = '';
		child.stdout.on('data', (d: Buffer) => (output += d.toString()));
		child.stderr.on('data', (d: Buffer) => (output += d.toString()));
		child.on('error', reject);
		child.on('close', (code) => {
			cliChildren.delete(child);
			if (code === 0) resolve(output);
			else reject(new Error(stopping ? 'stopped' : `n8n ${args[0]} failed (exit ${code}):\n${output}`));
		});
	});
}

/** `n8n import:…` from a file that exists only for the import: credentials hold secrets. */
async function importFile(kind: 'credentials' | 'workflow', data: unknown): Promise<void> {
	const file = path.join(n8n!.userFolder, `import-${kind}-${process.pid}-${Date.now()}.json`);
	fs.writeFileSync(file, JSON.stringify(data), { mode: 0o600 });
	try {
		await cli([`import:${kind}`, `--input=${file}`]);
	} finally {
		fs.rmSync(file, { force: true });
	}
}

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/**
 * The seeded demo records get the timestamps of the first start in this user folder.
 * The polling trigger keeps its position between starts; records seeded "just now"
 * on every start would all look new to it and flood the CRM at each start.
 */
function pinSeedTimes(records: InboundFlowEmulator['records'], userFolder: string): void {
	const file = path.join(userFolder, '.inboundflow-demo-seeded-at');
	const now = Date.now();
	const seededAt = fs.existsSync(file) ? Number(fs.readFileSync(file, 'utf8')) : NaN;
	if (!Number.isFinite(seededAt) || seededAt > now) {
		fs.writeFileSync(file, String(now));
		return;
	}
	const shift = seededAt - now;
	for (const list of Object.values(records)) {
		for (const record of list) {
			for (const [key, value] of Object.entries(record)) {
				if (typeof value === 'string' && ISO_TIME.test(value)) record[key] = new Date(Date.parse(value) + shift).toISOString();
			}
			if (typeof record.appointment_date === 'string' && typeof record.appointment_time_start === 'string') {
				record.appointment_date = record.appointment_time_start.slice(0, 10);
			}
		}
	}
}

/** Import files an earlier version (or an interrupted run) left in the user folder. */
function removeLeftoverImportFiles(userFolder: string): void {
	for (const name of fs.readdirSync(userFolder)) {
		if (/^import-(credentials|workflow)-[\d-]+\.json$/.test(name)) fs.rmSync(path.join(userFolder, name), { force: true });
	}
}

async function stop(signal: string, exitCode = 0): Promise<void> {
	if (stopping) {
		// A second signal: no more waiting.
		for (const child of cliChildren) child.kill('SIGKILL');
		process.exit(1);
	}
	stopping = true;
	say(`\n${signal === 'SIGINT' ? 'Ctrl-C' : signal}: stopping n8n, the emulator and the CRM/Slack stand-in…`);
	for (const timer of timers) clearInterval(timer);
	for (const child of cliChildren) child.kill('SIGTERM');
	const closing = [...cliChildren].map((child) => new Promise((resolve) => child.once('close', resolve)));
	await Promise.all([
		n8n?.stop(),
		sink?.close(),
		emulator?.stop(),
		Promise.race([Promise.all(closing), new Promise((resolve) => setTimeout(resolve, 10_000))]),
	]);
	for (const child of cliChildren) child.kill('SIGKILL');
	say('Stopped.');
	process.exit(exitCode);
}

/** "→ CRM    Nora Petersen +14155550177 · high · Brakes squeal…" on one line. */
function receivedLine(where: string, body: Record<string, unknown>): string {
	const width = Math.max(60, process.stdout.columns ?? 100);
	const text =
		where === '/crm/contacts'
			? `→ CRM    ${[body.name, body.phone].filter(Boolean).join(' ')} · ${String(body.urgency ?? '?')} urgency · ${String(
					body.call_summary ?? '',
				)}`
			: where === '/sms/send'
				? `→ SMS    ${String(body.to ?? '?')} · ${String(body.text ?? '')}`
				: `→ Slack  ${String(body.text ?? JSON.stringify(body)).replace(/\s*\n\s*/g, ' ⏎ ')}`;
	const line = `  ${text}`;
	return line.length > width ? `${line.slice(0, width - 1)}…` : line;
}

/** A new lead with the call behind it, and a booked appointment delivered as a signed webhook. */
function feedOnce(n8nUrl: string): void {
	if (!emulator || stopping) return;
	const call = emulator.add('calls', { status: 'completed' });
	emulator.add('leads', {
		status: 'new',
		caller_name: call.caller_name,
		caller_phone: call.caller_phone,
		call_log_id: call.id,
		contact_id: call.contact_id,
	});
	const contact = emulator.add('contacts');
	const appointment = emulator.add('appointments', {
		status: 'booked',
		caller_name: contact.name,
		caller_phone: contact.phone,
		contact_id: contact.id,
	});
	const delivery = buildWebhook({
		event: 'appointment.booked',
		secret: SIGNING_SECRET,
		data: {
			appointment_id: appointment.id,
			caller_phone: appointment.caller_phone,
			caller_name: appointment.caller_name,
			service_type: appointment.service_type,
			appointment_date: appointment.appointment_date,
			appointment_time_start: appointment.appointment_time_start,
			appointment_time_end: appointment.appointment_time_end,
		},
	});
	// Refused (404) when the user deactivated the example: nothing to report.
	fetch(`${n8nUrl}/webhook/${EXAMPLE_WEBHOOK_ID}/inboundflow`, {
		method: 'POST',
		body: delivery.body,
		headers: delivery.headers,
	}).catch(() => undefined);
}

async function ownerExists(url: string): Promise<boolean | undefined> {
	try {
		const response = await fetch(`${url}/rest/settings`);
		const settings = (await response.json()) as { data?: { userManagement?: { showSetupOnFirstLoad?: boolean } } };
		const setup = settings.data?.userManagement?.showSetupOnFirstLoad;
		return typeof setup === 'boolean' ? !setup : undefined;
	} catch {
		return undefined;
	}
}

function banner(rows: Array<[string, string]>): void {
	const width = Math.max(...rows.map(([label]) => label.length));
	say('');
	for (const [label, value] of rows) say(value ? `  ${(label ? `${label}:` : '').padEnd(width + 2)}${value}` : '');
	say('');
}

async function main(): Promise<void> {
	for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void stop(signal));
	process.env.N8N_GRACEFUL_SHUTDOWN_TIMEOUT ??= SHUTDOWN_SECONDS;

	const [emulatorPort, sinkPort, n8nPort] = PORTS.map(portOf);
	for (const [i, port] of [emulatorPort, sinkPort, n8nPort].entries()) await checkPort(PORTS[i], port);

	emulator = await startEmulator({ port: emulatorPort, seed: { calls: 40, contacts: 25, leads: 20, appointments: 15 } });
	// Recordings on the API origin, which redirects to a storage origin (issue 25).
	emulator.configure({ recordingUrl: 'api', recordingRedirect: true });
	sink = await startSink(sinkPort);
	const userFolder =
		process.env.INBOUNDFLOW_N8N_USER_FOLDER ?? path.join(os.homedir(), '.cache', 'n8n-nodes-inboundflow', 'start-n8n');
	// The recording example saves files here; n8n 2.x lets it write only below this folder.
	const recordingsDir = path.join(userFolder, 'recordings');
	fs.mkdirSync(recordingsDir, { recursive: true });
	n8n = await N8n.create({ port: n8nPort, userFolder, env: { N8N_RESTRICT_FILE_ACCESS_TO: recordingsDir } });
	pinSeedTimes(emulator.records, userFolder);
	// The reminder example's demo: an appointment 24 hours and 20 seconds ahead, so that it
	// comes within the example's 24 hours about when n8n is up (booked anew on every start).
	emulator.book(Date.now() + 24 * 3_600_000 + 20_000, {
		caller_name: 'Lena Fischer',
		caller_phone: '+14155550123',
		service_type: 'Brake Inspection',
	});
	removeLeftoverImportFiles(userFolder);
	say(`n8n user folder: ${userFolder} (set INBOUNDFLOW_N8N_USER_FOLDER to use another)`);

	// The credential follows the emulator's port on every start; the example workflows
	// are imported once, so that a user's edits to them survive the next start.
	const present = await withProgress(
		'Importing the InboundFlow credentials',
		(async () => {
			await importFile('credentials', credentials(emulator!.url, FULL_KEY, SIGNING_SECRET));
			return new Set((await cli(['list:workflow', '--onlyId'])).split(/\s+/).filter(Boolean));
		})(),
	);
	const workflows = EXAMPLES.map((file) => ({ file, workflow: example(file, sink!.url, { recordingsDir }) }));
	const missing = workflows.filter(({ workflow }) => !present.has(String(workflow.id)));
	if (missing.length > 0) {
		await withProgress(
			`Importing ${missing.length} example workflow${missing.length > 1 ? 's' : ''}`,
			(async () => {
				await importFile(
					'workflow',
					missing.map(({ workflow }) => workflow),
				);
				for (const { file, workflow } of missing) {
					if (ACTIVE_EXAMPLES.includes(file)) await cli(n8n!.activationArgs(String(workflow.id)));
				}
			})(),
		);
	}
	if (missing.length < workflows.length) {
		say(`Example workflows already in n8n were left as they are (${workflows.length - missing.length} of ${workflows.length}).`);
	}

	await withProgress('Starting n8n (about 20 s)', n8n.start());
	const owner = await ownerExists(n8n.url);

	const feed = process.env.INBOUNDFLOW_DEMO_FEED !== '0';
	if (feed) {
		const url = n8n.url;
		timers.push(setTimeout(() => feedOnce(url), 5_000), setInterval(() => feedOnce(url), FEED_INTERVAL_MS));
	}

	const reminder = `n8n editor ${n8n.url} · Ctrl-C stops everything`;
	banner([
		['n8n editor', `${n8n.url}${owner === true ? '' : '  (first visit: create the owner account)'}`],
		['InboundFlow emulator', `${emulator.url}  (API key ${FULL_KEY})`],
		['CRM/Slack stand-in', sink.url],
		['', ''],
		['Active workflows', '"new lead → CRM contact" (polls every minute)'],
		['', '"appointment booked → Slack message" (webhook)'],
		['', `"call completed → recording saved as a file" (polls every minute; files in ${recordingsDir})`],
		['', '"appointment starting in 24 hours → reminder" (polls every minute;'],
		['', ' a demo appointment is reminded within a minute or two)'],
		['Inactive', '"daily digest by an AI Agent": needs your chat model credential'],
		['', '(open it, pick a credential in "Chat Model", then activate)'],
		['Demo feed', feed ? `a new lead and a booked appointment every ${Math.round(FEED_INTERVAL_MS / 1000)} s` : 'off'],
		['Add a lead yourself', `curl -X POST ${emulator.url}/__admin/records/leads -d '{"caller_name":"Ada"}'`],
		['Ports', 'INBOUNDFLOW_EMULATOR_PORT, INBOUNDFLOW_SINK_PORT, N8N_PORT'],
		['Stop', 'Ctrl-C (or any stop signal) stops everything'],
	]);
	say('Ready. What the workflows send:');

	let shown = 0;
	timers.push(
		setInterval(() => {
			const received = sink!.received;
			for (; shown < received.length; shown++) {
				say(receivedLine(received[shown].path, received[shown].body));
				if ((shown + 1) % 10 === 0) say(`  (${reminder})`);
			}
		}, 1000),
	);
}

process.on('uncaughtException', (error: NodeJS.ErrnoException) => {
	// A port taken between the check and the listen.
	if (error.code === 'EADDRINUSE') {
		process.stderr.write(`npm start: ${error.message}: a port is in use; see INBOUNDFLOW_EMULATOR_PORT, INBOUNDFLOW_SINK_PORT, N8N_PORT.\n`);
	} else {
		process.stderr.write(`npm start failed: ${error.stack ?? error.message}\n`);
	}
	void stop('Error', 1);
});

main().catch(async (error: unknown) => {
	if (stopping) return;
	const message = error instanceof UserFacingError ? error.message : `npm start failed: ${error instanceof Error ? error.message : String(error)}`;
	process.stderr.write(`${message}\n`);
	stopping = true;
	for (const child of cliChildren) child.kill('SIGTERM');
	await Promise.all([n8n?.stop(), sink?.close(), emulator?.stop()]);
	process.exit(1);
});
