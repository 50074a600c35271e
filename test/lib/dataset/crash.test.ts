/**
 * Crash safety: leftovers of a writer that died are never seen as images or as the
 * manifest, are cleaned up by the next writable open, and a process killed while adding
 * leaves only whole images and a valid manifest.
 */
import { afterEach, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MANIFEST_FILE_NAME, openDataset } from '../../../src/dataset/index.js';
import { TEMP_PREFIX } from '../../../src/fs/atomic.js';
import { listTree, readManifestJson, realPhotos } from './support.js';

const REPO = path.resolve(__dirname, '..', '..', '..');
let root: string;

beforeEach(async () => {
  root = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'lane-vision-crash-'));
});

afterEach(async () => {
  await fs.promises.rm(root, { recursive: true, force: true });
});

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** The pid of a process that has exited, as a crashed writer's would be. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.on('exit', resolve));
  assert.ok(child.pid);
  return child.pid;
}

function tempFiles(dir: string): string[] {
  const found: string[] = [];
  for (const item of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (item.name.startsWith(TEMP_PREFIX)) found.push(path.join(item.parentPath ?? (item as unknown as { path: string }).path, item.name));
  }
  return found;
}

test('temp files and a half-written temp manifest from a crash are ignored, then cleaned up', async () => {
  const photos = realPhotos(3);
  const dataset = await openDataset(root);
  await dataset.add('A', photos[0].bytes);
  await dataset.add('B', photos[1].bytes);
  const entries = await dataset.entries();
  const fingerprint = await dataset.fingerprint();
  const manifestText = fs.readFileSync(path.join(root, MANIFEST_FILE_NAME), 'utf8');

  // What a writer killed mid-write leaves: a torn image temp file and a torn manifest temp file.
  const pid = await deadPid();
  const tornImage = path.join(root, 'A', `${TEMP_PREFIX}${pid}-0a1b2c3d4e5f`);
  const tornManifest = path.join(root, `${TEMP_PREFIX}${pid}-abcdef012345`);
  const unnamed = path.join(root, 'B', `${TEMP_PREFIX}garbage`);
  fs.writeFileSync(tornImage, photos[2].bytes.subarray(0, 500));
  fs.writeFileSync(tornManifest, manifestText.slice(0, manifestText.length / 2));
  fs.writeFileSync(unnamed, 'x');
  // A label folder made by a crashed add before its image landed holds only a temp file.
  fs.mkdirSync(path.join(root, 'C'));
  fs.writeFileSync(path.join(root, 'C', `${TEMP_PREFIX}${pid}-ffffffffffff`), photos[2].bytes.subarray(0, 100));

  // A read-only open sees the dataset as it was and leaves the leftovers alone.
  const snapshot = await listTree(root);
  const viewer = await openDataset(root, { readOnly: true });
  assert.deepEqual(await viewer.entries(), entries);
  assert.deepEqual(viewer.labels(), ['A', 'B']);
  assert.deepEqual(await listTree(root), snapshot);

  // A writable open also sees the same dataset and removes them.
  const reopened = await openDataset(root);
  assert.deepEqual(await reopened.entries(), entries);
  assert.equal(await reopened.fingerprint(), fingerprint);
  assert.deepEqual(tempFiles(root), []);
  assert.equal(fs.readFileSync(path.join(root, MANIFEST_FILE_NAME), 'utf8'), manifestText);
  // And the dataset works on from there.
  await reopened.add('C', photos[2].bytes);
  assert.deepEqual(reopened.counts(), { A: 1, B: 1, C: 1 });
});

test('temp files of a writer that is still running are left alone', async (t) => {
  const dataset = await openDataset(root);
  await dataset.add('A', realPhotos(1)[0].bytes);
  const writer = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
  t.after(() => writer.kill('SIGKILL'));
  assert.ok(writer.pid);
  const inProgress = path.join(root, 'A', `${TEMP_PREFIX}${writer.pid}-123456789abc`);
  fs.writeFileSync(inProgress, 'half');
  await dataset.refresh();
  await openDataset(root);
  assert.ok(fs.existsSync(inProgress));
  assert.equal(dataset.size, 1);
});

test('a relabel interrupted between moving the file and writing the manifest keeps the entry', async () => {
  const dataset = await openDataset(root);
  const photos = realPhotos(2);
  const entry = await dataset.add('A', photos[0].bytes, { author: 'anna', source: 'camera:lane-1' });
  await dataset.add('A', photos[1].bytes);
  // The file moved, the manifest still says "A".
  fs.mkdirSync(path.join(root, 'B'));
  fs.renameSync(entry.path, path.join(root, 'B', entry.file));
  await dataset.refresh();
  const recovered = await dataset.entry(entry.id);
  assert.ok(recovered);
  assert.equal(recovered.label, 'B');
  assert.equal(recovered.author, 'anna');
  assert.equal(recovered.source, 'camera:lane-1');
  assert.deepEqual(dataset.counts(), { A: 1, B: 1 });
});

test('a remove interrupted after deleting the file drops the entry instead of failing', async () => {
  const dataset = await openDataset(root);
  const photos = realPhotos(2);
  const gone = await dataset.add('A', photos[0].bytes);
  await dataset.add('A', photos[1].bytes);
  fs.rmSync(gone.path);
  await dataset.refresh();
  assert.equal(await dataset.entry(gone.id), undefined);
  assert.equal(dataset.size, 1);
});

/**
 * Runs a child process that adds `files` one by one and kills itself (SIGKILL, no cleanup)
 * at `crashAt` during the 4th add: halfway through writing the image or the manifest temp
 * file, or with the temp file complete but not yet renamed into place. The real store code
 * runs; only the file system calls are wrapped to find the moment.
 */
async function crashWhileAdding(data: string, files: string[], crashAt: string): Promise<NodeJS.Signals | null> {
  const child = path.join(root, `writer-${crashAt}.ts`);
  fs.writeFileSync(
    child,
    `
    const fs = require('node:fs');
    const path = require('node:path');
    const { openDataset } = require(${JSON.stringify(path.join(REPO, 'src', 'dataset', 'index.ts'))});
    const data = ${JSON.stringify(data)};
    const crashAt = ${JSON.stringify(crashAt)};
    const CRASH_ON = 4;
    const written = { image: 0, manifest: 0 };
    const tempKind = (p) => path.basename(String(p)).startsWith(${JSON.stringify(TEMP_PREFIX)})
      ? (path.dirname(String(p)) === data ? 'manifest' : 'image') : undefined;
    const die = () => process.kill(process.pid, 'SIGKILL');
    const realOpen = fs.promises.open;
    fs.promises.open = async (p, ...rest) => {
      const handle = await realOpen(p, ...rest);
      const kind = tempKind(p);
      if (!kind) return handle;
      const realWrite = handle.writeFile.bind(handle);
      handle.writeFile = async (content) => {
        if (++written[kind] === CRASH_ON && crashAt === kind + '-torn') {
          await realWrite(content.slice(0, Math.floor(content.length / 2)));
          await handle.sync();
          die();
          await new Promise(() => {});
        }
        return realWrite(content);
      };
      return handle;
    };
    const realRename = fs.promises.rename;
    fs.promises.rename = async (from, to) => {
      const kind = tempKind(from);
      if (kind && written[kind] === CRASH_ON && crashAt === kind + '-unrenamed') {
        die();
        await new Promise(() => {});
      }
      return realRename(from, to);
    };
    (async () => {
      const dataset = await openDataset(data);
      for (const [i, file] of ${JSON.stringify(files)}.entries()) await dataset.add(i % 2 ? 'Even' : 'Odd', file, { author: 'writer' });
    })();
    `,
  );
  const writer = spawn(process.execPath, ['--import', 'tsx', child], { cwd: REPO, stdio: ['ignore', 'inherit', 'inherit'] });
  return new Promise((resolve) => writer.on('exit', (_code, signal) => resolve(signal)));
}

const CRASHES: { crashAt: string; visible: number; fromFolder: number }[] = [
  // Image torn or never renamed: the 4th add never happened.
  { crashAt: 'image-torn', visible: 3, fromFolder: 0 },
  { crashAt: 'image-unrenamed', visible: 3, fromFolder: 0 },
  // Image in place, manifest not updated: the image is kept, as a file without metadata.
  { crashAt: 'manifest-torn', visible: 4, fromFolder: 1 },
  { crashAt: 'manifest-unrenamed', visible: 4, fromFolder: 1 },
];

for (const { crashAt, visible, fromFolder } of CRASHES) {
  test(`a writer killed at ${crashAt} leaves whole images and a valid manifest`, async () => {
    const photos = realPhotos(6);
    const data = path.join(root, 'data');
    const signal = await crashWhileAdding(data, photos.map((p) => p.file), crashAt);
    assert.equal(signal, 'SIGKILL', 'the writer died at the crash point instead of finishing');
    assert.equal(tempFiles(data).length, 1, 'the crash left its temp file');
    const manifestBefore = readManifestJson(data);
    assert.equal(manifestBefore.entries.length, 3);

    for (const readOnly of [true, false]) {
      const dataset = await openDataset(data, { readOnly });
      const entries = await dataset.entries();
      assert.equal(entries.length, visible);
      assert.equal(entries.filter((e) => e.source === 'folder').length, fromFolder);
      assert.equal(entries.filter((e) => e.author === 'writer').length, 3);
      for (const entry of entries) {
        const bytes = fs.readFileSync(entry.path);
        assert.equal(entry.sha256, sha256(bytes));
        assert.ok(photos.slice(0, 4).some((p) => p.bytes.equals(bytes)), 'every visible image is a complete original');
      }
      // Read-only leaves the leftover alone; the writable open removes it.
      assert.equal(tempFiles(data).length, readOnly ? 1 : 0);
    }
    assert.deepEqual(readManifestJson(data), manifestBefore, 'opening alone never rewrites the manifest');
    const dataset = await openDataset(data);
    await dataset.add('Odd', photos[4].bytes);
    assert.equal(readManifestJson(data).entries.length, visible + 1);
  });
}
