/**
 * Layering of src/ (docs/architecture.md, "Layers"): a module imports only from its own layer or from
 * layers below it, and no two modules import each other, directly or through others. `npm run lint`
 * runs this with dependency-cruiser; test/structure/layers.test.ts shows it failing on a bad import.
 *
 * Lowest first. Folders on one line form one layer.
 */
const LAYERS = [
  ['common'],
  ['config'],
  ['nats'],
  ['actors'],
  ['api', 'jobgraph'],
  ['ha'],
  ['metrics'],
  ['runtime'],
  ['client'],
  ['execution'],
  ['rest', 'web'],
  ['entrypoint'],
  ['minicluster'],
  ['cli', 'providers', 'index.ts'],
];

const folder = (names) => `^src/(${names.map((n) => n.replace('.', '\\.')).join('|')})(/|$)`;

const layerRules = LAYERS.slice(0, -1).map((layer, i) => ({
  name: `layer-${layer.join('-')}`,
  comment: `${layer.join(', ')} must not import from a higher layer (${LAYERS.slice(i + 1)
    .flat()
    .join(', ')})`,
  severity: 'error',
  from: { path: folder(layer) },
  to: { path: folder(LAYERS.slice(i + 1).flat()) },
}));

const config = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'import cycles hide the layering: break them with an interface in the lower module',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'an import that resolves to nothing',
      severity: 'error',
      from: { path: '^src/' },
      to: { couldNotResolve: true },
    },
    {
      name: 'no-unknown-folder',
      comment: 'every folder of src/ belongs to a layer: add a new one to LAYERS in .dependency-cruiser.cjs',
      severity: 'error',
      from: { path: '^src/', pathNot: folder(LAYERS.flat()) },
      to: {},
    },
    ...layerRules,
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    includeOnly: '^src/',
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
module.exports = config;
