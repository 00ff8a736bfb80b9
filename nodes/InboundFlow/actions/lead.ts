import { LEAD_STATUSES, statusFilter, urgencyFilter } from '../../shared/descriptions';
import { getManyOperation, pick } from './factories';
import { createdAfterFilter } from './fields';
import type { Resource } from './types';
export const leadResource: Resource = {
	value: 'lead',
	name: 'Lead',
	operations: [
		getManyOperation({
			noun: 'leads',
			path: '/v1/leads',
			scope: 'leads:read',
			returns: 'caller, interest, urgency, status, qualification reason and call summary of each; filter by status, urgency or created after',
			simplify: pick([
				'id',
				'caller_name',
				'caller_phone',
				'caller_email',
				'status',
				'urgency',
				'interest',
				'qualification_reason',
				'call_summary',
				'call_log_id',
				'contact_id',
				'created_at',
			]),
			filters: [createdAfterFilter('leads'), statusFilter('leads', LEAD_STATUSES), urgencyFilter],
		}),
	],
};
