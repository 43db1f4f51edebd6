/**
 * The layer rules of `npm run lint` (.dependency-cruiser.cjs, docs/architecture.md "Layers") hold on
 * the tree, and fail on a deliberately added upward import or import cycle: a scratch project with the
 * same rules and a few files is cruised by the real dependency-cruiser.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DEPCRUISE = join(ROOT, 'node_modules', '.bin', 'depcruise');
const run = promisify(execFile);

async function cruise(cwd: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(
      DEPCRUISE,
      ['src', '--config', '.dependency-cruiser.cjs', '--output-type', 'err'],
      { cwd },
    );
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, output: e.stdout + e.stderr };
  }
}

const scratchDirs: string[] = [];
function scratch(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-layers-'));
  scratchDirs.push(dir);
  cpSync(join(ROOT, '.dependency-cruiser.cjs'), join(dir, '.dependency-cruiser.cjs'));
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', strict: true } }),
  );
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

afterAll(() => {
  for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
});

describe('layer rules (npm run lint)', () => {
  it('pass on the tree', async () => {
    const { code, output } = await cruise(ROOT);
    expect(output).toContain('no dependency violations found');
    expect(code).toBe(0);
  }, 60_000);

  it('fail on an import from a higher layer', async () => {
    const dir = scratch({
      'src/runtime/task.ts': "import { submit } from '../cli/run.js';\nexport const task = submit;\n",
      'src/cli/run.ts': 'export const submit = 1;\n',
    });
    const { code, output } = await cruise(dir);
    expect(code).not.toBe(0);
    expect(output).toMatch(/layer-runtime: src\/runtime\/task\.ts → src\/cli\/run\.ts/);
  }, 60_000);

  it('fail on an import cycle inside one layer', async () => {
    const dir = scratch({
      'src/api/a.ts': "import { b } from './b.js';\nexport const a = () => b;\n",
      'src/api/b.ts': "import { a } from './a.js';\nexport const b = () => a;\n",
    });
    const { code, output } = await cruise(dir);
    expect(code).not.toBe(0);
    expect(output).toContain('no-circular');
  }, 60_000);

  it('fail on a folder that belongs to no layer', async () => {
    const dir = scratch({
      'src/misc/helper.ts': "import { x } from '../common/x.js';\nexport const y = x;\n",
      'src/common/x.ts': 'export const x = 1;\n',
    });
    const { code, output } = await cruise(dir);
    expect(code).not.toBe(0);
    expect(output).toContain('no-unknown-folder');
  }, 60_000);
});
