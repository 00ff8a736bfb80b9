// The factories every resource builds its operations from: Get Many (Return All /
// Limit, filters, Simplify) and Get by ID, and the resource's operation selector.
import type { IDataObject, IExecuteFunctions, INodeProperties, INodePropertyOptions } from 'n8n-workflow';
import { updateDisplayOptions } from 'n8n-workflow';

import { apiRequest } from '../../shared/transport';
import { inputError } from '../../shared/transport/errors';
import { collect } from '../../shared/transport/pagination';
import { idField, limitField, returnAllField, simplifyField, versionedIdFields } from './fields';
import type { Operation, Resource } from './types';
import { collection, locatorValue, requirePhone, requireUuid, toIsoUtc } from './validation';

/** The operation selector of a resource and each operation's fields, shown only for it. */
export function resourceProperties(resource: Resource): INodeProperties[] {
	const operations = resource.operations;
	const firstOperation = operations[0].value;
	const selector: INodeProperties = {
		displayName: 'Operation',
		name: 'operation',
		type: 'options',
		noDataExpression: true,
		displayOptions: { show: { resource: [resource.value] } },
		options: operations.map(
			(op): INodePropertyOptions => ({
				name: op.name,
				value: op.value,
				action: op.action,
				description: op.description,
			}),
		),
		default: firstOperation,
	};
	return [
		...toolSelectors(selector, resource),
		...operations.flatMap((op) =>
			updateDisplayOptions({ show: { resource: [resource.value], operation: [op.value] } }, op.properties),
		),
	];
}

/**
 * The selector, split in two when some operations are not for AI agents (files): the AI
 * tool variant of the node (`@tool`) gets a selector without them.
 */
function toolSelectors(selector: INodeProperties, resource: Resource): INodeProperties[] {
	const forTools = resource.operations.filter((op) => !('notForTools' in op && op.notForTools));
	if (forTools.length === resource.operations.length || forTools.length === 0) return [selector];
	const show = selector.displayOptions?.show ?? {};
	return [
		{ ...selector, displayOptions: { show: { ...show, '@tool': [false] } } },
		{
			...selector,
			displayOptions: { show: { ...show, '@tool': [true] } },
			options: (selector.options ?? []).filter((o) => forTools.some((op) => 'value' in o && op.value === o.value)),
			default: forTools[0].value,
		},
	];
}

/** Turns the Filters collection into query parameters, validating each value. */
function filterQuery(ctx: IExecuteFunctions, filters: IDataObject, itemIndex: number): IDataObject {
	const node = ctx.getNode();
	const qs: IDataObject = {};
	for (const [name, value] of Object.entries(filters)) {
		if (value === '' || value === undefined || value === null) continue;
		if (name === 'createdAfter') qs.since = toIsoUtc(node, 'Created After', value, ctx.getTimezone(), itemIndex);
		else if (name === 'phone') qs.phone = requirePhone(node, 'Phone', value, itemIndex);
		else qs[name] = value;
	}
	return qs;
}

function readLimit(ctx: IExecuteFunctions, itemIndex: number): number | undefined {
	if (ctx.getNodeParameter('returnAll', itemIndex, false) as boolean) return undefined;
	const limit = ctx.getNodeParameter('limit', itemIndex, 50);
	if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1) {
		throw inputError(ctx.getNode(), 'Limit', `${String(limit)} is not a whole number of 1 or more`, itemIndex);
	}
	return limit;
}

export interface ListSpec {
	/** Plural noun, e.g. 'calls'. */
	noun: string;
	path: string;
	scope: string;
	filters: INodeProperties[];
	simplify?: (record: IDataObject) => IDataObject;
	/**
	 * What each record holds and how the list can be filtered, for the operation's action
	 * text: an AI agent sees "<action> in InboundFlow" as the tool's description.
	 */
	returns: string;
	/**
	 * Filters the node applies itself, after the API's (the API has no such query): takes
	 * its fields out of the Filters collection (validated, before any request) and returns
	 * the record test, or undefined when none is set.
	 */
	nodeFilter?: (ctx: IExecuteFunctions, filters: IDataObject, itemIndex: number) => NodeFilter;
}

export interface NodeFilter {
	/** The Filters collection without the node's own fields (sent to the API). */
	apiFilters: IDataObject;
	keep?: (record: IDataObject) => boolean;
}

/** A Get Many operation: Return All / Limit, a Filters collection, optional Simplify. */
export function getManyOperation(spec: ListSpec): Operation {
	const properties: INodeProperties[] = [returnAllField, limitField];
	if (spec.simplify) properties.push(simplifyField);
	properties.push({
		displayName: 'Filters',
		name: 'filters',
		type: 'collection',
		placeholder: 'Add Filter',
		default: {},
		options: spec.filters,
	});
	return {
		value: 'getAll',
		name: 'Get Many',
		action: `Get many ${spec.noun} (${spec.returns})`,
		description: `Retrieve a list of ${spec.noun}: ${spec.returns}`,
		properties,
		async execute(this: IExecuteFunctions, i: number) {
			const limit = readLimit(this, i);
			const filters = collection(this, 'filters', i);
			const own = spec.nodeFilter?.(this, filters, i);
			const qs = filterQuery(this, own ? own.apiFilters : filters, i);
			const records = await collect.call(
				this,
				{ path: spec.path, qs, scope: spec.scope, action: `list ${spec.noun}`, itemIndex: i },
				limit,
				own?.keep,
			);
			const simplify = spec.simplify && (this.getNodeParameter('simplify', i, true) as boolean);
			return simplify ? records.map(spec.simplify!) : records;
		},
	};
}

export interface GetSpec {
	/** Singular, capitalised: 'Call'. */
	what: string;
	path: string;
	scope: string;
	idName: string;
	example: string;
	/** The ID as a resource locator from node version 2 (version 1 keeps the plain field). */
	locator?: INodeProperties;
	extraProperties?: INodeProperties[];
	/** What the record holds, for the action text an AI agent sees. */
	returns: string;
	/** Shapes the output of the fetched record. */
	output?: (this: IExecuteFunctions, record: IDataObject, itemIndex: number) => IDataObject[];
}

/** A Get operation: one record by its id. */
export function getOperation(spec: GetSpec): Operation {
	const label = `${spec.what} ID`;
	return {
		value: 'get',
		name: 'Get',
		action: `Get a ${spec.what.toLowerCase()} by its ID (${spec.returns})`,
		description: `Retrieve one ${spec.what.toLowerCase()} by its ID (a UUID): ${spec.returns}`,
		properties: [
			...(spec.locator ? versionedIdFields(label, spec.example, spec.locator) : [idField(label, spec.idName, spec.example)]),
			...(spec.extraProperties ?? []),
		],
		async execute(this: IExecuteFunctions, i: number) {
			const value = this.getNodeParameter(spec.idName, i);
			// Errors name the field as the panel shows it: "Call" (locator) or "Call ID".
			const field = spec.locator && locatorValue(value) !== value ? spec.locator.displayName : label;
			const id = requireUuid(this.getNode(), field, value, i);
			const response = await apiRequest.call(this, {
				method: 'GET',
				path: `${spec.path}/${encodeURIComponent(id)}`,
				scope: spec.scope,
				action: `get a ${spec.what.toLowerCase()}`,
				notFound: { what: spec.what, id },
				itemIndex: i,
			});
			const record = asRecord(response.data);
			return spec.output ? spec.output.call(this, record, i) : [record];
		},
	};
}

export function asRecord(value: unknown): IDataObject {
	return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as IDataObject) : {};
}

/** Keeps the named fields of a record, in that order. */
export function pick(fields: string[]): (record: IDataObject) => IDataObject {
	return (record) => {
		const out: IDataObject = {};
		for (const field of fields) if (field in record) out[field] = record[field];
		return out;
	};
}
