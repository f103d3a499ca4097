-- training: the pretrained face networks (src/nn, src/deep.c).

CREATE FUNCTION training.detect_faces(image bytea) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'training_detect_faces'
    LANGUAGE C STRICT STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.detect_faces(bytea) IS
    'Faces found in an image by the face detector, largest first: {"faces": [{"box": {x, y, width, height}, '
    '"score", "gender": "male"|"female", "gender_probability", "landmarks": 68 [x, y] points, '
    '"aligned_box": {x, y, width, height}}]} (face-api''s networks, training.model_path)';

-- What the C core holds in this process outside PostgreSQL's memory contexts.
CREATE FUNCTION training.memory() RETURNS jsonb
    AS 'MODULE_PATHNAME', 'training_memory'
    LANGUAGE C VOLATILE PARALLEL RESTRICTED
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training.memory() IS
    'Memory the C core holds in this process outside PostgreSQL memory contexts: {"network_cache_bytes", "network_cache_networks", "network_cache_dir"}';
