import type {
	IAuthenticateGeneric,
	ICredentialTestRequest,
	ICredentialType,
	Icon,
	INodeProperties,
} from 'n8n-workflow';

export class InboundFlowApi implements ICredentialType {
	name = 'inboundFlowApi';

	displayName = 'InboundFlow API';

	icon: Icon = {
		light: 'file:../nodes/InboundFlow/inboundflow.svg',
		dark: 'file:../nodes/InboundFlow/inboundflow.dark.svg',
	};

	documentationUrl = 'https://github.com/inboundflow/n8n-nodes-inboundflow#credentials';

	properties: INodeProperties[] = [
		{
			displayName: 'API Key',
			name: 'apiKey',
			type: 'string',
			typeOptions: { password: true },
			default: '',
			required: true,
			placeholder: 'sk_live_…',
			description:
				'Your InboundFlow secret key. Create one in the InboundFlow dashboard under Settings → API. It is sent as a bearer token and never shown in output or errors.',
		},
		{
			displayName: 'Base URL',
			name: 'baseUrl',
			type: 'string',
			default: 'https://api.inboundflow.app',
			description:
				'Leave as is unless you reach InboundFlow through a proxy. Must use https://; http:// is accepted only for localhost and 127.0.0.1.',
		},
	];

	authenticate: IAuthenticateGeneric = {
		type: 'generic',
		properties: {
			headers: {
				Authorization: '=Bearer {{$credentials.apiKey}}',
			},
		},
	};

	test: ICredentialTestRequest = {
		request: {
			baseURL: '={{$credentials.baseUrl.replace(/\\/+$/, "")}}',
			url: '/v1/me',
			method: 'GET',
		},
		rules: [
			{
				type: 'responseCode',
				properties: {
					value: 401,
					message:
						'InboundFlow rejected the API key (HTTP 401). Check that you copied the whole key and that it has not been revoked.',
				},
			},
			{
				type: 'responseCode',
				properties: {
					value: 404,
					message:
						'No InboundFlow API answered at this Base URL (HTTP 404 on /v1/me). Check the Base URL.',
				},
			},
		],
	};
}
