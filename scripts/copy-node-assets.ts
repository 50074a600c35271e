/**
 * tsc compiles only the runtime .ts; Node-RED also needs each node's editor .html,
 * its locales, and an `icons/` folder beside the compiled .js (it looks for icons
 * there, not at the package root), so the build copies them into dist/nodes/<type>/.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const nodesSrc = path.join(root, 'nodes');
const nodesOut = path.join(root, 'dist', 'nodes');
const iconsSrc = path.join(root, 'icons');

function copyTree(from: string, to: string, keep: (file: string) => boolean): number {
  let copied = 0;
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    const target = path.join(to, entry.name);
    if (entry.isDirectory()) {
      copied += copyTree(source, target, keep);
    } else if (keep(entry.name)) {
      fs.mkdirSync(to, { recursive: true });
      fs.copyFileSync(source, target);
      copied++;
    }
  }
  return copied;
}

let copied = 0;
for (const entry of fs.readdirSync(nodesSrc, { withFileTypes: true })) {
  if (!entry.isDirectory()) continue;
  const from = path.join(nodesSrc, entry.name);
  const to = path.join(nodesOut, entry.name);
  copied += copyTree(from, to, (name) => !name.endsWith('.ts'));
  if (fs.existsSync(path.join(from, `${entry.name}.html`)) && fs.existsSync(iconsSrc)) {
    copied += copyTree(iconsSrc, path.join(to, 'icons'), (name) => /\.(svg|png)$/.test(name));
  }
}
console.log(`copied ${copied} node asset files into ${path.relative(root, nodesOut)}`);
