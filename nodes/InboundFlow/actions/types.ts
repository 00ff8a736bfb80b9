// What a resource and an operation of the action node are.
import type { IDataObject, IExecuteFunctions, INodeProperties } from 'n8n-workflow';

export interface Operation {
	value: string;
	name: string;
	action: string;
	description: string;
	properties: INodeProperties[];
	execute(this: IExecuteFunctions, itemIndex: number): Promise<IDataObject[]>;
}

export interface Resource {
	value: string;
	name: string;
	operations: Operation[];
}
