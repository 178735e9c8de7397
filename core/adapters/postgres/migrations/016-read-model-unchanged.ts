import type { Migration } from '../migrations.js';

/**
 * Migration 16 (ADR 027). A projection declares the
 * event types it handles (projections/projection.ts); a batch with none of them moves its
 * checkpoint without touching its tables, and says so by setting `qcat.read_model_unchanged` for
 * its transaction. The change notice of such a move ends in `:same`: the answer cache (ADR 009)
 * keeps what it holds for that read model. Any other move, a rebuild's switch and a restore are
 * announced as before, so a process that does not know `:same` (one of the previous release,
 * during a rolling upgrade) ignores only notices that changed nothing. The function is replaced,
 * not copied.
 */
export const readModelUnchangedMigration: Migration = {
  version: 16,
  name: 'read model change notices say when nothing changed',
  sql: `
    CREATE OR REPLACE FUNCTION qcat_projections_notify() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
      IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('qcat_read_model', OLD.name || ':0:0');
      ELSIF TG_OP = 'UPDATE' AND OLD.generation = NEW.generation
            AND current_setting('qcat.read_model_unchanged', true) = 'on' THEN
        PERFORM pg_notify('qcat_read_model',
                          NEW.name || ':' || NEW.generation || ':' || NEW.checkpoint || ':same');
      ELSE
        PERFORM pg_notify('qcat_read_model', NEW.name || ':' || NEW.generation || ':' || NEW.checkpoint);
      END IF;
      RETURN NULL;
    END
    $fn$;
  `,
};
