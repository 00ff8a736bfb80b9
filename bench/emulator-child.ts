// The emulator in its own process, so benchmark memory readings hold only the client.
// argv: <calls> ; prints {"url": …} once listening.
import { startEmulator } from '../emulator/server';

async function main(): Promise<void> {
	const calls = Number(process.argv[2] ?? 1000);
	const emulator = await startEmulator({ seed: { calls, leads: 50 }, logRequests: true });
	// Keep the request log small: the benchmark reads counts, then clears it.
	process.stdout.write(`${JSON.stringify({ url: emulator.url })}\n`);
	process.on('SIGTERM', () => void emulator.stop().then(() => process.exit(0)));
}

void main();
