// A scripted stand-in for an OpenAI-compatible chat model: a small real HTTP server
// that answers POST /v1/chat/completions (plain JSON, or server-sent events when the
// client asks for `stream: true`) and GET /v1/models. What it answers is decided by a
// script from the conversation it receives, so a test can make a real n8n AI Agent
// call tools and then answer. Every request is recorded.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ChatMessage {
	role: 'system' | 'user' | 'assistant' | 'tool' | string;
	content?: unknown;
	tool_calls?: Array<{ id: string; type: 'function'; function: { name: string; arguments: string } }>;
	tool_call_id?: string;
	name?: string;
}

export interface ChatTool {
	type: 'function';
	function: { name: string; description?: string; parameters?: Record<string, unknown> };
}

export interface ChatRequest {
	method: string;
	path: string;
	headers: http.IncomingHttpHeaders;
	body: {
		model?: string;
		messages?: ChatMessage[];
		tools?: ChatTool[];
		stream?: boolean;
		[key: string]: unknown;
	};
}

export interface ToolCall {
	name: string;
	arguments: Record<string, unknown>;
}

/** What the model answers: text (the final answer) or tool calls. */
export type Reply = { content: string } | { toolCalls: ToolCall[] };

export type Script = (request: ChatRequest) => Reply;

export interface ModelStandIn {
	/** Base URL for an OpenAI credential's "Base URL" field, e.g. http://127.0.0.1:1234/v1 */
	baseUrl: string;
	/** Every request, in order of arrival. */
	requests: ChatRequest[];
	/** Only the chat-completion requests. */
	completions(): ChatRequest[];
	script: Script;
	close(): Promise<void>;
}

/** Text of a message's content, whether a string or a list of parts. */
export function textOf(content: unknown): string {
	if (typeof content === 'string') return content;
	if (Array.isArray(content)) {
		return content
			.map((part) => (typeof part === 'object' && part !== null && 'text' in part ? String((part as { text: unknown }).text) : ''))
			.join('');
	}
	return '';
}

/** The tool results (role "tool") in a conversation, in order. */
export function toolResults(request: ChatRequest): Array<{ toolCallId?: string; content: string }> {
	return (request.body.messages ?? [])
		.filter((m) => m.role === 'tool')
		.map((m) => ({ toolCallId: m.tool_call_id, content: textOf(m.content) }));
}

/**
 * A script that asks for the given rounds of tool calls one after the other (a round
 * is answered once the conversation holds as many tool results as the rounds so far
 * requested), then answers with `finalAnswer(request)`.
 */
export function toolRounds(rounds: ToolCall[][], finalAnswer: (request: ChatRequest) => string): Script {
	return (request) => {
		const answered = toolResults(request).length;
		let requested = 0;
		for (const round of rounds) {
			if (answered === requested) return { toolCalls: round };
			requested += round.length;
		}
		return { content: finalAnswer(request) };
	};
}

let callCounter = 0;

function completion(model: string, reply: Reply) {
	const created = Math.floor(Date.now() / 1000);
	const id = `chatcmpl-standin${Date.now()}`;
	const message =
		'content' in reply
			? { role: 'assistant', content: reply.content }
			: {
					role: 'assistant',
					content: null,
					tool_calls: reply.toolCalls.map((call) => ({
						id: `call_standin_${++callCounter}`,
						type: 'function',
						function: { name: call.name, arguments: JSON.stringify(call.arguments) },
					})),
				};
	return {
		id,
		created,
		message,
		finish: 'content' in reply ? 'stop' : 'tool_calls',
		usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
		model,
	};
}

export async function startModelStandIn(script: Script = () => ({ content: 'OK' }), port = 0): Promise<ModelStandIn> {
	const requests: ChatRequest[] = [];
	const standIn: ModelStandIn = {
		baseUrl: '',
		requests,
		completions: () => requests.filter((r) => r.path.endsWith('/chat/completions')),
		script,
		close: async () => {
			server.closeAllConnections();
			await new Promise<void>((resolve) => server.close(() => resolve()));
		},
	};
	const server = http.createServer((req, res) => {
		const chunks: Buffer[] = [];
		req.on('data', (c: Buffer) => chunks.push(c));
		req.on('end', () => {
			const text = Buffer.concat(chunks).toString('utf8');
			let body: ChatRequest['body'] = {};
			try {
				body = text ? (JSON.parse(text) as ChatRequest['body']) : {};
			} catch {
				res.writeHead(400, { 'content-type': 'application/json' });
				res.end(JSON.stringify({ error: { message: 'body is not JSON', type: 'invalid_request_error' } }));
				return;
			}
			const path = new URL(req.url ?? '/', 'http://localhost').pathname;
			const request: ChatRequest = { method: req.method ?? 'GET', path, headers: req.headers, body };
			requests.push(request);
			const json = (status: number, value: unknown) => {
				res.writeHead(status, { 'content-type': 'application/json' });
				res.end(JSON.stringify(value));
			};
			if (request.method === 'GET' && path.endsWith('/models')) {
				json(200, { object: 'list', data: [{ id: 'standin-model', object: 'model', created: 0, owned_by: 'test' }] });
				return;
			}
			if (request.method !== 'POST' || !path.endsWith('/chat/completions')) {
				json(404, { error: { message: `The stand-in does not serve ${request.method} ${path}`, type: 'invalid_request_error' } });
				return;
			}
			let reply: Reply;
			try {
				reply = standIn.script(request);
			} catch (error) {
				json(500, { error: { message: `stand-in script failed: ${String(error)}`, type: 'server_error' } });
				return;
			}
			const model = body.model ?? 'standin-model';
			const done = completion(model, reply);
			if (!body.stream) {
				json(200, {
					id: done.id,
					object: 'chat.completion',
					created: done.created,
					model,
					choices: [{ index: 0, message: done.message, finish_reason: done.finish, logprobs: null }],
					usage: done.usage,
				});
				return;
			}
			// Streaming: the whole message in one delta, then the finish reason, then usage.
			res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
			const send = (chunk: unknown) => res.write(`data: ${JSON.stringify(chunk)}\n\n`);
			const base = { id: done.id, object: 'chat.completion.chunk', created: done.created, model };
			const delta =
				'tool_calls' in done.message && done.message.tool_calls
					? { role: 'assistant', content: null, tool_calls: done.message.tool_calls.map((c, index) => ({ index, ...c })) }
					: { role: 'assistant', content: done.message.content };
			send({ ...base, choices: [{ index: 0, delta, finish_reason: null }] });
			send({ ...base, choices: [{ index: 0, delta: {}, finish_reason: done.finish }] });
			const options = body.stream_options as { include_usage?: boolean } | undefined;
			if (options?.include_usage) send({ ...base, choices: [], usage: done.usage });
			res.end('data: [DONE]\n\n');
		});
	});
	await new Promise<void>((resolve, reject) => {
		server.once('error', reject);
		server.listen(port, '127.0.0.1', () => resolve());
	});
	standIn.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
	return standIn;
}
