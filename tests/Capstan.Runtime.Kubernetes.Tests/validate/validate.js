// Validates Kubernetes objects against the API's OpenAPI schemas with the kubernetes-models validators:
// types, enums, formats and required fields. Reads a JSON array of objects from the file named by the first
// argument and prints one JSON result per object: {index, apiVersion, kind, name, validated, errors}.
// An object of a kind these packages do not model is reported with validated: false, never as valid.
'use strict';
const fs = require('fs');

function modulePath(apiVersion) {
  const slash = apiVersion.indexOf('/');
  const group = slash < 0 ? '' : apiVersion.slice(0, slash);
  if (group === 'gateway.networking.k8s.io') {
    // Its own install (gateway-api/): it needs other versions of the base and validate packages.
    return './gateway-api/node_modules/@kubernetes-models/gateway-api/' + apiVersion;
  }
  return 'kubernetes-models/' + apiVersion;
}

function modelOf(apiVersion, kind) {
  try {
    return require(modulePath(apiVersion))[kind] || null;
  } catch (e) {
    // A group or version the packages do not model.
    if ((e.code === 'MODULE_NOT_FOUND' && e.message.includes(modulePath(apiVersion))) || e.code === 'ERR_PACKAGE_PATH_NOT_EXPORTED') {
      return null;
    }
    throw e;
  }
}

const objects = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const results = objects.map((object, index) => {
  const result = {
    index,
    apiVersion: object.apiVersion,
    kind: object.kind,
    name: object.metadata && object.metadata.name,
    validated: false,
    errors: [],
  };
  const Model = typeof object.apiVersion === 'string' && typeof object.kind === 'string' ? modelOf(object.apiVersion, object.kind) : null;
  if (!Model) {
    return result;
  }
  result.validated = true;
  try {
    new Model(object).validate();
  } catch (e) {
    const errors = Array.isArray(e.errors) ? e.errors : [{ instancePath: '', message: e.message }];
    result.errors = errors.map(error => `${error.instancePath || '/'}: ${error.message}${error.params && error.params.allowedValues ? ' (' + error.params.allowedValues.join(', ') + ')' : ''}`);
  }
  return result;
});
process.stdout.write(JSON.stringify(results));
