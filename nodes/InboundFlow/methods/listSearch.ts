// The From List of the Call and Contact locators (node version 2). Each request of the
// panel reads one page of the API through the one transport (paced with the key's other
// traffic); the panel asks for the next page with the API's cursor as paginationToken.
// A search that spells an E.164 number goes to the API's exact phone filter; any other
// search is matched within the page read.
import type {
	IDataObject,
	ILoadOptionsFunctions,
	INodeListSearchItems,
	INodeListSearchResult,
} from 'n8n-workflow';
import { NodeOperationError } from 'n8n-workflow';

import { titleCase } from '../../shared/descriptions';
import { DeadlineError } from '../../shared/transport';
import { toNodeError } from '../../shared/transport/errors';
import { MAX_PAGE_SIZE, paginate, type Page } from '../../shared/transport/pagination';
import { asE164, wallClock } from '../actions/validation';

/**
 * Longest a list waits for the key's rate budget (spent by other workflows) before it
 * says so; the panel is a person waiting.
 */
export const LIST_WAIT_MS = 20_000;
/**
 * Pages without a single record that say more follow (a server filtering after paging)
 * read in one request before answering: the panel shows "No results" for an empty answer
 * to a search and asks no further.
 */
export const MAX_EMPTY_PAGES_PER_LIST = 3;

interface ListSource {
	path: string;
	scope: string;
	/** Plural noun, for messages. */
	noun: string;
	/** The record's phone field, for matching searches by digits. */
	phoneField: string;
	label(record: IDataObject, timeZone: string): string;
	/** The page's records in the order shown. */
	order?(records: IDataObject[]): IDataObject[];
}

const text = (value: unknown): string => (typeof value === 'string' ? value.trim() : '');

/** "2026-02-24 20:59" in the workflow's time zone (UTC when the zone is unknown). */
function localTime(iso: string, timeZone: string): string {
	const ms = Date.parse(iso);
	if (Number.isNaN(ms)) return iso;
	let t;
	try {
		t = wallClock(ms, timeZone);
	} catch {
		t = wallClock(ms, 'UTC');
	}
	const two = (n: number) => String(n).padStart(2, '0');
	return `${t.year}-${two(t.month)}-${two(t.day)} ${two(t.hour)}:${two(t.minute)}`;
}

const callTime = (record: IDataObject) => text(record.started_at) || text(record.created_at);

const CALLS: ListSource = {
	path: '/v1/calls',
	scope: 'calls:read',
	noun: 'calls',
	phoneField: 'caller_phone',
	label: (record, timeZone) =>
		[
			text(record.caller_name) || 'Unknown caller',
			text(record.caller_phone) || 'no number',
			callTime(record) ? localTime(callTime(record), timeZone) : 'no date',
			text(record.status) ? titleCase(text(record.status)) : 'no status',
		].join(' · '),
	// The API's page order is not documented: newest first within the page, whatever it sends.
	order: (records) =>
		records
			.map((record, index) => ({ record, index, at: Date.parse(callTime(record)) }))
			.sort((a, b) => (Number.isNaN(b.at) ? -Infinity : b.at) - (Number.isNaN(a.at) ? -Infinity : a.at) || a.index - b.index)
			.map(({ record }) => record),
};

const CONTACTS: ListSource = {
	path: '/v1/contacts',
	scope: 'contacts:read',
	noun: 'contacts',
	phoneField: 'phone',
	label: (record) => `${text(record.name) || 'Unnamed contact'} · ${text(record.phone) || 'no number'}`,
};

/** Whether a record matches a search typed in the list (not a full E.164 number). */
function matches(source: ListSource, record: IDataObject, label: string, search: string): boolean {
	const query = search.toLowerCase();
	if (label.toLowerCase().includes(query) || text(record.id).toLowerCase().startsWith(query)) return true;
	// Part of a number, however it is written: "555 0123", "(415) 555".
	const digits = query.replace(/\D/g, '');
	return digits.length >= 3 && /^[\d\s+().-]+$/.test(query) && text(record[source.phoneField]).replace(/\D/g, '').includes(digits);
}

async function firstPage(this: ILoadOptionsFunctions, source: ListSource, qs: IDataObject, cursor?: string): Promise<Page> {
	const pages = paginate.call(
		this,
		{ path: source.path, qs, scope: source.scope, action: `list ${source.noun}`, deadline: Date.now() + LIST_WAIT_MS },
		{ cursor, pageSize: MAX_PAGE_SIZE },
	);
	let page: Page | undefined;
	let empty = 0;
	for await (const next of pages) {
		page = next;
		if (next.records.length > 0 || !next.nextCursor || ++empty >= MAX_EMPTY_PAGES_PER_LIST) break;
	}
	return page ?? { records: [] };
}

async function search(
	this: ILoadOptionsFunctions,
	source: ListSource,
	filter?: string,
	paginationToken?: string,
): Promise<INodeListSearchResult> {
	const typed = (filter ?? '').trim();
	const phone = typed ? asE164(typed) : undefined;
	let page: Page;
	try {
		page = await firstPage.call(this, source, phone ? { phone } : {}, paginationToken || undefined);
	} catch (error) {
		if (error instanceof DeadlineError) {
			throw new NodeOperationError(this.getNode(), `The API key's rate limit is used up by other workflows right now`, {
				description: `Listing ${source.noun} would have waited more than ${LIST_WAIT_MS / 1000} s for InboundFlow's limit of 60 requests per minute per key. Try again in a minute, or enter the ID (By ID).`,
			});
		}
		throw toNodeError(this.getNode(), error);
	}
	const timeZone = this.getTimezone();
	const results: INodeListSearchItems[] = [];
	for (const record of source.order ? source.order(page.records) : page.records) {
		const id = text(record.id);
		if (!id) continue;
		const name = source.label(record, timeZone);
		// The API matches phones exactly; checked here too, so a looser server shows no strangers.
		if (phone ? text(record[source.phoneField]) !== phone : typed && !matches(source, record, name, typed)) continue;
		results.push({ name, value: id });
	}
	return { results, paginationToken: page.nextCursor };
}

export async function searchCalls(
	this: ILoadOptionsFunctions,
	filter?: string,
	paginationToken?: string,
): Promise<INodeListSearchResult> {
	return await search.call(this, CALLS, filter, paginationToken);
}

export async function searchContacts(
	this: ILoadOptionsFunctions,
	filter?: string,
	paginationToken?: string,
): Promise<INodeListSearchResult> {
	return await search.call(this, CONTACTS, filter, paginationToken);
}
