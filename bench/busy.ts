// Other work on the machine, for the benches' busy rows (issue 21: "with the CPUs kept
// busy by other work"): BENCH_BUSY=N starts N processes that each keep a core busy, at
// the same priority as n8n, for as long as the bench runs; 0 (the default) starts none.
// Each row then gives the load average (1 minute) at its end.
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';

export const BUSY_PROCESSES = Math.max(0, Math.floor(Number(process.env.BENCH_BUSY ?? 0)) || 0);

export interface BusyMachine {
	/** How many processes keep the cores busy. */
	processes: number;
	/** The machine's 1-minute load average now, to one decimal. */
	load(): number;
	stop(): void;
}

/** Starts `processes` busy loops (none for 0); each is stopped by `stop()` or when this process exits. */
export function busyMachine(processes = BUSY_PROCESSES): BusyMachine {
	const children: ChildProcess[] = [];
	const stop = () => {
		for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
		children.length = 0;
		process.off('exit', stop);
	};
	for (let i = 0; i < processes; i++) children.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
	if (processes > 0) process.on('exit', stop);
	return { processes, load: () => Number(os.loadavg()[0].toFixed(1)), stop };
}

/** How a bench's heading names the machine's state. */
export function describeBusy(busy: BusyMachine): string {
	return busy.processes === 0 ? 'no other work started' : `${busy.processes} busy-loop processes beside n8n on ${os.cpus().length} cores`;
}
