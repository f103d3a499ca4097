// faceapi-peer.js - the peer of bench/faces.c: @vladmandic/face-api on tfjs
// (WASM backend, else CPU) in node, same work per face: pad with a 60-pixel
// edge-replicated border, TinyFaceDetector at 416, the largest face (else the
// whole image), crop, 128-d descriptor. With ALIGNED = 1, face-api's own
// pipeline instead: detectAllFaces().withFaceLandmarks().withFaceDescriptors().
//
// usage: node faceapi-peer.js MODEL_DIR ORL_DIR [N_IMAGES] [BACKEND] [ALIGNED]
'use strict';
const fs = require('fs');
const path = require('path');
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');

const tf = faceapi.tf;
const [modelDir, orlDir, nArg, backendArg, alignedArg] = process.argv.slice(2);
const aligned = alignedArg === '1';
const nImages = +(nArg || 80);
const border = 60;

function readPgm(file) {
  const buf = fs.readFileSync(file);
  const m = buf.toString('latin1', 0, 64).match(/^P5\s+(\d+)\s+(\d+)\s+(\d+)\s/);
  const width = +m[1]; const height = +m[2];
  const grey = buf.subarray(m[0].length, m[0].length + width * height);
  return { width, height, grey };
}

function padded(img) {
  const pw = img.width + 2 * border; const ph = img.height + 2 * border;
  const out = new Float32Array(pw * ph * 3);
  for (let y = 0; y < ph; y++) {
    const sy = Math.min(img.height - 1, Math.max(0, y - border));
    for (let x = 0; x < pw; x++) {
      const sx = Math.min(img.width - 1, Math.max(0, x - border));
      const v = img.grey[sy * img.width + sx];
      out[(y * pw + x) * 3] = v; out[(y * pw + x) * 3 + 1] = v; out[(y * pw + x) * 3 + 2] = v;
    }
  }
  return tf.tensor3d(out, [ph, pw, 3], 'float32');
}

async function main() {
  const backend = backendArg || 'wasm';
  try {
    if (backend === 'wasm' && tf.setThreadsCount) tf.setThreadsCount(2);
    await tf.setBackend(backend);
  } catch (e) {
    await tf.setBackend('cpu');
  }
  await tf.ready();
  await faceapi.nets.tinyFaceDetector.loadFromDisk(modelDir);
  await faceapi.nets.faceRecognitionNet.loadFromDisk(modelDir);
  if (aligned) await faceapi.nets.faceLandmark68Net.loadFromDisk(modelDir);
  const options = new faceapi.TinyFaceDetectorOptions({ inputSize: 416, scoreThreshold: 0.5 });
  const files = [];
  for (let i = 0; files.length < nImages; i++) files.push(path.join(orlDir, `s${(i % 40) + 1}`, `${Math.floor(i / 40) % 10 + 1}.pgm`));
  const imgs = files.map(readPgm);

  // Warm up once (tfjs compiles kernels on first use), not timed.
  {
    const t = padded(imgs[0]);
    await faceapi.nets.tinyFaceDetector.locateFaces(t, options);
    await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(t);
    if (aligned) await faceapi.detectAllFaces(t, options).withFaceLandmarks().withFaceDescriptors();
    t.dispose();
  }
  let found = 0;
  const t0 = process.hrtime.bigint();
  for (const img of imgs) {
    const big = padded(img);
    if (aligned) {
      const faces = await faceapi.detectAllFaces(big, options).withFaceLandmarks().withFaceDescriptors();
      if (faces.length) found++;
      else await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(big);
      big.dispose();
      continue;
    }
    const dets = await faceapi.nets.tinyFaceDetector.locateFaces(big, options);
    let box = { x: border, y: border, width: img.width, height: img.height };
    if (dets.length) {
      found++;
      const b = dets.reduce((a, d) => (d.box.area > a.box.area ? d : a)).box;
      box = new faceapi.Box({ x: b.x - border, y: b.y - border, width: b.width, height: b.height })
        .clipAtImageBorders(img.width, img.height);
      box = { x: box.x + border, y: box.y + border, width: box.width, height: box.height };
    }
    const crop = tf.slice3d(big, [box.y, box.x, 0], [box.height, box.width, 3]);
    await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(crop);
    crop.dispose(); big.dispose();
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`face-api ${faceapi.version} on tfjs ${tf.version_core} (${tf.getBackend()}${tf.getBackend() === 'wasm' && tf.getThreadsCount ? `, ${tf.getThreadsCount()} threads` : ''}): `
    + `${imgs.length} faces, detector found ${found}${aligned ? ', landmarks + aligned descriptors' : ''}; `
    + `${(imgs.length / secs).toFixed(1)} faces/s`);
}
main().catch((e) => { console.error(e); process.exit(1); });
