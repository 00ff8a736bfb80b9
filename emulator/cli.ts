// `npm run emulator`: starts the InboundFlow emulator with seeded data on a port.
import { FULL_KEY, startEmulator } from './server';

async function main(): Promise<void> {
	const port = Number(process.env.INBOUNDFLOW_EMULATOR_PORT ?? 4010);
	const emulator = await startEmulator({
		port,
		seed: { calls: 40, contacts: 25, leads: 20, appointments: 15 },
	});
	process.stdout.write(
		`InboundFlow emulator on ${emulator.url} (API key ${FULL_KEY}); admin routes under /__admin/. Ctrl-C stops it.\n`,
	);
	const stop = () => {
		void emulator.stop().then(() => process.exit(0));
	};
	process.on('SIGINT', stop);
	process.on('SIGTERM', stop);
}

void main();
