-- training 0.5.0 -> 0.6.0: ALTER EXTENSION training UPDATE TO '0.6.0'.
-- An upgraded database equals a fresh install of 0.6.0 (test/upgrade/run.sh compares the catalogs).
-- Aligned faces: detect_faces() returns each face's 68 landmarks and the aligned square, and new
-- face trainings use the feature kind face-api-resnet-aligned-v1 when the landmark network is
-- installed (model versions keep the kind they were trained with). Only a comment changes here.
\echo Use "ALTER EXTENSION training UPDATE TO '0.6.0'" to load this file. \quit

COMMENT ON FUNCTION training.detect_faces(bytea) IS
    'Faces found in an image by the face detector, largest first: {"faces": [{"box": {x, y, width, height}, '
    '"score", "gender": "male"|"female", "gender_probability", "landmarks": 68 [x, y] points, '
    '"aligned_box": {x, y, width, height}}]} (face-api''s networks, training.model_path)';
