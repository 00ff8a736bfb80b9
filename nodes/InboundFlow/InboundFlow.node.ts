import type { IExecuteFunctions, INodeExecutionData, INodeType, INodeTypeDescription } from 'n8n-workflow';
import { NodeConnectionTypes } from 'n8n-workflow';

import { resourceProperties } from './actions/factories';
import { RESOURCES, router } from './actions/router';
import { searchCalls, searchContacts } from './methods/listSearch';

export class InboundFlow implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'InboundFlow',
		name: 'inboundFlow',
		icon: { light: 'file:inboundflow.svg', dark: 'file:inboundflow.dark.svg' },
		// A full URL is used as it is; without one n8n appends ?utm_… after the codex URL's #anchor.
		documentationUrl: 'https://github.com/inboundflow/n8n-nodes-inboundflow#operations',
		group: ['transform'],
		// 2: Call and Contact IDs are resource locators (From List / By ID); 1 keeps plain fields.
		version: [1, 2],
		defaultVersion: 2,
		subtitle: '={{$parameter["operation"] + ": " + $parameter["resource"]}}',
		description:
			'Read the calls (with their conversations), contacts, leads and appointments of InboundFlow, the AI phone receptionist, and create contacts',
		defaults: { name: 'InboundFlow' },
		usableAsTool: true,
		inputs: [NodeConnectionTypes.Main],
		outputs: [NodeConnectionTypes.Main],
		credentials: [{ name: 'inboundFlowApi', required: true }],
		properties: [
			{
				displayName: 'Resource',
				name: 'resource',
				type: 'options',
				noDataExpression: true,
				options: RESOURCES.map((r) => ({ name: r.name, value: r.value })),
				default: 'call',
			},
			...RESOURCES.flatMap(resourceProperties),
		],
	};

	methods = { listSearch: { searchCalls, searchContacts } };

	async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
		return await router.call(this);
	}
}
