import type {
	ICredentialDataDecryptedObject,
	ICredentialTestRequest,
	ICredentialType,
	IHttpRequestOptions,
	Icon,
	INodeProperties,
} from 'n8n-workflow';

import { checkBaseUrlText, DEFAULT_BASE_URL, requestOrigin } from '../nodes/shared/baseUrl';

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
			default: DEFAULT_BASE_URL,
			description:
				'Leave as is unless you reach InboundFlow through a proxy. Must use https://; http:// is accepted only for localhost and 127.0.0.1. The key is sent to this address only.',
		},
	];

	/**
	 * Adds the bearer key, and refuses (before anything is sent) a request that would
	 * carry it over plain http or to any origin other than the Base URL's: the
	 * credential test, our nodes and any other node using this credential alike.
	 */
	async authenticate(
		credentials: ICredentialDataDecryptedObject,
		requestOptions: IHttpRequestOptions,
	): Promise<IHttpRequestOptions> {
		const check = checkBaseUrlText(credentials.baseUrl);
		if (!check.ok) throw new Error(`Base URL: ${check.problem}`);
		// n8n's own nodes (HTTP Request) pass the older request options: the address in
		// `uri` (and a relative one under `baseUrl`) instead of `url` / `baseURL`.
		const legacy = requestOptions as IHttpRequestOptions & { uri?: unknown; baseUrl?: unknown };
		const address = requestOptions.url ?? (legacy.uri !== undefined ? String(legacy.uri) : undefined);
		const base = requestOptions.baseURL ?? (typeof legacy.baseUrl === 'string' ? legacy.baseUrl : undefined);
		const target = requestOrigin(address, base);
		if (target !== check.origin) {
			throw new Error(
				`The InboundFlow API key is sent only to ${check.origin} (the credential's Base URL); this request goes to ${target ?? 'an invalid URL'}`,
			);
		}
		return {
			...requestOptions,
			headers: { ...requestOptions.headers, Authorization: `Bearer ${String(credentials.apiKey ?? '')}` },
		};
	}

	test: ICredentialTestRequest = {
		request: {
			baseURL: '={{$credentials.baseUrl || "https://api.inboundflow.app"}}',
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
