import { test } from 'node:test';
import * as path from 'node:path';
import { TAB, backboneConfig, catchAll, datasetConfig, helper, laneNodes, recorder, tempDir, statuses } from '/work/main/test/nodes/support/lane-flow.js';
helper.init(require.resolve('node-red'));
test('x', async () => {
  await helper.startServer();
  const work = tempDir('dbg');
  await helper.load(laneNodes('lane-backbone', 'lane-dataset', 'lane-capture', 'lane-train'), [
    TAB, backboneConfig('bb', '/nonexistent/x'), datasetConfig('ds', path.join(work, 'd'), path.join(work, 'm')),
    { id: 'tr', z: 'f1', type: 'lane-train', name: '', dataset: 'ds', backbone: 'bb', headKind: 'softmax', epochs: '', hiddenUnits: '', holdoutFraction: 0.2, seed: 1, targetPrecision: 0.95, activate: true, wires: [['o1'], ['o2']] },
    { id: 'o1', z: 'f1', type: 'helper' }, { id: 'o2', z: 'f1', type: 'helper' },
    ...catchAll('catch', ['tr']),
  ]);
  const o2 = recorder(helper.getNode('o2'));
  const c = recorder(helper.getNode('catch-out'));
  helper.getNode('tr').receive({ payload: {} });
  await new Promise((r) => setTimeout(r, 1000));
  console.log(JSON.stringify(o2), JSON.stringify(c), statuses(helper.getNode('tr')));
  console.log(helper.log().args.map((a: any) => JSON.stringify(a[0])).join('\n'));
  await helper.unload(); await helper.stopServer();
});
