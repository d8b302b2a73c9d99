-- Hasura v2's per-event-trigger capture function and trigger, as its public template
-- server/src-rsr/trigger.sql.shakespeare renders them (reproduced from memory of that
-- template; graphql-engine v2.x). The test fills the placeholders:
--   {{NAME}} trigger name, {{OPERATION}} INSERT | UPDATE | DELETE, {{SCHEMA_NAME}},
--   {{TABLE_NAME}}, {{QUALIFIED_TABLE}} the quoted table, {{OLD_ROW}} / {{NEW_ROW}} the
--   compared rows for UPDATE (row(OLD."col", …) for listed columns, OLD / NEW for '*'),
--   {{OLD_DATA_EXPRESSION}} / {{NEW_DATA_EXPRESSION}} row_to_json(OLD) / row_to_json(NEW)
--   or NULL.
CREATE OR REPLACE function hdb_catalog."notify_hasura_{{NAME}}_{{OPERATION}}"() RETURNS trigger
   LANGUAGE plpgsql
   AS $$
   DECLARE
     _old record;
     _new record;
     _data json;
   BEGIN
     IF TG_OP = 'UPDATE' THEN
       _old := {{OLD_ROW}};
       _new := {{NEW_ROW}};
     ELSE
     /* initialize _old and _new with dummy values for INSERT and UPDATE events*/
       _old := row((select 1));
       _new := row((select 1));
     END IF;
     _data := json_build_object(
       'old', {{OLD_DATA_EXPRESSION}},
       'new', {{NEW_DATA_EXPRESSION}}
     );
     BEGIN
       IF (TG_OP <> 'UPDATE') OR (_old <> _new) THEN
         PERFORM hdb_catalog.insert_event_log(CAST('{{SCHEMA_NAME}}' AS text), CAST('{{TABLE_NAME}}' AS text), CAST('{{NAME}}' AS text), TG_OP, _data);
       END IF;
       EXCEPTION WHEN undefined_function THEN
         IF (TG_OP <> 'UPDATE') OR (_old *<> _new) THEN
           PERFORM hdb_catalog.insert_event_log(CAST('{{SCHEMA_NAME}}' AS text), CAST('{{TABLE_NAME}}' AS text), CAST('{{NAME}}' AS text), TG_OP, _data);
         END IF;
     END;

     RETURN NULL;
   END;
   $$;
DROP TRIGGER IF EXISTS "notify_hasura_{{NAME}}_{{OPERATION}}" ON {{QUALIFIED_TABLE}};
CREATE TRIGGER "notify_hasura_{{NAME}}_{{OPERATION}}" AFTER {{OPERATION}} ON {{QUALIFIED_TABLE}} FOR EACH ROW EXECUTE PROCEDURE hdb_catalog."notify_hasura_{{NAME}}_{{OPERATION}}"();
