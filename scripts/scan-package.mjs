// Runs the checks of @n8n/scan-community-package on this package without publishing
// it: the scanner's own lint of the source (as it lints the provenance-attested
// source) and of the packed tarball (as it lints the published artifact).
// Prints one JSON line: { passed, files, source, tarball }.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { analyzePackage, SOURCE_FILE_PATTERNS } from '@n8n/scan-community-package/scanner/scanner.mjs';

import { ROOT } from './lib/env.mjs';

const out = fs.mkdtempSync(path.join(os.tmpdir(), 'inboundflow-pack-'));
const pack = spawnSync('npm', ['pack', '--json', '--pack-destination', out], { cwd: ROOT, encoding: 'utf8' });
if (pack.status !== 0) {
	process.stdout.write(JSON.stringify({ passed: false, error: pack.stderr }) + '\n');
	process.exit(1);
}
const [info] = JSON.parse(pack.stdout);
const unpacked = path.join(out, 'package');
fs.mkdirSync(unpacked);
spawnSync('tar', ['-xzf', path.join(out, info.filename), '-C', unpacked, '--strip-components=1']);
const source = await analyzePackage(ROOT, SOURCE_FILE_PATTERNS);
const tarball = await analyzePackage(unpacked, ['**/*.js', 'package.json']);
const result = {
	passed: source.passed && tarball.passed,
	files: info.files.map((f) => f.path).sort(),
	source: { passed: source.passed, message: source.message, details: source.details },
	tarball: { passed: tarball.passed, message: tarball.message, details: tarball.details },
};
fs.rmSync(out, { recursive: true, force: true });
process.stdout.write(JSON.stringify(result) + '\n');
