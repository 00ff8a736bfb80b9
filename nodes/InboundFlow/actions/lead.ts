import { createdAfterFilter, getManyOperation, pick, statusFilter, type Resource } from './common';

export const LEAD_STATUSES = ['new', 'contacted', 'qualified', 'converted', 'lost'];
export const URGENCIES = ['low', 'medium', 'high'];

export const urgencyFilter = {
	displayName: 'Urgency',
	name: 'urgency',
	type: 'options' as const,
	default: 'high',
	description: 'Only leads with this urgency',
	options: URGENCIES.map((value) => ({ name: value.charAt(0).toUpperCase() + value.slice(1), value })),
};

export const leadResource: Resource = {
	value: 'lead',
	name: 'Lead',
	operations: [
		getManyOperation({
			noun: 'leads',
			path: '/v1/leads',
			scope: 'leads:read',
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
				'contact_id',
				'created_at',
			]),
			filters: [createdAfterFilter('leads'), statusFilter('leads', LEAD_STATUSES), urgencyFilter],
		}),
	],
};
