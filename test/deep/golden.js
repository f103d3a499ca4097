// golden.js - run face-api's own JavaScript networks (tfjs CPU backend) on
// generated images (and ORL faces when the shared data is present) and write
// the images plus the expected outputs for test/deep/golden.c to compare.
//
// usage: node golden.js MODEL_DIR OUT_DIR [ORL_DIR]
'use strict';
const fs = require('fs');
const path = require('path');
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');

const tf = faceapi.tf;
const [modelDir, outDir, orlDir] = process.argv.slice(2);

function rng(seed) { // mulberry32
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// A smooth colour image: a gradient, random Gaussian blobs and some noise.
function synthetic(width, height, seed) {
  const r = rng(seed);
  const img = new Uint8Array(width * height * 3);
  const blobs = [];
  for (let i = 0; i < 8; i++) {
    blobs.push({ x: r() * width, y: r() * height, s: (0.05 + 0.3 * r()) * Math.max(width, height),
      c: [r() * 255 - 128, r() * 255 - 128, r() * 255 - 128] });
  }
  const base = [r() * 255, r() * 255, r() * 255];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        let v = base[c] * (0.5 + 0.5 * x / width);
        for (const b of blobs) {
          const d2 = ((x - b.x) ** 2 + (y - b.y) ** 2) / (b.s * b.s);
          v += b.c[c] * Math.exp(-d2);
        }
        v += (r() - 0.5) * 20;
        img[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return { width, height, data: img };
}

function readPgm(file) {
  const buf = fs.readFileSync(file);
  const header = buf.toString('latin1', 0, 64).match(/^P5\s+(\d+)\s+(\d+)\s+(\d+)\s/);
  if (!header) throw new Error(`not a binary PGM: ${file}`);
  const width = +header[1]; const height = +header[2];
  const grey = buf.subarray(header[0].length, header[0].length + width * height);
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data[i * 3] = data[i * 3 + 1] = data[i * 3 + 2] = grey[i];
  return { width, height, data };
}

function readPpm(file) {
  const buf = fs.readFileSync(file);
  const header = buf.toString('latin1', 0, 64).match(/^P6\s+(\d+)\s+(\d+)\s+255\s/);
  if (!header) throw new Error(`not a binary PPM: ${file}`);
  const width = +header[1]; const height = +header[2];
  return { width, height, data: Uint8Array.from(buf.subarray(header[0].length, header[0].length + width * height * 3)) };
}

// Paste faces into a generated background.
function composite(width, height, seed, faces) {
  const img = synthetic(width, height, seed);
  for (const f of faces) {
    for (let y = 0; y < f.img.height; y++) {
      for (let x = 0; x < f.img.width; x++) {
        for (let c = 0; c < 3; c++) {
          img.data[((y + f.y) * width + x + f.x) * 3 + c] = f.img.data[(y * f.img.width + x) * 3 + c];
        }
      }
    }
  }
  return img;
}

let n = 0;
function save(img) {
  const name = `img${n++}.ppm`;
  fs.writeFileSync(path.join(outDir, name), Buffer.concat([
    Buffer.from(`P6\n${img.width} ${img.height}\n255\n`), Buffer.from(img.data)]));
  return name;
}
const toTensor = (img) => tf.tensor3d(Float32Array.from(img.data), [img.height, img.width, 3], 'float32');

async function main() {
  await tf.setBackend('cpu');
  await tf.ready();
  await faceapi.nets.faceRecognitionNet.loadFromDisk(modelDir);
  await faceapi.nets.ageGenderNet.loadFromDisk(modelDir);
  await faceapi.nets.tinyFaceDetector.loadFromDisk(modelDir);
  await faceapi.nets.faceLandmark68Net.loadFromDisk(modelDir);
  fs.mkdirSync(outDir, { recursive: true });
  const cases = [];

  const crops = [synthetic(150, 150, 1), synthetic(120, 160, 2), synthetic(173, 101, 3), synthetic(64, 64, 4)];
  const orl = [];
  if (orlDir) {
    for (const f of ['s1/1.pgm', 's7/3.pgm', 's23/5.pgm', 's35/2.pgm']) orl.push(readPgm(path.join(orlDir, f)));
    crops.push(...orl);
  }
  for (const img of crops) {
    const t = toTensor(img);
    const desc = await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(t);
    const ag = await faceapi.nets.ageGenderNet.predictAgeAndGender(t);
    t.dispose();
    const male = ag.gender === 'male' ? ag.genderProbability : 1 - ag.genderProbability;
    const image = save(img);
    cases.push({ kind: 'descriptor', image, descriptor: Array.from(desc) });
    cases.push({ kind: 'gender', image, male, age: ag.age });
    const lt = toTensor(img);
    const lm = await faceapi.nets.faceLandmark68Net.detectLandmarks(lt);
    lt.dispose();
    cases.push({ kind: 'landmarks', image, points: lm.positions.flatMap((p) => [p.x, p.y]) });
  }

  // withFaceLandmarks().withFaceDescriptors() from a given detection box
  // (fractional, partly outside the image, or a face face-api found). For a
  // box crossing the image's edge face-api moves the landmarks by the corner
  // outside the image, off the face; ours stay on the crop the network saw:
  // the expected values are face-api's own steps with the corner clipped.
  const aligned = async (img, box, name) => {
    const t = toTensor(img);
    const rel = new faceapi.Rect(box.x / img.width, box.y / img.height, box.width / img.width, box.height / img.height);
    const detection = new faceapi.FaceDetection(0.9, rel, { width: img.width, height: img.height });
    const b = detection.box;
    const res = await new faceapi.DetectAllFaceLandmarksTask(Promise.resolve([faceapi.extendWithFaceDetection({}, detection)]),
      t, false).withFaceDescriptors();
    let landmarks = res[0].landmarks;
    let descriptor = res[0].descriptor;
    if (b.x < 0 || b.y < 0) {
      landmarks = res[0].unshiftedLandmarks.shiftBy(Math.max(b.x, 0), Math.max(b.y, 0));
      const faces = await faceapi.extractFaceTensors(t, [landmarks.align(null, { useDlibAlignment: true })]);
      descriptor = await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(faces[0]);
      faces.forEach((f) => f.dispose());
    }
    t.dispose();
    const square = landmarks.align(null, { useDlibAlignment: true });
    cases.push({ kind: 'aligned', image: name || save(img), box: { x: b.x, y: b.y, width: b.width, height: b.height }, points: landmarks.positions.flatMap((p) => [p.x, p.y]),
      square: { x: square.x, y: square.y, width: square.width, height: square.height },
      descriptor: Array.from(descriptor) });
  };
  await aligned(synthetic(200, 180, 11), { x: 40.6, y: 30.3, width: 101.7, height: 97.2 });
  await aligned(synthetic(160, 160, 12), { x: -12.5, y: 70.25, width: 90, height: 120 });
  await aligned(synthetic(128, 128, 13), { x: 16, y: 32, width: 96, height: 64 });
  for (const img of orl.slice(0, 2)) {
    const t = toTensor(img);
    const dets = await faceapi.nets.tinyFaceDetector.locateFaces(t, new faceapi.TinyFaceDetectorOptions({ inputSize: 128, scoreThreshold: 0.3 }));
    t.dispose();
    await aligned(img, dets.length ? { x: dets[0].box.x, y: dets[0].box.y, width: dets[0].box.width, height: dets[0].box.height }
      : { x: 0, y: 0, width: img.width, height: img.height });
  }

  const options = new faceapi.TinyFaceDetectorOptions({ inputSize: 416, scoreThreshold: 0.5 });
  for (const [img, inputSize] of [[synthetic(300, 200, 5), 416], [synthetic(180, 260, 6), 224]]) {
    const t = toTensor(img);
    const out = await faceapi.nets.tinyFaceDetector.forward(t, inputSize);
    cases.push({ kind: 'detector_raw', image: save(img), input_size: inputSize, shape: out.shape.slice(1),
      values: Array.from(await out.data()) });
    out.dispose(); t.dispose();
  }
  if (orl.length) {
    const scenes = [
      composite(212, 232, 7, [{ img: orl[0], x: 60, y: 60 }]),
      composite(400, 300, 8, [{ img: orl[1], x: 40, y: 50 }, { img: orl[2], x: 250, y: 120 }]),
      composite(520, 280, 9, [{ img: orl[3], x: 30, y: 30 }, { img: orl[0], x: 200, y: 100 }, { img: orl[1], x: 380, y: 60 }]),
    ];
    for (const img of scenes) {
      const t = toTensor(img);
      const dets = await faceapi.nets.tinyFaceDetector.locateFaces(t, options);
      t.dispose();
      cases.push({ kind: 'detect', image: save(img), input_size: 416, threshold: 0.5,
        boxes: dets.map((d) => ({ x: d.box.x, y: d.box.y, width: d.box.width, height: d.box.height, score: d.score })) });
    }
  }
  // Photos in the wild: face-api's own demo photos (colour, 1920 px, several people),
  // decoded by golden --ppm as the server decodes them (run.sh). Every face face-api
  // finds at its default input 416, and the aligned descriptor of the three first.
  for (const name of fs.readdirSync(outDir).filter((f) => /^wild-.*\.ppm$/.test(f)).sort()) {
    const img = readPpm(path.join(outDir, name));
    const t = toTensor(img);
    const dets = await faceapi.nets.tinyFaceDetector.locateFaces(t, options);
    t.dispose();
    cases.push({ kind: 'detect', image: name, input_size: 416, threshold: 0.5,
      boxes: dets.map((d) => ({ x: d.box.x, y: d.box.y, width: d.box.width, height: d.box.height, score: d.score })) });
    for (const d of dets.slice(0, 3)) await aligned(img, { x: d.box.x, y: d.box.y, width: d.box.width, height: d.box.height }, name);
  }
  fs.writeFileSync(path.join(outDir, 'expected.json'), JSON.stringify({ cases }));
  console.log(`golden.js: ${cases.length} cases from face-api ${faceapi.version} on tfjs ${tf.version_core} (${tf.getBackend()})`);
}
main().catch((e) => { console.error(e); process.exit(1); });
