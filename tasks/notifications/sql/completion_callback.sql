-- Completion callbacks: when a job with a callback_url reaches a terminal state, the database
-- itself enqueues the signed webhook that reports it, in the very transaction that records the
-- state, whichever code path (worker, API cancel, reaper) moved the job. Every name and number
-- the code owns (job type, queue, attempt budget, job states, NOTIFY channel, the function and
-- trigger names) is a placeholder here, filled in by tasks/notifications/completion_trigger.py
-- when a migration installs this file.
CREATE OR REPLACE FUNCTION {{ function }}() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  notification_id uuid := switchyard_uuid7();
  delivery_id uuid := switchyard_uuid7();
  body jsonb;
BEGIN
  -- One callback per terminal state reached by an attempt (a replayed job's included).
  IF EXISTS (SELECT 1 FROM notifications
             WHERE source_job_id = NEW.id AND source_attempt = NEW.attempts
               AND source_state = NEW.state) THEN
    RETURN NULL;
  END IF;
  body := jsonb_build_object(
    'type', 'job.' || NEW.state,
    'timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'data', jsonb_build_object(
      'job_id', NEW.id, 'job_type', NEW.type, 'state', NEW.state,
      'attempts', NEW.attempts, 'result', NEW.result,
      'error', CASE WHEN jsonb_typeof(NEW.error) = 'object' THEN NEW.error - 'traceback' END,
      'finished_at', NEW.finished_at));
  INSERT INTO jobs (id, type, queue, state, payload, priority, attempts, max_attempts,
                    lost_count, run_at, producer, created_at, updated_at)
  VALUES (delivery_id, {{ job_type }}, {{ queue }}, {{ accepted }},
          jsonb_build_object('notification_id', notification_id), NEW.priority, 0,
          {{ max_attempts }}, 0, now(), NEW.producer, now(), now());
  INSERT INTO notifications (id, producer, kind, channel, recipient, body_text, data, job_id,
                             callback_secret, source_job_id, source_attempt, source_state,
                             send_at, created_at)
  VALUES (notification_id, NEW.producer, {{ kind }}, {{ channel }}, NEW.callback_url,
          body::text, body, delivery_id, NEW.callback_secret, NEW.id, NEW.attempts, NEW.state,
          now(), now());
  INSERT INTO outbox (job_id, job_type, queue, priority, available_at, created_at)
  VALUES (delivery_id, {{ job_type }}, {{ queue }}, NEW.priority, now(), now());
  PERFORM pg_notify({{ notify_channel }}, '');
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS {{ trigger }} ON jobs;

CREATE TRIGGER {{ trigger }}
AFTER UPDATE OF state ON jobs FOR EACH ROW
WHEN (NEW.callback_url IS NOT NULL
      AND NEW.state IN ({{ terminal_states }})
      AND OLD.state IS DISTINCT FROM NEW.state)
EXECUTE FUNCTION {{ function }}();
