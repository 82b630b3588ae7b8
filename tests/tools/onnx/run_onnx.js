// Run an ONNX model exported by `dakd export --onnx` in ONNX Runtime (onnxruntime-node, CPU)
// on one float32 input and print what it gave: the test oracle of tests/export/test_onnx.c.
//
//   node run_onnx.js MODEL.onnx INPUT.f32 N,C,[D,]H,W [LOGITS.f32]
//
// INPUT.f32 holds the input tensor as raw little-endian float32 in NCDHW order (NCHW for a
// 2-D model). Prints the graph's input and output names, the logits' dims and their first
// values, then writes every logit as raw float32 to LOGITS.f32 when given. Exit 0 on success,
// 1 on a bad argument, 2 when the runtime refused the model or the input.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main(argv) {
    if (argv.length < 3) {
        console.error('usage: node run_onnx.js MODEL.onnx INPUT.f32 N,C,[D,]H,W [LOGITS.f32]');
        return 1;
    }
    const [model, inputPath, dimText, outPath] = argv;
    const dims = dimText.split(',').map(Number);
    const count = dims.reduce((a, b) => a * b, 1);
    const bytes = fs.readFileSync(inputPath);
    if (!dims.every(Number.isInteger) || bytes.length !== 4 * count) {
        console.error(`run_onnx: ${inputPath} holds ${bytes.length} bytes, ` +
                      `not 4 x ${dims.join(' x ')}`);
        return 1;
    }
    const data = new Float32Array(bytes.buffer, bytes.byteOffset, count);
    let session, result;
    try {
        // one thread: the machine's cores are shared with the rest of the test suite
        session = await ort.InferenceSession.create(model, {intraOpNumThreads: 1,
                                                            interOpNumThreads: 1});
        const feeds = {[session.inputNames[0]]: new ort.Tensor('float32', data, dims)};
        result = await session.run(feeds);
    } catch (e) {
        console.error(`run_onnx: ${model}: ${e.message}`);
        return 2;
    }
    const name = session.outputNames[0];
    const logits = result[name];
    console.log(`inputs ${session.inputNames.join(',')} outputs ${session.outputNames.join(',')}`);
    console.log(`${name} dims ${logits.dims.join(',')}`);
    const first = Array.from(logits.data.slice(0, 8), v => v.toPrecision(7));
    console.log(`${name} first ${first.join(' ')}`);
    if (outPath) fs.writeFileSync(outPath, Buffer.from(logits.data.buffer, logits.data.byteOffset,
                                                       logits.data.byteLength));
    return 0;
}

main(process.argv.slice(2)).then(rc => { process.exitCode = rc; });
