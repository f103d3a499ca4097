-- training: the Training object kept with its row (0.3.0).
--
-- get_training is called as often as a plain row select. Rendering the object on every read
-- takes a read of the training, one of its dataset and the JSON build; keeping it with the row,
-- rendered when the row is written, makes a read one index scan by primary key. Rules:
--   * every INSERT or UPDATE of a training renders it again (the trainings_before trigger, from
--     the dataset row it validated with: src/validate.c, src/render.c), with the writer's rights
--     (the training's own dataset, which its owner can see);
--   * while a training waits, source_dataset is the live dataset: a change of the dataset renders
--     the objects of its waiting trainings again (datasets_follow; the dataset's writer then also
--     locks those rows until it commits);
--   * when it starts, the dataset is captured: from then on source_dataset is the dataset it
--     trained on, also after the dataset changes or is deleted;
--   * what the clock changes (a class expiring while it waits) or another row owns (the output
--     model's live version count) is rendered at read time: object_stale_at, output_model_version_id.

ALTER TABLE training.trainings ADD COLUMN object jsonb;
ALTER TABLE training.trainings ADD COLUMN object_stale_at timestamptz;
COMMENT ON COLUMN training.trainings.object IS
    'The Training object as of the row''s last write, kept by the extension; get_training returns it, or renders what changed since (read-only)';
COMMENT ON COLUMN training.trainings.object_stale_at IS
    'When a class of the source dataset expires: object is rendered afresh at read time from then on (read-only)';

-- Definer's rights: whoever changes a dataset, the objects of its waiting trainings follow.
CREATE FUNCTION training._datasets_follow() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    UPDATE training.trainings t SET object = NULL
     WHERE t.source_dataset_id = NEW.id AND t.state = 'waiting';
    RETURN NULL;
END $$
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION training._datasets_follow() IS
    'Trigger: render the objects of the waiting trainings of a changed dataset again';
CREATE TRIGGER datasets_follow AFTER UPDATE ON training.datasets
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION training._datasets_follow();

REVOKE ALL ON FUNCTION training._datasets_follow() FROM PUBLIC;

-- A role under row-level security lists its own trainings: owner first, in list order.
CREATE INDEX trainings_owner_created_idx ON training.trainings (owner, time_created, id);
COMMENT ON INDEX training.trainings_owner_created_idx IS 'list_trainings of a role under row-level security (owner = current_user)';
