// n8n's editor in a real browser: Debian's Chromium (installed with apt-get when
// missing), driven by puppeteer-core over the DevTools protocol. Reads what a user sees
// in the nodes panel, on the canvas and in a node's panel. No screenshots are compared:
// the checks read the page's text, order and links.
import fs from 'node:fs';

import puppeteer, { type Browser, type Page } from 'puppeteer-core';

import { OWNER, type N8n } from './n8n';
import { aptInstall } from './services';

/** The DOM as seen from the page's side (the project's TypeScript has no DOM library). */
type Shown = { innerText: string };

// Debian's package, or the Chrome that GitHub's Ubuntu runners come with (Ubuntu's
// chromium package is only a snap wrapper). INBOUNDFLOW_CHROMIUM names another one.
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'];

function chromiumPath(): string | undefined {
	const wanted = process.env.INBOUNDFLOW_CHROMIUM;
	if (wanted) return fs.existsSync(wanted) ? wanted : undefined;
	return CHROMIUM.find((candidate) => fs.existsSync(candidate));
}

/** Waits until `probe` returns a value (not undefined/false), or fails naming `what`. */
async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
	const deadline = Date.now() + timeoutMs;
	let last: unknown;
	while (Date.now() < deadline) {
		try {
			const value = await probe();
			if (value !== undefined && value !== false) return value;
		} catch (error) {
			last = error;
		}
		await new Promise((resolve) => setTimeout(resolve, 200));
	}
	throw new Error(`Timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

const text = (page: Page, selector: string) =>
	page.$eval(selector, (element) => (element as unknown as Shown).innerText).catch(() => '');

// A node panel's parameters pane (n8n 1.123 and 2.41 alike). The Parameters tab shows
// the node's parameters as `parameter-item`s; the Settings tab's items are there too, but
// hidden until that tab is chosen. n8n shows a collection (Options, Poll Times) once its
// component has loaded, with an "async-notice" ("Loading fields...") in its place until then.
const PARAMETERS = '[data-test-id="ndv"] [data-test-id="node-parameters"]';

export class Editor {
	private constructor(
		private readonly browser: Browser,
		readonly page: Page,
		private readonly base: string,
	) {}

	/** Logs in as the owner (`n8n.setupOwner()` must have run) in a fresh browser. */
	static async open(n8n: N8n): Promise<Editor> {
		if (!chromiumPath()) aptInstall(['chromium']);
		const executablePath = chromiumPath();
		if (!executablePath) throw new Error('chromium still missing after apt-get install');
		const browser = await puppeteer.launch({
			executablePath,
			// Root in a container: Chromium's sandbox needs user namespaces.
			args: ['--no-sandbox', '--disable-dev-shm-usage'],
			defaultViewport: { width: 1400, height: 900 },
		});
		try {
			const page = await browser.newPage();
			const base = `http://127.0.0.1:${n8n.port}`;
			await page.goto(`${base}/signin`, { waitUntil: 'networkidle2' });
			await page.waitForSelector('input[type="email"]');
			await page.type('input[type="email"]', OWNER.email);
			await page.type('input[type="password"]', OWNER.password);
			await page.keyboard.press('Enter');
			await until('the login', async () => !page.url().includes('/signin'));
			return new Editor(browser, page, base);
		} catch (error) {
			await browser.close();
			throw error;
		}
	}

	async close(): Promise<void> {
		await this.browser.close();
	}

	/** Opens a workflow's canvas and waits for its nodes. */
	async openWorkflow(id: string): Promise<void> {
		await this.page.goto(`${this.base}/workflow/${id}`, { waitUntil: 'networkidle2' });
		await this.page.waitForSelector('[data-test-id="canvas-node"]');
	}

	/** A new, empty workflow: the nodes panel then offers triggers ("What triggers this workflow?"). */
	async newWorkflow(): Promise<void> {
		await this.page.goto(`${this.base}/workflow/new`, { waitUntil: 'networkidle2' });
		await this.page.waitForSelector('[data-test-id="canvas-add-button"]');
	}

	/**
	 * Opens the nodes panel (the add button of an empty canvas, or the "+" button of a
	 * canvas with nodes) and types a search. Returns the entries as [title, description].
	 */
	async searchNodes(query: string, via: 'firstStep' | 'nextStep'): Promise<Array<[string, string]>> {
		const input = '[data-test-id="node-creator"] input';
		await this.page.click(via === 'firstStep' ? '[data-test-id="canvas-add-button"]' : '[data-test-id="node-creator-plus-button"]');
		await this.page.waitForSelector(input);
		await this.page.keyboard.type(query);
		return until(`search results for "${query}"`, async () => {
			const entries = await this.entries();
			return entries.length > 0 && entries.every(([title]) => title.toLowerCase().includes(query.toLowerCase()))
				? entries
				: undefined;
		});
	}

	private async entries(): Promise<Array<[string, string]>> {
		return this.page.$$eval('[data-test-id="node-creator"] [data-test-id="item-iterator-item"]', (items) =>
			items.map((item) => {
				const lines = (item as unknown as Shown).innerText
					.split('\n')
					.map((line: string) => line.trim())
					.filter(Boolean);
				return [lines[0] ?? '', lines.slice(1).join(' ')] as [string, string];
			}),
		);
	}

	/** Opens the entry titled `title` in the nodes panel; returns the panel's text. */
	async openEntry(title: string): Promise<string> {
		const items = await this.page.$$('[data-test-id="node-creator"] [data-test-id="item-iterator-item"]');
		for (const item of items) {
			const first = await item.evaluate((element) => (element as unknown as Shown).innerText.split('\n')[0].trim());
			if (first === title) {
				await item.click();
				return until(`the panel of "${title}"`, async () => {
					const panel = await text(this.page, '[data-test-id="node-creator"]');
					return /Triggers \(|Actions/.test(panel) ? panel : undefined;
				});
			}
		}
		throw new Error(`No entry "${title}" in the nodes panel`);
	}

	/** Closes the nodes panel or a node's panel, and waits until it is gone. */
	async escape(): Promise<void> {
		await this.page.keyboard.press('Escape');
		await until('the panel to close', async () => {
			const open = await this.page.$$eval('[data-test-id="node-creator"], [data-test-id="ndv"]', (panels) =>
				panels.some((panel) => (panel as unknown as { offsetParent: unknown }).offsetParent !== null),
			);
			return !open;
		});
	}

	/** The canvas's nodes: name, the text shown with it (name and subtitle), icon URLs. */
	async canvasNodes(): Promise<Array<{ name: string; type: string; text: string; icons: string[] }>> {
		return this.page.$$eval('[data-test-id="canvas-node"]', (nodes) =>
			nodes.map((node) => ({
				name: node.getAttribute('data-node-name') ?? '',
				type: node.getAttribute('data-node-type') ?? '',
				text: (node as unknown as Shown).innerText.replace(/\s+/g, ' ').trim(),
				icons: [...node.querySelectorAll('img')].map((img) => img.getAttribute('src') ?? ''),
			})),
		);
	}

	/** GETs a path of the n8n server with the browser's session; status and body. */
	async fetch(pathname: string): Promise<{ status: number; body: string }> {
		return this.page.evaluate(async (url) => {
			const response = await fetch(url);
			return { status: response.status, body: await response.text() };
		}, pathname);
	}

	/**
	 * Opens the panel of the canvas node `name` (double click) and returns once n8n has
	 * rendered the node's parameters there: the panel itself comes first, its parameters
	 * (and, after them, the collections n8n loads on demand, showing "Loading fields..."
	 * meanwhile) a moment later. Fails after 30 s naming the node.
	 */
	async openNode(name: string): Promise<void> {
		const node = await this.page.$(`[data-test-id="canvas-node"][data-node-name="${name}"]`);
		if (!node) throw new Error(`No node "${name}" on the canvas`);
		const box = await node.boundingBox();
		if (!box) throw new Error(`Node "${name}" is not visible`);
		await this.page.mouse.click(box.x + box.width / 2, box.y + box.height / 2, { count: 2 });
		await until(
			`the parameters of node "${name}" in its panel (a visible parameter item in ${PARAMETERS}, no "Loading fields..." left)`,
			() =>
				this.page.$$eval(PARAMETERS, (panes) =>
					panes.some(
						(pane) =>
							pane.querySelector('.async-notice') === null &&
							[...pane.querySelectorAll('[data-test-id="parameter-item"]')].some(
								(item) => (item as unknown as { offsetParent: unknown }).offsetParent !== null,
							),
					),
				),
		);
	}

	/** The open node panel's parameter area, as lines of text in display order. */
	async nodePanelLines(): Promise<string[]> {
		const panel = await text(this.page, '[data-test-id="ndv"]');
		return panel
			.split('\n')
			.map((line: string) => line.trim())
			.filter(Boolean);
	}

	/** Where the open node panel's "Docs" link points. */
	async nodePanelDocsLink(): Promise<string | null> {
		return this.page.$$eval('[data-test-id="ndv"] a', (links) => {
			const docs = links.find((link) => (link as unknown as Shown).innerText.trim() === 'Docs');
			return docs ? docs.getAttribute('href') : null;
		});
	}
}
