import type { Migration } from '../migrations.js';

/**
 * Migration 6 (ADR 009): every change of a projection's checkpoint or live generation (whoever
 * makes it: a runner's batch, a rebuild's switch, a restore) is announced on commit, so each
 * process's response cache drops what the change made stale. Payload: name, generation, checkpoint.
 */
export const readModelChangeNotices: Migration = {
  version: 6,
  name: 'read model change notices',
  sql: `
      CREATE FUNCTION qcat_projections_notify() RETURNS trigger LANGUAGE plpgsql AS $fn$
      BEGIN
        IF TG_OP = 'DELETE' THEN
          PERFORM pg_notify('qcat_read_model', OLD.name || ':0:0');
        ELSE
          PERFORM pg_notify('qcat_read_model', NEW.name || ':' || NEW.generation || ':' || NEW.checkpoint);
        END IF;
        RETURN NULL;
      END
      $fn$;
      CREATE TRIGGER qcat_projections_notify_change
        AFTER UPDATE ON qcat_projections FOR EACH ROW
        WHEN (OLD.checkpoint IS DISTINCT FROM NEW.checkpoint
              OR OLD.generation IS DISTINCT FROM NEW.generation)
        EXECUTE FUNCTION qcat_projections_notify();
      CREATE TRIGGER qcat_projections_notify_row
        AFTER INSERT OR DELETE ON qcat_projections FOR EACH ROW
        EXECUTE FUNCTION qcat_projections_notify();
    `,
};
