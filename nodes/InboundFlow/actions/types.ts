// What a resource and an operation of the action node are.
import type { IDataObject, IExecuteFunctions, INodeExecutionData, INodeProperties } from 'n8n-workflow';

export interface Operation {
	value: string;
	name: string;
	action: string;
	description: string;
	properties: INodeProperties[];
	execute(this: IExecuteFunctions, itemIndex: number): Promise<IDataObject[]>;
}

/** An operation whose output carries files: whole items (json and binary); the router adds pairedItem. */
export interface FileOperation extends Omit<Operation, 'execute'> {
	executeItems(this: IExecuteFunctions, itemIndex: number): Promise<INodeExecutionData[]>;
	/** Hidden in the AI tool variant of the node (an agent cannot use a file). */
	notForTools?: boolean;
}

export interface Resource {
	value: string;
	name: string;
	operations: Array<Operation | FileOperation>;
}
