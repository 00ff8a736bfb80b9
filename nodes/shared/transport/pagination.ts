// The one cursor pager, shared by every list operation and by the polling trigger.
import type { IDataObject } from 'n8n-workflow';

import { protocolError, type RequestDescription } from './errors';
import { apiRequest, getCredentials, type InboundFlowContext } from './index';
import { isObject } from '../utils';

export const MAX_PAGE_SIZE = 100;
/** A traversal longer than this is taken for a loop (a million records at 100 a page). */
export const MAX_PAGES = 10_000;
/**
 * Empty pages in a row that say more follow. Legitimate when the server filters after
 * paging (a page of records none of which match); this many in a row is taken for a fault.
 */
export const MAX_EMPTY_PAGES = 50;

export interface ListRequest extends Omit<RequestDescription, 'method'> {
	qs?: IDataObject;
	/** See ApiRequest.deadline. */
	deadline?: number;
}

export interface Page {
	records: IDataObject[];
	/** Cursor of the page after this one; undefined on the last page. */
	nextCursor?: string;
	requestId?: string;
	/** Server time of the answer (meta.timestamp, else the HTTP Date header), when sent. */
	serverTime?: string;
}


/**
 * Yields the pages of a list, following next_cursor while has_more, with every
 * filter on every page. `limit` stops early: no page asks for more than is still
 * needed. Follows empty pages that say more follow (a server filtering after paging)
 * up to MAX_EMPTY_PAGES in a row; stops with a clear error on a repeated cursor, on
 * has_more without a cursor, and after MAX_PAGES pages.
 */
export async function* paginate(
	this: InboundFlowContext,
	req: ListRequest,
	options: { limit?: number; cursor?: string; pageSize?: number } = {},
): AsyncGenerator<Page> {
	const node = this.getNode();
	const pageSize = Math.min(MAX_PAGE_SIZE, Math.max(1, options.pageSize ?? MAX_PAGE_SIZE));
	const seen = new Set<string>();
	let cursor = options.cursor;
	let remaining = options.limit ?? Infinity;
	let emptyInARow = 0;
	const description = { ...req, method: 'GET' };
	// Read once per traversal: a later traversal (the next poll) sees an updated key.
	const credentials = await getCredentials.call(this, req.itemIndex);

	for (let pages = 0; remaining > 0; pages++) {
		if (pages >= MAX_PAGES) {
			throw protocolError(node, `more than ${MAX_PAGES} pages; stopped to avoid an endless loop`, description);
		}
		const qs: IDataObject = { ...req.qs, limit: Math.min(pageSize, remaining) };
		if (cursor) qs.cursor = cursor;
		const response = await apiRequest.call(this, { ...description, method: 'GET', qs, credentials });
		const body = response.body;
		if (!isObject(body) || !Array.isArray(body.data)) {
			throw protocolError(node, 'a list answer without a "data" array', description, response.requestId);
		}
		const records = body.data.filter(isObject) as IDataObject[];
		const hasMore = body.has_more === true;
		const next = typeof body.next_cursor === 'string' && body.next_cursor !== '' ? body.next_cursor : undefined;
		const page: Page = { records, requestId: response.requestId, serverTime: response.serverTime };
		if (hasMore) {
			emptyInARow = records.length === 0 ? emptyInARow + 1 : 0;
			if (emptyInARow >= MAX_EMPTY_PAGES) {
				throw protocolError(
					node,
					`${MAX_EMPTY_PAGES} empty pages in a row that each said more pages follow (has_more: true); stopped to avoid an endless loop`,
					description,
					response.requestId,
				);
			}
			if (!next) {
				throw protocolError(node, 'has_more: true without a next_cursor', description, response.requestId);
			}
			if (next === cursor || seen.has(next)) {
				throw protocolError(node, 'the same next_cursor twice; stopped to avoid an endless loop', description, response.requestId);
			}
			if (cursor) seen.add(cursor);
			page.nextCursor = next;
		}
		remaining -= records.length;
		yield page;
		if (!page.nextCursor) return;
		cursor = page.nextCursor;
	}
}

/**
 * Collects the records of a list, up to `limit` (all when undefined). With `keep` (a
 * filter the node applies itself, after the API's), only records it keeps are collected
 * and counted toward `limit`; pages are then always full-size, as how many of a page
 * match is not known in advance, and no page is read once `limit` matches are in.
 */
export async function collect(
	this: InboundFlowContext,
	req: ListRequest,
	limit?: number,
	keep?: (record: IDataObject) => boolean,
): Promise<IDataObject[]> {
	const out: IDataObject[] = [];
	if (limit !== undefined && limit <= 0) return out;
	for await (const page of paginate.call(this, req, { limit: keep ? undefined : limit })) {
		for (const record of page.records) {
			if (keep && !keep(record)) continue;
			out.push(record);
			if (limit !== undefined && out.length >= limit) return out;
		}
	}
	return out;
}
