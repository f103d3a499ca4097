'use strict';
// The training API from Node as an ordinary role: function calls with named arguments through
// knex.raw, and the tables through knex's query builder. Run by test/clients/run.sh.
//
// Flow: a dataset through create_dataset/create_class/add_image and a second one through table
// inserts, with generated PGM images; a training through create_training and one by a table
// insert; both awaited by LISTEN on the worker's channel (node-postgres 'notification' events,
// no polling); read, listed, recognized with, deleted. The Python client's rows (another role)
// answer P0002 through the functions and are invisible through the tables.
const fs = require('fs');
const pg = require('pg');
const knexFactory = require('knex');

const ROLE = 'training_client_node';
const DB = process.env.TRAINING_CLIENTS_DB || 'training_clients';
const TIMEOUT_MS = 1000 * Number(process.env.TRAINING_CLIENTS_TIMEOUT || 120);
const CHANNEL = 'training_state'; // the worker's NOTIFY channel (README, "Background worker")
const connection = {
  host: process.env.PGHOST || '/tmp', port: Number(process.env.PGPORT || 5432),
  user: ROLE, database: DB,
};
const TRAINING_KEYS = ['id', 'type', 'state', 'progress', 'duration', 'error', 'time_created',
  'time_started', 'time_completed', 'source_dataset', 'output_model_name', 'output_model', 'config',
  'output_model_description', 'output_model_changelog'].sort();

const failures = [];
function check(cond, what) {
  console.log((cond ? 'ok   ' : 'FAIL ') + what);
  if (!cond) failures.push(what);
}

// A class is a texture with its own grey levels: stripes across, stripes down, checks.
function pgm(kind, rnd, size = 64) {
  const levels = [[220, 40], [160, 90], [250, 10]][kind];
  const shift = Math.floor(rnd() * 8);
  const header = Buffer.from(`P5\n${size} ${size}\n255\n`, 'ascii');
  const px = Buffer.alloc(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const on = [Math.floor((y + shift) / 4) % 2, Math.floor((x + shift) / 4) % 2,
        (Math.floor((x + shift) / 8) + Math.floor((y + shift) / 8)) % 2][kind];
      const v = (on ? levels[0] : levels[1]) + Math.floor(rnd() * 25) - 12;
      px[y * size + x] = Math.max(0, Math.min(255, v));
    }
  }
  return Buffer.concat([header, px]);
}
function prng(seed) { // small deterministic generator (mulberry32)
  return () => {
    seed = (seed + 0x6D2B79F5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const LABELS = ['tower', 'bridge', 'church'];

// Wait until every id is completed or failed: read the states once after LISTEN, then again
// each time a notification names one of them. Rejects after the timeout.
function waitFor(listener, knex, ids, seen) {
  return new Promise((resolve, reject) => {
    let busy = false, again = false;
    const timer = setTimeout(() => finish(new Error(`no completion within ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS);
    function finish(err, states) {
      clearTimeout(timer);
      listener.removeListener('notification', onNote);
      if (err) reject(err); else resolve(states);
    }
    async function look() {
      if (busy) { again = true; return; }
      busy = true;
      try {
        do {
          again = false;
          const rows = await knex('training.trainings').select('id', 'state').whereIn('id', ids);
          const states = Object.fromEntries(rows.map((r) => [r.id, r.state]));
          if (ids.every((i) => states[i] === 'completed' || states[i] === 'failed')) {
            finish(null, states);
            return;
          }
        } while (again);
      } catch (e) { finish(e); } finally { busy = false; }
    }
    function onNote(msg) {
      if (msg.channel !== CHANNEL || !ids.some((i) => msg.payload.includes(i))) return;
      seen.push(msg.payload);
      look();
    }
    listener.on('notification', onNote);
    look();
  });
}

async function sqlstateOf(promise) {
  try { await promise; return 'ok'; } catch (e) { return e.code; }
}

async function main() {
  const knex = knexFactory({ client: 'pg', connection, pool: { min: 0, max: 2 } });
  const listener = new pg.Client(connection);
  await listener.connect();
  const rnd = prng(11);
  try {
    const me = (await knex.raw('SELECT current_user AS u')).rows[0].u;
    check(me === ROLE, `connected as ${ROLE}`);

    // 1. A dataset through the functions, with named arguments.
    const fn = async (sql, bindings) => (await knex.raw(sql, bindings)).rows[0].r;
    const ds1 = await fn('SELECT training.create_dataset(name => ?, type => ?) AS r', ['node places', 'landmark']);
    const classIds = [];
    for (const [k, label] of LABELS.entries()) {
      const cls = await fn('SELECT training.create_class(dataset_id => ?, label => ?, reference => ?) AS r',
        [ds1.id, label, label]);
      classIds.push(cls.id);
      for (let i = 0; i < 8; i++) {
        await fn('SELECT training.add_image(class_id => ?, data => ?) AS r', [cls.id, pgm(k, rnd)]);
      }
    }
    const got = await fn('SELECT training.get_dataset(?) AS r', [ds1.id]);
    check(got.number_of_classes === 3 && got.number_of_images === 24, 'get_dataset counts 3 classes and 24 images');

    // 2. A dataset through the tables (knex's query builder, RETURNING).
    const [ds2] = await knex('training.datasets').insert({ name: 'node table places', type: 'landmark' })
      .returning(['id', 'owner']);
    check(ds2.owner === ROLE, 'the table insert\'s owner is filled from current_user');
    for (const [k, label] of LABELS.entries()) {
      const [cls] = await knex('training.classes').insert({ dataset_id: ds2.id, label, reference: label })
        .returning('id');
      const rows = [];
      for (let i = 0; i < 8; i++) rows.push({ class_id: cls.id, data: pgm(k, rnd) });
      await knex('training.images').insert(rows);
    }
    const [img] = await knex('training.images as i').join('training.classes as c', 'c.id', 'i.class_id')
      .where('c.dataset_id', ds2.id).select('i.format', 'i.width', 'i.height').limit(1);
    check(img.format === 'pgm' && img.width === 64 && img.height === 64,
      `the image trigger filled format/width/height: ${img.format} ${img.width}x${img.height}`);

    // 3. Trainings: a function call and a table insert; LISTEN first.
    await listener.query(`LISTEN ${CHANNEL}`);
    const t1 = await fn('SELECT training.create_training(source_dataset_id => ?, output_model_name => ?, ' +
      'config => ?::jsonb) AS r', [ds1.id, 'node model', '{}']);
    check(JSON.stringify(Object.keys(t1).sort()) === JSON.stringify(TRAINING_KEYS), 'create_training returns the seed\'s keys');
    const [t2] = await knex('training.trainings')
      .insert({ source_dataset_id: ds2.id, output_model_name: 'node table model', config: {} })
      .returning(['id', 'type', 'state', 'owner']);
    check(t2.type === 'landmark' && t2.state === 'waiting' && t2.owner === ROLE,
      'the table insert got type, state and owner from the server');

    // 4. Wait by LISTEN.
    const seen = [];
    const t0 = Date.now();
    const states = await waitFor(listener, knex, [t1.id, t2.id], seen);
    console.log(`     both trainings finished in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${JSON.stringify(states)}`);
    check(Object.values(states).every((s) => s === 'completed'), 'both trainings completed');
    check(seen.length >= 1, `notifications on ${CHANNEL} named our trainings (${seen.length} seen)`);

    // 5. Read: function and table (with the model joined, as an embed would).
    const g1 = await fn('SELECT training.get_training(?) AS r', [t1.id]);
    check(JSON.stringify(Object.keys(g1).sort()) === JSON.stringify(TRAINING_KEYS), 'get_training has exactly the seed\'s keys');
    check(g1.progress === 1 && g1.error === '' && g1.output_model !== null, 'completed, no error, with its output model');
    const row = await knex('training.trainings as t').leftJoin('training.models as m', 'm.id', 't.output_model_id')
      .where('t.id', t2.id).first('t.state', 't.progress', 'm.name as model', 'm.owner as model_owner');
    check(row.state === 'completed' && row.model === 'node table model' && row.model_owner === ROLE,
      'the table row is completed and its model belongs to this role');

    // 6. List: only this role's rows.
    const page = await fn('SELECT training.list_trainings("limit" => ?, "offset" => ?) AS r', [10, 0]);
    check(page.total === 2 && page.data.map((d) => d.id).sort().join() === [t1.id, t2.id].sort().join(),
      'list_trainings lists exactly this role\'s two trainings');
    const owners = await knex('training.trainings').distinct('owner');
    check(owners.length === 1 && owners[0].owner === ROLE, 'the table shows only this role\'s rows');
    const status = await knex('training.status').select('model', 'state', 'progress');
    check(status.length === 2 && status.every((s) => s.progress.includes('100%')), 'training.status shows both at 100%');

    // 7. Recognize.
    const r = await fn('SELECT training.recognize(model => ?, image => ?, max_distance => 2) AS r',
      ['node model', pgm(2, prng(5))]);
    check(r.model === 'node model==1', `recognize names the model version: ${r.model}`);
    const labels = (r.detections || []).map((d) => d.label);
    check(labels[0] === 'church', `recognize finds the class of a new image: ${labels}`);

    // 8. The Python client's rows (another role): P0002 through functions, nothing through tables.
    const other = JSON.parse(fs.readFileSync(process.env.TRAINING_CLIENTS_STATE, 'utf8'));
    const probes = [
      ['SELECT training.get_dataset(?)', [other.dataset_id]],
      ['SELECT training.get_training(?)', [other.training_id]],
      ['SELECT training.delete_training(?)', [other.training_id]],
      ['SELECT training.get_class(?)', [other.class_id]],
      ['SELECT training.add_image(class_id => ?, data => ?)', [other.class_id, pgm(0, rnd)]],
      ['SELECT training.get_model(?)', [other.model_id]],
      ['SELECT training.get_model(?)', [other.model_name]],
      ['SELECT training.delete_model(?)', [other.model_id]],
      ['SELECT training.recognize(?, ?)', [other.model_id, pgm(0, rnd)]],
      ['SELECT training.recognize(?, ?)', [other.model_name, pgm(0, rnd)]],
      ['SELECT training.create_training(source_dataset_id => ?, output_model_name => ?)', [other.dataset_id, 'x']],
    ];
    for (const [sql, b] of probes) {
      const code = await sqlstateOf(knex.raw(sql, b));
      check(code === 'P0002', `P0002 for another role's id: ${sql} (got ${code})`);
    }
    check((await knex('training.trainings').where('id', other.training_id)).length === 0,
      'the table shows no row for the other role\'s training');
    check(await knex('training.datasets').where('id', other.dataset_id).update({ name: 'mine' }) === 0,
      'a table update of the other role\'s dataset changes no row');
    check(await knex('training.models').where('id', other.model_id).del() === 0,
      'a table delete of the other role\'s model deletes no row');
    const code = await sqlstateOf(knex('training.classes').insert({ dataset_id: other.dataset_id, label: 'x' }));
    check(code === '42501' || code === 'P0002', `a class in the other role's dataset is refused (${code})`);

    // A pooled connection, as PostgREST keeps one: a login role that switches to each user in
    // turn. Once the Python role has recognized with its model here, the session caches that
    // model; this role must still not reach it.
    const pooled = new pg.Client({ ...connection, user: 'training_client_pool' });
    await pooled.connect();
    try {
      await pooled.query('SET ROLE training_client_py');
      const vid = (await pooled.query('SELECT id FROM training.model_versions WHERE model_id = $1 ' +
        'ORDER BY version_number DESC LIMIT 1', [other.model_id])).rows[0].id;
      const pr = (await pooled.query('SELECT training.recognize($1, $2, max_distance => 2) AS r',
        [other.model_name, pgm(1, prng(3))])).rows[0].r;
      check(pr.model === `${other.model_name}==1`, 'pooled connection: the Python role recognizes with its model');
      await pooled.query('SET ROLE training_client_node');
      // The session holds the Python role's parsed model; by its version id this role still
      // reaches nothing: recognize() resolves the reference with the caller's rights first.
      const viaVersion = await sqlstateOf(pooled.query('SELECT training.recognize($1, $2)', [vid, pgm(1, prng(3))]));
      check(viaVersion === 'P0002', `pooled connection: recognize by the other role's version id answers ${viaVersion}`);
      const internal = (await pooled.query(
        "SELECT count(*)::int AS n FROM pg_proc WHERE pronamespace = 'training'::regnamespace AND proname LIKE '\\_%' " +
        "AND has_function_privilege(oid, 'EXECUTE')")).rows[0].n;
      check(internal === 0, `pooled connection: no internal function is executable (${internal})`);
      const viaApi = await sqlstateOf(pooled.query('SELECT training.recognize($1, $2)', [other.model_id, pgm(1, prng(3))]));
      check(viaApi === 'P0002', `pooled connection: recognize with the other role's model answers ${viaApi}`);
    } finally {
      await pooled.end();
    }

    // 9. Delete: function and table.
    await knex.raw('SELECT training.delete_training(?)', [t1.id]);
    check(await sqlstateOf(knex.raw('SELECT training.get_training(?)', [t1.id])) === 'P0002',
      'delete_training, then get_training answers P0002');
    check(await knex('training.trainings').where('id', t2.id).del() === 1, 'a table delete removes the training');
    await knex.raw('SELECT training.delete_model(?)', ['node model']);
    await knex.raw('SELECT training.delete_dataset(?)', [ds1.id]);
    check(await knex('training.datasets').where('id', ds2.id).del() === 1, 'a table delete removes the dataset');
    const left = await knex('training.classes').count('* as n').first();
    check(Number(left.n) === 0, 'its classes went with it');
  } finally {
    await listener.end();
    await knex.destroy();
  }
  console.log(`node client: ${failures.length} failure(s)`);
  return failures.length ? 1 : 0;
}

main().then((code) => process.exit(code), (e) => { console.error(e); process.exit(1); });
