import type { IExecuteFunctions } from 'n8n-workflow';

import { apiRequest } from '../../shared/transport';
import { asRecord } from './factories';
import type { Resource } from './types';

export const accountResource: Resource = {
	value: 'account',
	name: 'Account',
	operations: [
		{
			value: 'get',
			name: 'Get',
			action: 'Get the account (organization name, plan and the scopes of the API key)',
			description: 'Retrieve the organization, plan and scopes of the API key',
			properties: [],
			async execute(this: IExecuteFunctions, i: number) {
				const response = await apiRequest.call(this, {
					method: 'GET',
					path: '/v1/me',
					action: 'get the account',
					itemIndex: i,
				});
				return [asRecord(response.data)];
			},
		},
	],
};
