import { createdAfterFilter, getManyOperation, statusFilter, type Resource } from './common';

export const APPOINTMENT_STATUSES = ['booked', 'confirmed', 'cancelled', 'completed', 'no_show'];

export const appointmentResource: Resource = {
	value: 'appointment',
	name: 'Appointment',
	operations: [
		getManyOperation({
			noun: 'appointments',
			path: '/v1/appointments',
			scope: 'appointments:read',
			filters: [createdAfterFilter('appointments'), statusFilter('appointments', APPOINTMENT_STATUSES)],
		}),
	],
};
