-- The face networks from SQL: settings, training.detect_faces and its errors.
LOAD 'training';   -- the settings exist once the library is loaded (preloaded or not)
SHOW training.face_features;
SHOW training.model_path;
SET training.face_features = 'deep';   -- reload-level setting: refused in a session
-- The OpenBLAS kernels (chosen at server start: read-only, named whatever the CPU gets).
SELECT current_setting('training.blas_core') ~ '^[A-Za-z0-9_]+$' AS blas_core_named;
SET training.blas_core = 'Haswell';

-- A generated grey PGM with no face in it.
SELECT training.detect_faces(convert_to('P5 64 48 255' || chr(10), 'SQL_ASCII')
       || decode(repeat('80', 64 * 48), 'hex')) AS no_face;

-- Errors: undecodable data, missing networks.
SELECT training.detect_faces('\x00'::bytea);
SET training.model_path = '/nonexistent/models';
SELECT training.detect_faces(convert_to('P5 2 2 255' || chr(10), 'SQL_ASCII') || '\x01020304'::bytea);
RESET training.model_path;
SELECT training.detect_faces(NULL) IS NULL AS strict;

-- The SQLSTATEs a client can branch on.
DO $$
BEGIN
    PERFORM training.detect_faces('\x00'::bytea);
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'undecodable: %', SQLSTATE;
END $$;
SET training.model_path = '/nonexistent/models';
DO $$
BEGIN
    PERFORM training.detect_faces(convert_to('P5 2 2 255' || chr(10), 'SQL_ASCII') || '\x01020304'::bytea);
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'missing networks: %', SQLSTATE;
END $$;
RESET training.model_path;
