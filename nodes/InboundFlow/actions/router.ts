import type { IDataObject, IExecuteFunctions, INodeExecutionData } from 'n8n-workflow';
import { NodeApiError, NodeOperationError } from 'n8n-workflow';

import { accountResource } from './account';
import { appointmentResource } from './appointment';
import { callResource } from './call';
import type { Resource } from './types';
import { contactResource } from './contact';
import { leadResource } from './lead';

export const RESOURCES: Resource[] = [callResource, contactResource, leadResource, appointmentResource, accountResource];

/** The item loop: one operation per input item, pairedItem on every output. */
export async function router(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
	const items = this.getInputData();
	const output: INodeExecutionData[] = [];
	for (let i = 0; i < items.length; i++) {
		try {
			const resourceName = this.getNodeParameter('resource', i) as string;
			const operationName = this.getNodeParameter('operation', i) as string;
			const operation = RESOURCES.find((r) => r.value === resourceName)?.operations.find(
				(op) => op.value === operationName,
			);
			if (!operation) {
				throw new NodeOperationError(this.getNode(), `The operation "${operationName}" of "${resourceName}" is not supported`, {
					itemIndex: i,
				});
			}
			if ('executeItems' in operation) {
				for (const item of await operation.executeItems.call(this, i)) output.push({ ...item, pairedItem: { item: i } });
				continue;
			}
			const records: IDataObject[] = await operation.execute.call(this, i);
			// Items built directly (not returnJsonArray + constructExecutionMetaData): a
			// Return All of 100,000 records then holds no intermediate copies.
			for (const json of records) output.push({ json, pairedItem: { item: i } });
		} catch (error) {
			if (this.continueOnFail()) {
				const message = error instanceof Error ? error.message : String(error);
				output.push({ json: { error: message }, pairedItem: { item: i } });
				continue;
			}
			const nodeError =
				error instanceof NodeApiError || error instanceof NodeOperationError
					? error
					: new NodeOperationError(this.getNode(), error as Error, { itemIndex: i });
			throw nodeError;
		}
	}
	return [output];
}
