import type {
	ICredentialDataDecryptedObject,
	ICredentialTestRequest,
	ICredentialType,
	IHttpRequestOptions,
	Icon,
	INodeProperties,
} from 'n8n-workflow';

import { checkBaseUrlText, DEFAULT_BASE_URL, refusalOf } from '../nodes/shared/baseUrl';

const REDIRECT_STATUSES = [300, 301, 302, 303, 307, 308];

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
				'Leave as is unless you reach InboundFlow through a gateway. Must use https:// (http:// is accepted only for localhost and 127.0.0.1), without a query or fragment. The key is sent to this address (and paths below it) only, never along a redirect.',
		},
		{
			displayName: 'Rate Limit Use',
			name: 'rateLimitUse',
			type: 'options',
			options: [
				{
					name: 'Leave Room for Other Apps',
					value: 'leaveRoom',
					description:
						'When other apps use this key too, the node leaves them what they used in the last minute, and one request more',
				},
				{
					name: 'Use the Whole Limit',
					value: 'wholeLimit',
					description: 'The node takes every request the limit allows; other apps on this key may get HTTP 429 meanwhile',
				},
			],
			default: 'leaveRoom',
			description:
				'How much of the key’s rate limit (60 requests per minute) the nodes may take. The nodes notice other apps on the key when its remaining requests fall faster than their own requests explain.',
		},
	];

	/**
	 * Adds the bearer key, and refuses (before anything is sent) a request that would
	 * carry it anywhere but under the Base URL, through a proxy set on the node, or with
	 * TLS checks weakened: the credential test, our nodes and any other node using this
	 * credential (n8n's HTTP Request node) alike. The options it returns turn off every
	 * way n8n follows a redirect, so the key is never re-sent to where a server points.
	 */
	async authenticate(
		credentials: ICredentialDataDecryptedObject,
		requestOptions: IHttpRequestOptions,
	): Promise<IHttpRequestOptions> {
		const check = checkBaseUrlText(credentials.baseUrl);
		if (!check.ok) throw new Error(`Base URL: ${check.problem}`);
		const refusal = refusalOf(requestOptions as unknown as Record<string, unknown>, check);
		if (refusal) throw new Error(`The InboundFlow API key is sent only to ${check.baseUrl} (the credential's Base URL)${refusal}`);
		const noRedirects = {
			// helpers.httpRequest (our nodes, the credential test)
			disableFollowRedirect: true,
			maxRedirects: 0,
			// the older request options (n8n's HTTP Request node)
			followRedirect: false,
			followAllRedirects: false,
			// and should any of them be ignored, no key on another origin
			sendCredentialsOnCrossOriginRedirect: false,
		};
		return {
			...requestOptions,
			...noRedirects,
			headers: { ...requestOptions.headers, Authorization: `Bearer ${String(credentials.apiKey ?? '')}` },
		};
	}

	test: ICredentialTestRequest = {
		request: {
			baseURL: '={{$credentials.baseUrl || "https://api.inboundflow.app"}}',
			url: '/v1/me',
			method: 'GET',
			disableFollowRedirect: true,
		},
		rules: [
			// The credential test sends the key too: a redirect is refused, not followed.
			...REDIRECT_STATUSES.map((status) => ({
				type: 'responseCode' as const,
				properties: {
					value: status,
					message: `InboundFlow answered /v1/me with a redirect (HTTP ${status}), which the credential test does not follow: the API key is sent only to the Base URL. If InboundFlow really moved, set the Base URL to its new https:// address.`,
				},
			})),
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
