import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VERSION } from '../../src/version.js';

describe('project rules', () => {
  it('keeps VERSION equal to package.json', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(VERSION).toBe(pkg.version);
  });

  it('documents every setting in docs/configuration.md and every tool in the README', async () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const configuration = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    const { SETTINGS } = await import('../../src/config.js');
    for (const s of SETTINGS) {
      if (s.env) expect(configuration, s.env).toContain(`\`${s.env}`);
      if (s.flag && !['help', 'version'].includes(s.flag)) expect(configuration, s.flag).toContain(`\`--${s.flag}\``);
    }
    for (const tool of ['remove_app_restriction', 'cancel_machine_action', 'find_machine', 'get_machine_action', 'list_machine_actions']) {
      expect(readme).toContain(`| \`${tool}\` |`);
    }
  });

  it('keeps the settings table in docs/configuration.md equal to the one description of the settings (npm run docs)', async () => {
    const configuration = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    const { settingsMarkdown } = await import('../../src/settings.js');
    const table = configuration.split('<!-- settings:start -->\n')[1]?.split('\n<!-- settings:end -->')[0];
    expect(table, 'docs/configuration.md is out of date: run npm run docs').toBe(settingsMarkdown());
  });

  it('keeps the README tool table equal to what the server lists in each mode (npm run docs)', async () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const { toolsMarkdown } = await import('../../src/tool-table.js');
    const table = readme.split('<!-- tools:start -->\n')[1]?.split('\n<!-- tools:end -->')[0];
    expect(table, 'README.md is out of date: run npm run docs').toBe(await toolsMarkdown());
  });

  it('has no stdout writes in src/ (stdout carries JSON-RPC)', () => {
    const srcDir = new URL('../../src', import.meta.url).pathname;
    const offenders: string[] = [];
    const allowed: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const p = join(dir, name);
        if (statSync(p).isDirectory()) walk(p);
        else if (p.endsWith('.ts')) {
          readFileSync(p, 'utf8')
            .split('\n')
            .forEach((line, i) => {
              if (!/console\.(log|info|debug|table|dir)\(|process\.stdout\.write\(/.test(line)) return;
              // --help and --version are asked for, not a server run: their two lines in cli.ts print to stdout.
              if (p.endsWith('/src/cli.ts') && /process\.stdout\.write\(`\$\{helpText\(\)\}\\n`\);$|process\.stdout\.write\(`mde-app-restriction-mcp \$\{VERSION\}\\n`\);$/.test(line.trim())) allowed.push(`${p}:${i + 1}`);
              else offenders.push(`${p}:${i + 1}`);
            });
        }
      }
    };
    walk(srcDir);
    expect(offenders).toEqual([]);
    expect(allowed).toHaveLength(2);
  });
});
