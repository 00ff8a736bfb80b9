import type { ICredentialType, Icon, INodeProperties } from 'n8n-workflow';

export class InboundFlowWebhookApi implements ICredentialType {
	name = 'inboundFlowWebhookApi';

	displayName = 'InboundFlow Webhook Signing Secret API';

	icon: Icon = {
		light: 'file:../nodes/InboundFlow/inboundflow.svg',
		dark: 'file:../nodes/InboundFlow/inboundflow.dark.svg',
	};

	documentationUrl = 'https://github.com/inboundflow/n8n-nodes-inboundflow#webhook-trigger';

	properties: INodeProperties[] = [
		{
			displayName: 'Signing Secret',
			name: 'signingSecret',
			type: 'string',
			typeOptions: { password: true },
			default: '',
			required: true,
			description:
				'The signing secret you set for the Custom Webhook in InboundFlow (Settings → Integrations → Custom Webhook). Every delivery without a valid X-InboundFlow-Signature is refused with HTTP 401.',
		},
	];
}
