-- Dead letters that wait for an earlier version of their aggregate (`waiting`), the corrected
-- payload an operator retried a letter with (`replacement`, so a rebuild applies the same
-- event), and at most one running rebuild.
--
-- Dead letters move into schema `views`: whether an event waits depends on what the views have
-- applied, so a rebuild keeps its own (and reads the live one's resolutions).

ALTER TABLE public.dead_letters DROP CONSTRAINT dead_letters_status_check;
ALTER TABLE public.dead_letters
    ADD CONSTRAINT dead_letters_status_check CHECK (status IN ('parked', 'waiting', 'retried', 'discarded')),
    ADD COLUMN replacement bytea;
DROP INDEX public.dead_letters_parked;
CREATE INDEX dead_letters_open ON public.dead_letters (id) WHERE status IN ('parked', 'waiting');
DROP INDEX public.dead_letters_by_aggregate;
CREATE INDEX dead_letters_open_by_aggregate ON public.dead_letters (aggregate_id, aggregate_version)
    WHERE status IN ('parked', 'waiting');

CREATE UNIQUE INDEX projection_rebuilds_one_running ON public.projection_rebuilds ((true)) WHERE status = 'running';

ALTER TABLE public.dead_letters SET SCHEMA views;
