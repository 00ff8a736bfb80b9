import type { IDataObject, IExecuteFunctions } from 'n8n-workflow';
import { NodeOperationError } from 'n8n-workflow';

import { optionsCollection } from '../../shared/descriptions';
import { apiRequest } from '../../shared/transport';
import { collect } from '../../shared/transport/pagination';
import { asRecord, getManyOperation, getOperation } from './factories';
import { contactLocator, createdAfterFilter, phoneField } from './fields';
import type { Resource } from './types';
import { checkEmail, collection, requirePhone } from './validation';

async function findByPhone(
	this: IExecuteFunctions,
	phone: string,
	i: number,
	scope: string | string[] = 'contacts:read',
): Promise<IDataObject[]> {
	const records = await collect.call(
		this,
		{ path: '/v1/contacts', qs: { phone }, scope, action: 'look up contacts by phone', itemIndex: i },
		100,
	);
	// The API matches exactly; checked again here so a looser match never counts as a duplicate.
	return records.filter((record) => record.phone === phone);
}

function duplicateError(this: IExecuteFunctions, phone: string, existing: IDataObject | undefined, i: number) {
	const id = existing?.id ? ` (ID ${String(existing.id)})` : '';
	return new NodeOperationError(this.getNode(), `A contact with phone ${phone} already exists${id}`, {
		itemIndex: i,
		description: 'Set Options → If Phone Exists to "Return Existing Contact" to use it instead of failing.',
	});
}

const createContact = {
	value: 'create',
	name: 'Create',
	action: 'Create a contact (needs an E.164 phone such as +14155551234; name, email, company and notes optional; returns the existing contact if the phone is known)',
	description: 'Create a contact, or return the existing one with that phone number',
	properties: [
		phoneField('Phone', 'phone', 'Phone number of the contact in E.164 form', true),
		{
			displayName: 'Additional Fields',
			name: 'additionalFields',
			type: 'collection' as const,
			placeholder: 'Add Field',
			default: {},
			options: [
				{ displayName: 'Company', name: 'company', type: 'string' as const, default: '' },
				{
					displayName: 'Email',
					name: 'email',
					type: 'string' as const,
					placeholder: 'name@email.com',
					default: '',
				},
				{ displayName: 'Name', name: 'name', type: 'string' as const, default: '' },
				{ displayName: 'Notes', name: 'notes', type: 'string' as const, typeOptions: { rows: 3 }, default: '' },
			],
		},
		optionsCollection([
			{
				displayName: 'If Phone Exists',
				name: 'ifPhoneExists',
				type: 'options' as const,
				default: 'returnExisting',
				description:
					'What to do when a contact with this phone number exists already. Looked up before creating, so a re-run workflow does not create duplicates.',
				options: [
					{ name: 'Return Existing Contact', value: 'returnExisting' },
					{ name: 'Fail', value: 'fail' },
					{ name: 'Create Anyway', value: 'create' },
				],
			},
		]),
	],
	async execute(this: IExecuteFunctions, i: number): Promise<IDataObject[]> {
		const node = this.getNode();
		const phone = requirePhone(node, 'Phone', this.getNodeParameter('phone', i), i);
		const body: IDataObject = { phone };
		for (const [key, value] of Object.entries(collection(this, 'additionalFields', i))) {
			if (typeof value !== 'string' || value.trim() === '') continue;
			body[key] = key === 'email' ? checkEmail(node, 'Email', value, i) : value.trim();
		}
		const mode = (collection(this, 'options', i).ifPhoneExists as string | undefined) ?? 'returnExisting';
		// Every scope this operation needs, named on any 403 it meets.
		const scopes = mode === 'create' ? ['contacts:write'] : ['contacts:read', 'contacts:write'];
		if (mode !== 'create') {
			const [existing] = await findByPhone.call(this, phone, i, scopes);
			if (existing && mode === 'fail') throw duplicateError.call(this, phone, existing, i);
			if (existing) return [existing];
		}
		const response = await apiRequest.call(this, {
			method: 'POST',
			path: '/v1/contacts',
			body,
			scope: scopes,
			action: 'create a contact',
			itemIndex: i,
			// InboundFlow may answer 409 for a duplicate phone (created meanwhile elsewhere).
			acceptStatuses: mode === 'create' ? [] : [409],
		});
		if (response.status === 409) {
			const [existing] = await findByPhone.call(this, phone, i, scopes);
			if (mode === 'returnExisting' && existing) return [existing];
			throw duplicateError.call(this, phone, existing, i);
		}
		return [asRecord(response.data)];
	},
};

const findContactByPhone = {
	value: 'findByPhone',
	name: 'Find by Phone',
	action: 'Find contacts by phone (exact E.164 number such as +14155551234; returns the matching contacts, none if unknown)',
	description: 'Find the contacts with exactly this phone number',
	properties: [
		phoneField('Phone', 'phone', 'Phone number to look up, in E.164 form', true),
		optionsCollection([
			{
				displayName: 'Fail If None Found',
				name: 'failIfNotFound',
				type: 'boolean' as const,
				default: false,
				description: 'Whether to stop with an error when no contact has this number (otherwise the node outputs nothing for this item)',
			},
		]),
	],
	async execute(this: IExecuteFunctions, i: number): Promise<IDataObject[]> {
		const phone = requirePhone(this.getNode(), 'Phone', this.getNodeParameter('phone', i), i);
		const found = await findByPhone.call(this, phone, i);
		if (found.length === 0 && collection(this, 'options', i).failIfNotFound === true) {
			throw new NodeOperationError(this.getNode(), `No contact with phone ${phone} was found`, { itemIndex: i });
		}
		return found;
	},
};

export const contactResource: Resource = {
	value: 'contact',
	name: 'Contact',
	operations: [
		getManyOperation({
			noun: 'contacts',
			path: '/v1/contacts',
			scope: 'contacts:read',
			returns: 'name, phone, email, company and number of calls of each; filter by phone or created after',
			filters: [
				createdAfterFilter('contacts'),
				phoneField('Phone', 'phone', 'Only contacts with this number (exact match, E.164)'),
			],
		}),
		getOperation({
			what: 'Contact',
			path: '/v1/contacts',
			scope: 'contacts:read',
			idName: 'contactId',
			example: 'dbf31702-3468-4639-a5a4-e07f9bdae9a7',
			locator: contactLocator,
			returns: 'name, phone, email, company, notes and calls of the contact',
		}),
		createContact,
		findContactByPhone,
	],
};
