// Run a TensorFlow.js graph model with TensorFlow.js itself (CPU backend) on one input.
//
//   node run_graph.mjs MODEL_JSON INPUT_BIN INPUT_DTYPE INPUT_SHAPE OUTPUT_DIR OUTPUT_NAME...
//
// INPUT_BIN holds the input tensor's values, little-endian, as INPUT_DTYPE (float32 or int32);
// INPUT_SHAPE is comma-separated. Each named output (a node name, inner nodes allowed) is
// written to OUTPUT_DIR as NAME.bin (float32 or int32, little-endian, '/' in the name as '__'),
// and OUTPUT_DIR/outputs.json lists their shapes and dtypes. Used by make_golden.py.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { loadGraphModel } from '@tensorflow/tfjs-converter';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

const [modelJson, inputBin, inputDtype, inputShape, outputDir, ...outputNames] = process.argv.slice(2);

// A file-system IOHandler: the model's JSON and its weight files, read as they are.
const handler = {
  async load() {
    const model = JSON.parse(readFileSync(modelJson, 'utf8'));
    const weightSpecs = [];
    const buffers = [];
    for (const group of model.weightsManifest) {
      weightSpecs.push(...group.weights);
      for (const path of group.paths) buffers.push(readFileSync(join(dirname(modelJson), path)));
    }
    const weights = Buffer.concat(buffers);
    return {
      modelTopology: model.modelTopology,
      format: model.format,
      generatedBy: model.generatedBy,
      convertedBy: model.convertedBy,
      signature: model.signature,
      userDefinedMetadata: model.userDefinedMetadata,
      weightSpecs,
      weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
    };
  },
};

await tf.setBackend('cpu');
const model = await loadGraphModel(handler);
const raw = readFileSync(inputBin);
const values = inputDtype === 'int32'
  ? new Int32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4)
  : new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
const input = tf.tensor(values, inputShape.split(',').map(Number), inputDtype);
let outputs = await model.executeAsync(input, outputNames);
if (!Array.isArray(outputs)) outputs = [outputs];
mkdirSync(outputDir, { recursive: true });
const listing = {};
outputNames.forEach((name, i) => {
  const tensor = outputs[i];
  const data = tensor.dataSync();
  writeFileSync(join(outputDir, `${name.replaceAll('/', '__')}.bin`), Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  listing[name] = { shape: tensor.shape, dtype: tensor.dtype };
});
writeFileSync(join(outputDir, 'outputs.json'), JSON.stringify(listing));
console.log(`${modelJson}: ${outputNames.length} outputs with TensorFlow.js ${tf.version_core} (${tf.getBackend()})`);
