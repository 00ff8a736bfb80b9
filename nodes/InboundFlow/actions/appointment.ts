import type { IDataObject, IExecuteFunctions } from 'n8n-workflow';

import { APPOINTMENT_STATUSES, statusFilter } from '../../shared/descriptions';
import { inputError } from '../../shared/transport/errors';
import { getManyOperation, type NodeFilter } from './factories';
import { createdAfterFilter, startsFilters } from './fields';
import type { Resource } from './types';
import { toIsoUtc } from './validation';

function isSet(value: unknown): boolean {
	return value !== '' && value !== undefined && value !== null;
}

/**
 * Starts After / Starts Before: InboundFlow filters appointments only by creation time and
 * status, so the node tests `appointment_time_start` itself (at or after Starts After,
 * before Starts Before). An appointment without a readable start never matches these.
 */
export function startsFilter(this: IExecuteFunctions, filters: IDataObject, itemIndex: number): NodeFilter {
	const { startsAfter, startsBefore, ...apiFilters } = filters;
	const node = this.getNode();
	const zone = this.getTimezone();
	const after = isSet(startsAfter) ? Date.parse(toIsoUtc(node, 'Starts After', startsAfter, zone, itemIndex)) : undefined;
	const before = isSet(startsBefore) ? Date.parse(toIsoUtc(node, 'Starts Before', startsBefore, zone, itemIndex)) : undefined;
	if (after !== undefined && before !== undefined && before <= after) {
		throw inputError(
			node,
			'Starts Before',
			`${new Date(before).toISOString()} is not later than Starts After (${new Date(after).toISOString()}); no appointment could match`,
			itemIndex,
		);
	}
	if (after === undefined && before === undefined) return { apiFilters };
	return {
		apiFilters,
		keep: (record) => {
			const start = typeof record.appointment_time_start === 'string' ? Date.parse(record.appointment_time_start) : NaN;
			if (Number.isNaN(start)) return false;
			return (after === undefined || start >= after) && (before === undefined || start < before);
		},
	};
}

export const appointmentResource: Resource = {
	value: 'appointment',
	name: 'Appointment',
	operations: [
		getManyOperation({
			noun: 'appointments',
			path: '/v1/appointments',
			scope: 'appointments:read',
			returns:
				'caller, date, start and end time, service and status of each; filter by status, created after, or start time (starts after / before)',
			filters: [createdAfterFilter('appointments'), statusFilter('appointments', APPOINTMENT_STATUSES), ...startsFilters],
			nodeFilter: (ctx, filters, i) => startsFilter.call(ctx, filters, i),
		}),
	],
};
