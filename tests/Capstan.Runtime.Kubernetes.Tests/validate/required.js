// Prints the required fields of Kubernetes API definitions, as the kubernetes-models validators enforce them:
// each named definition's compiled validator is run on an empty object and its missing properties collected.
// Usage: node required.js IoK8sApiCoreV1EnvVar ... → {"IoK8sApiCoreV1EnvVar": ["name"], ...} (null when unknown).
'use strict';
const fs = require('fs');
const path = require('path');

const folders = [
  path.join(__dirname, 'node_modules', 'kubernetes-models', '_schemas'),
  path.join(__dirname, 'node_modules', '@kubernetes-models', 'apimachinery', '_schemas'),
];

const result = {};
for (const name of process.argv.slice(2)) {
  const file = folders.map(folder => path.join(folder, name + '.js')).find(f => fs.existsSync(f));
  if (!file) {
    result[name] = null;
    continue;
  }
  const { validate } = require(file);
  validate({});
  result[name] = (validate.errors || []).filter(e => e.keyword === 'required').map(e => e.params.missingProperty).sort();
}
process.stdout.write(JSON.stringify(result));
