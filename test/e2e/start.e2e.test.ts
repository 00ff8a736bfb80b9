// `npm start` as a user (or a process manager) runs it: `node scripts/run.mjs start`
// in a copy of the package (its build then cannot disturb suites running meanwhile),
// with its own ports and n8n user folder. Stop signals must leave no process and no
// busy port; a second start keeps a user's edits to the examples; a busy port is
// reported in one line.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { DEFAULT_RECORDING_CONFIG, recordingChecksum } from '../../emulator/recordings';
import { freePort, N8n, PACKAGE_ROOT } from './n8n';
import { EXAMPLE_IDS, EXAMPLES } from './workflows';

jest.setTimeout(600_000);

interface Started {
	child: ChildProcess;
	output: () => string;
	exited: Promise<number | null>;
}

const launched: Started[] = [];
/** The reminder example's message for npm start's demo appointment. */
const REMINDER_LINE = /^ {2}→ SMS {4}\+14155550123 · Reminder: Lena, your Brake Inspection is on \w{3} \d{1,2} \w{3} at \d\d:\d\d\.$/m;
/** SMS lines (reminders) npm start printed. */
const smsLines = (output: string) => output.split('\n').filter((line) => line.startsWith('  → SMS '));
let firstReminders: string[] = [];
let copy: string;
let userFolder: string;
let ports: { emulator: number; sink: number; n8n: number };

function env(): NodeJS.ProcessEnv {
	const inherited = Object.fromEntries(
		Object.entries(process.env).filter(([key]) => key !== 'NODE_ENV' && !key.startsWith('JEST')),
	);
	return {
		...inherited,
		INBOUNDFLOW_N8N_USER_FOLDER: userFolder,
		INBOUNDFLOW_EMULATOR_PORT: String(ports.emulator),
		INBOUNDFLOW_SINK_PORT: String(ports.sink),
		N8N_PORT: String(ports.n8n),
		INBOUNDFLOW_DEMO_FEED_MS: '5000',
	};
}

function launch(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Started {
	const child = spawn(process.execPath, args, { cwd: copy, env: { ...env(), ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
	let output = '';
	child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
	child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
	const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
	const started = { child, output: () => output, exited };
	launched.push(started);
	return started;
}

async function waitFor(started: Started, pattern: RegExp, timeoutMs: number): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!pattern.test(started.output())) {
		if (started.child.exitCode !== null) throw new Error(`npm start exited (${started.child.exitCode}):\n${started.output()}`);
		if (Date.now() > deadline) throw new Error(`no ${String(pattern)} within ${timeoutMs} ms:\n${started.output()}`);
		await new Promise((r) => setTimeout(r, 250));
	}
}

/** Every process below `pid` right now. */
function descendants(pid: number): number[] {
	const table = execFileSync('ps', ['-A', '-o', 'pid=,ppid='], { encoding: 'utf8' })
		.trim()
		.split('\n')
		.map((line) => line.trim().split(/\s+/).map(Number));
	const found: number[] = [];
	const queue = [pid];
	while (queue.length > 0) {
		const parent = queue.shift()!;
		for (const [child, ppid] of table) {
			if (ppid === parent) {
				found.push(child);
				queue.push(child);
			}
		}
	}
	return found;
}

function alive(pid: number): boolean {
	try {
		process.kill(pid, 0);
		return true;
	} catch {
		return false;
	}
}

async function portFree(port: number): Promise<boolean> {
	return await new Promise((resolve) => {
		const probe = net.createServer();
		probe.once('error', () => resolve(false));
		probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
	});
}

/** Sends `signal` to the npm-start process and checks that everything it started is gone. */
async function stopAndCheck(started: Started, signal: NodeJS.Signals): Promise<void> {
	const tree = descendants(started.child.pid!);
	// n8n, its task runner, and (in this process) the emulator and the sink.
	expect(tree.length).toBeGreaterThanOrEqual(2);
	started.child.kill(signal);
	let timer: NodeJS.Timeout | undefined;
	const code = await Promise.race([
		started.exited,
		new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), 30_000))),
	]);
	clearTimeout(timer);
	// Whatever survived: reported, then cleaned up so that no test leaves processes behind.
	const left = tree.filter(alive);
	for (const pid of left) process.kill(pid, 'SIGKILL');
	if (started.child.exitCode === null) started.child.kill('SIGKILL');
	expect({ code, left }).toEqual({ code: 0, left: [] });
	for (const port of Object.values(ports)) expect(await portFree(port)).toBe(true);
	expect(started.output()).toMatch(/Stopped\.\s*$/);
}

function importFilesIn(folder: string): string[] {
	return fs.readdirSync(folder).filter((name) => /^import-.*\.json$/.test(name));
}

beforeAll(async () => {
	// A copy of the package without node_modules (linked), build output or git.
	copy = fs.mkdtempSync(path.join(os.tmpdir(), 'inboundflow-start-copy-'));
	const skip = new Set(['node_modules', 'dist', 'build', '.git']);
	for (const entry of fs.readdirSync(PACKAGE_ROOT)) {
		if (skip.has(entry)) continue;
		fs.cpSync(path.join(PACKAGE_ROOT, entry), path.join(copy, entry), { recursive: true });
	}
	fs.symlinkSync(path.join(PACKAGE_ROOT, 'node_modules'), path.join(copy, 'node_modules'), 'dir');
	userFolder = fs.mkdtempSync(path.join(os.tmpdir(), 'inboundflow-start-n8n-'));
	ports = { emulator: await freePort(), sink: await freePort(), n8n: await freePort() };
});

// A failed test must not leave npm start running.
afterEach(() => {
	for (const started of launched.splice(0)) {
		if (started.child.exitCode !== null || started.child.signalCode !== null) continue;
		for (const pid of descendants(started.child.pid!)) process.kill(pid, 'SIGKILL');
		started.child.kill('SIGKILL');
	}
});

afterAll(() => {
	fs.rmSync(copy, { recursive: true, force: true });
	fs.rmSync(userFolder, { recursive: true, force: true });
});

describe('npm start', () => {
	it('a busy port gives one line naming the port and the setting that changes it', async () => {
		const blocker = net.createServer();
		await new Promise<void>((resolve) => blocker.listen(ports.n8n, '127.0.0.1', resolve));
		try {
			// The check runs before anything starts: the built start script shows it (no build needed).
			const started = launch([path.join(PACKAGE_ROOT, 'build', 'test', 'e2e', 'start.js')]);
			expect(await started.exited).toBe(1);
			const lines = started.output().trim().split('\n');
			expect(lines).toEqual([
				`Port ${ports.n8n} (n8n) is already in use: stop what runs there, or choose another port with N8N_PORT=<port> npm start.`,
			]);
		} finally {
			await new Promise((resolve) => blocker.close(resolve));
		}
		for (const port of [ports.emulator, ports.sink]) expect(await portFree(port)).toBe(true);
	});

	it('starts, shows a readable banner, and SIGTERM stops every process and frees every port', async () => {
		const started = launch(['scripts/run.mjs', 'start']);
		await waitFor(started, /^Ready\./m, 400_000);
		const output = started.output();
		for (const phase of ['Importing the InboundFlow credentials…', `Importing ${EXAMPLES.length} example workflows…`, 'Starting n8n']) {
			expect(output).toContain(phase);
		}
		expect(output).toContain('(first visit: create the owner account)');
		// Labels end in ':' and every value starts in the same column.
		const rows = output.split('\n').filter((line) => /^ {2}[A-Z][A-Za-z/ ]+: +\S/.test(line));
		expect(rows.length).toBeGreaterThanOrEqual(6);
		expect(new Set(rows.map((line) => line.search(/(?<=: +)\S/))).size).toBe(1);
		// No file with the API key or the signing secret in plain text is left behind.
		expect(importFilesIn(userFolder)).toEqual([]);
		// The appointment example is active: the demo feed's delivery became a Slack message, on one line.
		await waitFor(started, /^ {2}→ Slack {2}New appointment: .+ – .+, .+\d\d:\d\d$/m, 60_000);
		// The recording example saved the recording of a completed call the demo feed added,
		// byte for byte (issue 25).
		const recordings = path.join(userFolder, 'recordings');
		const deadline = Date.now() + 100_000;
		let saved: string[] = [];
		// n8n creates the file before it writes its bytes: read it once it has its full length
		// (a shorter or longer file still fails the checksum below, after the deadline).
		const complete = (name: string) => fs.statSync(path.join(recordings, name)).size === DEFAULT_RECORDING_CONFIG.recordingBytes;
		while (!(saved.length > 0 && complete(saved[0])) && Date.now() < deadline) {
			await new Promise((r) => setTimeout(r, 1000));
			saved = fs.existsSync(recordings) ? fs.readdirSync(recordings).filter((f) => /^call-[0-9a-f-]{36}\.mp3$/.test(f)) : [];
		}
		expect(saved.length).toBeGreaterThan(0);
		const id = saved[0].slice(5, 41);
		const bytes = fs.readFileSync(path.join(recordings, saved[0]));
		expect(createHash('sha256').update(bytes).digest('hex')).toBe(recordingChecksum(id, DEFAULT_RECORDING_CONFIG.recordingBytes));

		// The reminder example: the demo appointment (24 h 20 s ahead at start) is reminded, once per poll
		// at most, with the seeded appointments already less than 24 hours away.
		await waitFor(started, REMINDER_LINE, 240_000);
		firstReminders = smsLines(started.output());

		// An owner account, as on a first visit.
		const setup = await fetch(`http://127.0.0.1:${ports.n8n}/rest/owner/setup`, {
			method: 'POST',
			headers: { 'content-type': 'application/json' },
			body: JSON.stringify({ email: 'owner@example.com', firstName: 'Ow', lastName: 'Ner', password: 'Passw0rd-e2e' }),
		});
		expect(setup.status).toBe(200);

		await stopAndCheck(started, 'SIGTERM');
	});

	it('a second start keeps the user’s edits to the examples and knows the owner exists; SIGHUP stops it', async () => {
		// The user edits the digest example (renames it) while npm start is not running.
		// (Not the lead example: an import would reset its trigger's position, checked below.)
		const n8n = await N8n.create({ userFolder, port: ports.n8n });
		const edited = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'examples', EXAMPLES[2]), 'utf8')) as Record<string, unknown>;
		await n8n.importWorkflows([{ ...edited, name: 'My edited digest' }]);

		const started = launch(['scripts/run.mjs', 'start'], { INBOUNDFLOW_DEMO_FEED: '0' });
		await waitFor(started, /^Ready\./m, 400_000);
		// The lead example polled at activation; the records seeded at the first start are not new to it.
		await new Promise((r) => setTimeout(r, 5000));
		const output = started.output();
		expect(output).not.toMatch(/^ {2}→ CRM {4}/m);
		expect(output).toContain(`Example workflows already in n8n were left as they are (${EXAMPLES.length} of ${EXAMPLES.length}).`);
		expect(output).not.toContain(`Importing ${EXAMPLES.length} example workflows`);
		expect(output).not.toContain('first visit');
		expect(importFilesIn(userFolder)).toEqual([]);
		// After the restart the reminder trigger reminds the new demo appointment, and none of the
		// seeded ones it reminded before the restart (same ids and times: the seed is pinned).
		await waitFor(started, REMINDER_LINE, 240_000);
		await new Promise((r) => setTimeout(r, 3000));
		const again = smsLines(started.output());
		expect(again.filter((line) => !REMINDER_LINE.test(line))).toEqual([]);
		expect(again).toHaveLength(1);
		expect(firstReminders.filter((line) => REMINDER_LINE.test(line))).toHaveLength(1);
		await stopAndCheck(started, 'SIGHUP');

		const list = await n8n.cli(['list:workflow']);
		expect(list.stdout).toContain(`${EXAMPLE_IDS.dailyDigest}|My edited digest`);
	});
});
