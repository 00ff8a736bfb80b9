// What a user sees of our three nodes in n8n's editor, read in a real browser
// (Debian's Chromium) from a real n8n with the package installed: the nodes panel
// (search, triggers and actions per entry), the canvas (subtitles, icons) and the
// node panels (order of fields and credential selectors, Docs link).
import { Editor } from './browser';
import { N8n, n8nInstalls } from './n8n';
import { credentials, PANEL_ID, panelWorkflow } from './workflows';

jest.setTimeout(240_000);

const REPO = 'https://github.com/inboundflow/n8n-nodes-inboundflow';

describe.each(n8nInstalls())('n8n $version', ({ bin }) => {
	let n8n: N8n;
	let editor: Editor;

	beforeAll(async () => {
		n8n = await N8n.create({ bin });
		// Nothing is called: the credentials only fill the selectors.
		await n8n.importCredentials(credentials('https://api.inboundflow.invalid', 'sk_test_panel_0123456789abc', 'whsec_panel'));
		await n8n.importWorkflows([panelWorkflow()]);
		await n8n.start();
		await n8n.setupOwner();
		editor = await Editor.open(n8n);
	});

	afterAll(async () => {
		await editor?.close();
		await n8n?.stop();
	});

	test('nodes panel, first step: one InboundFlow entry with the polling events and the actions, one for the webhook', async () => {
		await editor.newWorkflow();
		const entries = await editor.searchNodes('InboundFlow', 'firstStep');
		expect(entries.map(([title]) => title)).toEqual(['InboundFlow', 'InboundFlow Webhook']);

		const app = await editor.openEntry('InboundFlow');
		expect(app).toContain('Triggers (4)');
		for (const event of ['On new call', 'On new lead', 'On new appointment', 'On new contact']) expect(app).toContain(event);
		expect(app).toContain('Actions (9)');
		await editor.escape();

		await editor.searchNodes('InboundFlow', 'firstStep');
		const webhook = await editor.openEntry('InboundFlow Webhook');
		expect(webhook).toContain('Triggers (4)');
		for (const event of ['On appointment booked', 'On call completed', 'On call transferred', 'On lead created']) {
			expect(webhook).toContain(event);
		}
		await editor.escape();
	});

	test('nodes panel, next step: the InboundFlow entry lists every action by what it does', async () => {
		await editor.openWorkflow(PANEL_ID);
		await editor.searchNodes('InboundFlow', 'nextStep');
		const app = await editor.openEntry('InboundFlow');
		for (const action of [
			'Get many calls',
			'Get a call by its ID',
			'Get many contacts',
			'Get a contact by its ID',
			'Create a contact',
			'Find contacts by phone',
			'Get many leads',
			'Get many appointments',
			'Get the account',
		]) {
			expect(app).toContain(action);
		}
		await editor.escape();
	});

	test('canvas: the polling trigger says which event in words; triggers and action have their own icons, served by n8n', async () => {
		await editor.openWorkflow(PANEL_ID);
		const nodes = Object.fromEntries((await editor.canvasNodes()).map((node) => [node.name, node]));
		expect(nodes['When a Lead Arrives'].text).toContain('New Lead');
		expect(nodes['When a Lead Arrives'].text).not.toContain('newLead');

		const icon = (name: string) => nodes[name].icons.find((src) => src.endsWith('.svg')) ?? '';
		expect(icon('When a Lead Arrives')).toMatch(/\/inboundflow-trigger(\.dark)?\.svg$/);
		expect(icon('When a Call Completes')).toMatch(/\/inboundflow-trigger(\.dark)?\.svg$/);
		expect(icon('Find Leads')).toMatch(/\/inboundflow(\.dark)?\.svg$/);
		for (const name of ['When a Lead Arrives', 'Find Leads']) {
			const served = await editor.fetch(icon(name));
			expect(served.status).toBe(200);
			expect(served.body).toContain('<svg');
		}
	});

	test('webhook trigger panel: each credential selector is named and comes after the switch that asks for it', async () => {
		await editor.openWorkflow(PANEL_ID);
		await editor.openNode('When a Call Completes');
		const lines = await editor.nodePanelLines();
		const at = (label: string) => {
			const index = lines.indexOf(label);
			if (index < 0) throw new Error(`"${label}" is not in the panel: ${JSON.stringify(lines)}`);
			return index;
		};
		expect(lines.some((line) => line.startsWith('Setup: open "Webhook URLs"'))).toBe(true);
		expect(at('Verify Signatures')).toBeLessThan(at('Signing Secret'));
		expect(at('Fetch Full Call')).toBeLessThan(at('InboundFlow API (for Fetch Full Call)'));
		expect(lines).not.toContain('Credential to connect with');
		// The hidden field that keeps n8n 1.x from taking Verify Signatures for an auth choice.
		expect(lines.filter((line) => /Signing Secret Shown|Authentication/.test(line))).toEqual([]);
		expect(await editor.nodePanelDocsLink()).toBe(`${REPO}#webhook-trigger`);
		await editor.escape();
	});

	test('polling trigger panel: Lookback shows "Automatic", not a bare 0', async () => {
		await editor.openWorkflow(PANEL_ID);
		await editor.openNode('When a Lead Arrives');
		expect(await editor.nodePanelLines()).toContain('Lookback');
		const values = await editor.page.$$eval('[data-test-id="ndv"] input', (inputs) =>
			inputs.map((input) => (input as unknown as { value: string }).value),
		);
		expect(values).toContain('Automatic (15 Min for Calls, 2 Min Otherwise)');
		expect(await editor.nodePanelDocsLink()).toBe(`${REPO}#polling-trigger`);
		await editor.escape();
	});
});
