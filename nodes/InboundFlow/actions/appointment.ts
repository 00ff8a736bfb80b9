import { APPOINTMENT_STATUSES, statusFilter } from '../../shared/descriptions';
import { getManyOperation } from './factories';
import { createdAfterFilter } from './fields';
import type { Resource } from './types';

export const appointmentResource: Resource = {
	value: 'appointment',
	name: 'Appointment',
	operations: [
		getManyOperation({
			noun: 'appointments',
			path: '/v1/appointments',
			scope: 'appointments:read',
			returns: 'caller, date, start and end time, service and status of each; filter by status or created after',
			filters: [createdAfterFilter('appointments'), statusFilter('appointments', APPOINTMENT_STATUSES)],
		}),
	],
};
