// Records of the InboundFlow emulator and a deterministic generator of realistic ones.
import { randomUUID } from 'node:crypto';

export type Resource = 'calls' | 'contacts' | 'leads' | 'appointments';
export const RESOURCES: Resource[] = ['calls', 'contacts', 'leads', 'appointments'];

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
export interface StoredRecord {
	id: string;
	created_at: string;
	[key: string]: Json;
}

export const CALL_STATUSES = ['completed', 'failed', 'blocked', 'in-progress', 'forwarding'];
export const LEAD_STATUSES = ['new', 'contacted', 'qualified', 'converted', 'lost'];
export const URGENCIES = ['low', 'medium', 'high'];
export const APPOINTMENT_STATUSES = ['booked', 'confirmed', 'cancelled', 'completed', 'no_show'];

const FIRST = ['Dave', 'Maria', 'Sarah', 'Hans', 'Aisha', 'Tom', 'Lena', 'Carlos', 'Mei', 'Omar', 'Julia', 'Ravi'];
const LAST = ['Garcia', 'Müller', 'Smith', 'Chen', 'Okafor', 'Rossi', 'Nguyen', 'Kowalski', 'Haddad', 'Brown'];
const SERVICES = ['Auto Repair Appointment', 'Oil Change', 'Brake Inspection', 'Tire Rotation', 'Consultation'];
const INTERESTS = ['auto body work', 'brake repair', 'new tires', 'engine diagnostics', 'detailing'];
const REASONS = ['pricing inquiry', 'urgent repair', 'wants a quote', 'follow-up on estimate', 'fleet service'];

/** Small seeded PRNG (mulberry32), so generated data are the same on every run. */
export function rng(seed: number): () => number {
	let a = seed >>> 0;
	return () => {
		a = (a + 0x6d2b79f5) >>> 0;
		let t = a;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

function uuidFrom(next: () => number): string {
	const hex = Array.from({ length: 32 }, () => Math.floor(next() * 16).toString(16)).join('');
	return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${'89ab'[Math.floor(next() * 4)]}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function pick<T>(next: () => number, list: T[]): T {
	return list[Math.floor(next() * list.length)];
}

function phoneFrom(next: () => number): string {
	return `+1415555${String(Math.floor(next() * 10000)).padStart(4, '0')}`;
}

function iso(ms: number): string {
	return new Date(ms).toISOString();
}

export function newId(): string {
	return randomUUID();
}

/** Builds a record of a resource with every documented field; `fields` override. */
export function makeRecord(
	resource: Resource,
	fields: Record<string, Json> = {},
	next: () => number = Math.random,
	nowMs = Date.now(),
): StoredRecord {
	const created = typeof fields.created_at === 'string' ? fields.created_at : iso(nowMs);
	const createdMs = Date.parse(created);
	const name = `${pick(next, FIRST)} ${pick(next, LAST)}`;
	const phone = phoneFrom(next);
	const id = typeof fields.id === 'string' ? fields.id : uuidFrom(next);
	let base: Record<string, Json>;
	switch (resource) {
		case 'calls': {
			const duration = 20 + Math.floor(next() * 400);
			base = {
				caller_phone: phone,
				caller_name: name,
				status: pick(next, CALL_STATUSES),
				duration_seconds: duration,
				summary: `Called about ${pick(next, INTERESTS)}; asked for a callback.`,
				transcript: `Assistant: Thanks for calling Dave Auto Shop, how can I help?\nCaller: Hi, this is ${name}, I need ${pick(next, INTERESTS)}.\nAssistant: Of course, let me note that down.`,
				recording_url: `https://recordings.inboundflow.app/${id}.mp3`,
				transfer_status: null,
				started_at: created,
				ended_at: iso(createdMs + duration * 1000),
				assistant_id: '5b0c1d2e-3f40-4a51-8b62-7c83d94ea5f6',
				contact_id: uuidFrom(next),
			};
			break;
		}
		case 'contacts':
			base = {
				phone,
				name,
				email: `${name.split(' ')[0].toLowerCase()}.${Math.floor(next() * 1000)}@example.com`,
				company: next() < 0.3 ? 'Example Co' : null,
				source: 'inbound_call',
				total_calls: 1 + Math.floor(next() * 8),
				last_call_at: created,
				notes: next() < 0.5 ? 'Regular customer, Toyota Camry 2019' : null,
				updated_at: created,
			};
			break;
		case 'leads':
			base = {
				caller_phone: phone,
				caller_name: name,
				caller_email: `${name.split(' ')[0].toLowerCase()}@example.com`,
				status: pick(next, LEAD_STATUSES),
				urgency: pick(next, URGENCIES),
				interest: pick(next, INTERESTS),
				qualification_reason: pick(next, REASONS),
				call_summary: `Called about getting a quote for ${pick(next, INTERESTS)}.`,
				call_log_id: uuidFrom(next),
				contact_id: uuidFrom(next),
				updated_at: created,
			};
			break;
		case 'appointments': {
			const start = createdMs + (1 + Math.floor(next() * 14)) * 86_400_000;
			base = {
				caller_phone: phone,
				caller_name: name,
				appointment_date: iso(start).slice(0, 10),
				appointment_time_start: iso(start),
				appointment_time_end: iso(start + 3_600_000),
				service_type: pick(next, SERVICES),
				status: pick(next, APPOINTMENT_STATUSES),
				calendar_event_link: `https://calendar.google.com/event?eid=${id.slice(0, 8)}`,
				call_log_id: uuidFrom(next),
				contact_id: uuidFrom(next),
				updated_at: created,
			};
			break;
		}
	}
	return { ...base, ...fields, id, created_at: created } as StoredRecord;
}

/** The conversation of a call, made from its id so it needs no storage. */
export function messagesFor(call: StoredRecord): Json[] {
	const next = rng(parseInt(call.id.replace(/-/g, '').slice(0, 8), 16));
	const start = Date.parse(String(call.started_at ?? call.created_at));
	const lines: Array<[string, string]> = [
		['assistant', 'Thanks for calling Dave Auto Shop, how can I help?'],
		['user', `Hi, I need ${pick(next, INTERESTS)}.`],
		['assistant', 'Sure. What day works best for you?'],
		['user', 'Tomorrow morning if possible.'],
		['assistant', 'Booked. You will get a confirmation by text.'],
	];
	return lines.map(([role, content], i) => ({ role, content, timestamp: iso(start + i * 8000) }));
}

export interface SeedCounts {
	calls?: number;
	contacts?: number;
	leads?: number;
	appointments?: number;
}

/**
 * Seeds records spread over the hours before `nowMs`, with a few sharing one
 * timestamp (as records created in the same second do).
 */
export function seedRecords(counts: SeedCounts, seed = 42, nowMs = Date.now()): Record<Resource, StoredRecord[]> {
	const next = rng(seed);
	const out = { calls: [], contacts: [], leads: [], appointments: [] } as Record<Resource, StoredRecord[]>;
	for (const resource of RESOURCES) {
		const n = counts[resource] ?? 0;
		for (let i = 0; i < n; i++) {
			// Every 7th record shares the timestamp of the one before it.
			const step = i % 7 === 6 ? i - 1 : i;
			const created = iso(nowMs - 60_000 - step * 37_000);
			out[resource].push(makeRecord(resource, { created_at: created }, next, nowMs));
		}
	}
	return out;
}
