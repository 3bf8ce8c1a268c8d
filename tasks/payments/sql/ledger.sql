-- The payments ledger: TigerBeetle's transfer semantics in PL/pgSQL.
-- Loaded by migration pay_0001, and again (all CREATE OR REPLACE) by each later migration that
-- changes it (pay_0007); every name here is the one tasks/payments/ledger.py calls.
-- Custom SQLSTATEs (class PY) name each refusal; ledger.py maps them to errors.

-- A transaction's net change per currency, kept in transaction-local settings: every balance
-- write adds to it, and the deferred check below refuses a commit where it is not zero.
CREATE OR REPLACE FUNCTION pay_note_delta(p_currency text, p_posted bigint, p_pending bigint)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  name text := 'pay.delta_' || lower(p_currency);
  cur text := coalesce(nullif(current_setting(name, true), ''), '0,0');
BEGIN
  PERFORM set_config(name, (split_part(cur, ',', 1)::bigint + p_posted)::text || ','
                           || (split_part(cur, ',', 2)::bigint + p_pending)::text, true);
END $$;

CREATE OR REPLACE FUNCTION pay_account_delta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN  -- an account born with balances must balance too
    PERFORM pay_note_delta(NEW.currency, NEW.debits_posted - NEW.credits_posted,
                           NEW.debits_pending - NEW.credits_pending);
    RETURN NEW;
  END IF;
  PERFORM pay_note_delta(NEW.currency,
    (NEW.debits_posted - OLD.debits_posted) - (NEW.credits_posted - OLD.credits_posted),
    (NEW.debits_pending - OLD.debits_pending) - (NEW.credits_pending - OLD.credits_pending));
  RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION pay_hot_delta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM pay_note_delta(NEW.currency, NEW.debits - NEW.credits, 0);
    RETURN NEW;
  END IF;
  PERFORM pay_note_delta(OLD.currency, OLD.credits - OLD.debits, 0);
  RETURN OLD;
END $$;

-- Deferred to commit: debits equal credits, per currency, for what this transaction wrote
-- (a deleted hot entry included: only a roll-up, which moves it into its balance, may).
CREATE OR REPLACE FUNCTION pay_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  currency text := CASE WHEN TG_OP = 'DELETE' THEN OLD.currency ELSE NEW.currency END;
  cur text := coalesce(nullif(current_setting('pay.delta_' || lower(currency), true), ''),
                       '0,0');
BEGIN
  IF cur <> '0,0' THEN
    RAISE EXCEPTION 'ledger unbalanced in %: net debits posted,pending = %', currency, cur
      USING ERRCODE = 'PY009';
  END IF;
  RETURN NULL;
END $$;

-- Transfers are never changed or deleted; hot entries are appended, and deleted only as
-- they are rolled up into their balance (the check above holds that), never changed.
CREATE OR REPLACE FUNCTION pay_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% rows are immutable', TG_TABLE_NAME USING ERRCODE = 'PY010';
END $$;

-- Apply one side of a transfer: a hot account gets an entry (no row lock), others an UPDATE.
CREATE OR REPLACE FUNCTION pay_apply_side(
  p_account text, p_hot boolean, p_currency text, p_debit boolean,
  p_pending bigint, p_posted bigint, p_transfer text
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF p_hot THEN
    INSERT INTO pay_hot_entries (account_id, currency, transfer_id, debits, credits)
    VALUES (p_account, p_currency, p_transfer,
            CASE WHEN p_debit THEN p_posted ELSE 0 END,
            CASE WHEN p_debit THEN 0 ELSE p_posted END);
  ELSIF p_debit THEN
    UPDATE pay_accounts SET debits_pending = debits_pending + p_pending,
                            debits_posted = debits_posted + p_posted
    WHERE id = p_account;
  ELSE
    UPDATE pay_accounts SET credits_pending = credits_pending + p_pending,
                            credits_posted = credits_posted + p_posted
    WHERE id = p_account;
  END IF;
END $$;

-- Balances follow transfers: the only writer of an account's four balances.
CREATE OR REPLACE FUNCTION pay_apply_transfer() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  held bigint := 0;
  d_hot boolean;
  c_hot boolean;
  pending_delta bigint;
  posted_delta bigint;
BEGIN
  SELECT hot INTO d_hot FROM pay_accounts WHERE id = NEW.debit_account_id;
  SELECT hot INTO c_hot FROM pay_accounts WHERE id = NEW.credit_account_id;
  IF NEW.kind IN ('post', 'void') THEN
    SELECT amount INTO held FROM pay_transfers WHERE id = NEW.pending_id;
  END IF;
  IF (d_hot OR c_hot) AND NEW.kind <> 'posted' THEN
    RAISE EXCEPTION 'a hot account takes only posted transfers' USING ERRCODE = 'PY008';
  END IF;
  pending_delta := CASE NEW.kind WHEN 'pending' THEN NEW.amount ELSE -held END;
  posted_delta := CASE NEW.kind WHEN 'posted' THEN NEW.amount WHEN 'post' THEN NEW.amount
                  ELSE 0 END;
  -- Lock the two rows in a fixed order (by id) so that crossing transfers cannot deadlock.
  IF NEW.debit_account_id < NEW.credit_account_id THEN
    PERFORM pay_apply_side(NEW.debit_account_id, d_hot, NEW.currency, true,
                           pending_delta, posted_delta, NEW.id);
    PERFORM pay_apply_side(NEW.credit_account_id, c_hot, NEW.currency, false,
                           pending_delta, posted_delta, NEW.id);
  ELSE
    PERFORM pay_apply_side(NEW.credit_account_id, c_hot, NEW.currency, false,
                           pending_delta, posted_delta, NEW.id);
    PERFORM pay_apply_side(NEW.debit_account_id, d_hot, NEW.currency, true,
                           pending_delta, posted_delta, NEW.id);
  END IF;
  RETURN NULL;
END $$;

-- Create one transfer; 'created', or 'exists' for a repeat with the same fields.
-- kind: 'posted' (single phase), 'pending' (a hold), 'post' or 'void' (of pending_id).
CREATE OR REPLACE FUNCTION pay_transfer(
  p_id text, p_kind text, p_debit text, p_credit text, p_amount bigint, p_currency text,
  p_pending_id text, p_code text, p_timeout double precision
) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  pend pay_transfers;
  prior pay_transfers;
  v_debit text := p_debit;
  v_credit text := p_credit;
  v_currency text := p_currency;
  v_amount bigint := p_amount;
  v_code text := p_code;
  v_expires timestamptz;
BEGIN
  IF p_kind IN ('post', 'void') THEN
    -- Locked first: two resolutions of one hold queue here, then see each other below.
    SELECT * INTO pend FROM pay_transfers WHERE id = p_pending_id FOR UPDATE;
    IF NOT FOUND OR pend.kind <> 'pending' THEN
      RAISE EXCEPTION 'no pending transfer %', p_pending_id USING ERRCODE = 'PY002';
    END IF;
    v_debit := coalesce(p_debit, pend.debit_account_id);
    v_credit := coalesce(p_credit, pend.credit_account_id);
    v_currency := coalesce(p_currency, pend.currency);
    v_code := coalesce(p_code, pend.code);
    v_amount := CASE p_kind WHEN 'void' THEN coalesce(p_amount, pend.amount)
                ELSE coalesce(p_amount, pend.amount) END;
  END IF;
  SELECT * INTO prior FROM pay_transfers WHERE id = p_id;
  IF FOUND THEN
    IF prior.kind = p_kind AND prior.debit_account_id = v_debit
       AND prior.credit_account_id = v_credit AND prior.currency = v_currency
       AND prior.amount = v_amount AND prior.pending_id IS NOT DISTINCT FROM p_pending_id
       AND prior.code = coalesce(v_code, '') THEN
      RETURN 'exists';
    END IF;
    RAISE EXCEPTION 'transfer % exists with different fields', p_id USING ERRCODE = 'PY001';
  END IF;
  IF p_kind IN ('post', 'void') THEN
    IF v_debit <> pend.debit_account_id OR v_credit <> pend.credit_account_id
       OR v_currency <> pend.currency THEN
      RAISE EXCEPTION 'transfer % does not match its pending transfer', p_id
        USING ERRCODE = 'PY007';
    END IF;
    IF EXISTS (SELECT 1 FROM pay_transfers WHERE pending_id = p_pending_id) THEN
      RAISE EXCEPTION 'pending transfer % is already resolved', p_pending_id
        USING ERRCODE = 'PY003';
    END IF;
    IF p_kind = 'post' AND pend.expires_at IS NOT NULL AND pend.expires_at <= now() THEN
      RAISE EXCEPTION 'pending transfer % has expired', p_pending_id USING ERRCODE = 'PY005';
    END IF;
    IF v_amount > pend.amount OR (p_kind = 'void' AND v_amount <> pend.amount) THEN
      RAISE EXCEPTION 'amount % exceeds pending %', v_amount, pend.amount
        USING ERRCODE = 'PY004';
    END IF;
  ELSIF p_kind = 'pending' AND p_timeout IS NOT NULL THEN
    v_expires := now() + p_timeout * interval '1 second';
  END IF;
  INSERT INTO pay_transfers (id, kind, debit_account_id, credit_account_id, currency, amount,
                             pending_id, code, expires_at)
  VALUES (p_id, p_kind, v_debit, v_credit, v_currency, v_amount, p_pending_id,
          coalesce(v_code, ''), v_expires)
  ON CONFLICT (id) DO NOTHING;
  IF NOT FOUND THEN  -- a concurrent twin committed first: compare with it
    RETURN pay_transfer(p_id, p_kind, p_debit, p_credit, p_amount, p_currency, p_pending_id,
                        p_code, p_timeout);
  END IF;
  RETURN 'created';
END $$;

-- Void every hold whose timeout has passed (a void transfer 'expire:<id>', code 'expired').
CREATE OR REPLACE FUNCTION pay_expire_pending(p_limit integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  t record;
  n integer := 0;
BEGIN
  FOR t IN
    SELECT p.id FROM pay_transfers p
    WHERE p.kind = 'pending' AND p.expires_at <= now()
      AND NOT EXISTS (SELECT 1 FROM pay_transfers r WHERE r.pending_id = p.id)
    ORDER BY p.expires_at LIMIT p_limit
    FOR UPDATE OF p SKIP LOCKED
  LOOP
    IF NOT EXISTS (SELECT 1 FROM pay_transfers r WHERE r.pending_id = t.id) THEN
      PERFORM pay_transfer('expire:' || t.id, 'void', NULL, NULL, NULL, NULL, t.id,
                           'expired', NULL);
      n := n + 1;
    END IF;
  END LOOP;
  RETURN n;
END $$;

-- Fold a hot account's entries into its balances: one short lock of its row per batch.
CREATE OR REPLACE FUNCTION pay_roll_up_hot(p_account text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  n integer;
  d bigint;
  c bigint;
BEGIN
  WITH gone AS (DELETE FROM pay_hot_entries WHERE account_id = p_account
                RETURNING debits, credits)
  SELECT count(*), coalesce(sum(debits), 0), coalesce(sum(credits), 0) INTO n, d, c FROM gone;
  IF n > 0 THEN
    UPDATE pay_accounts SET debits_posted = debits_posted + d,
                            credits_posted = credits_posted + c
    WHERE id = p_account;
  END IF;
  RETURN n;
END $$;

-- Net debits minus credits per currency over every account (hot entries included): all zero.
CREATE OR REPLACE FUNCTION pay_ledger_imbalance()
RETURNS TABLE (currency text, posted bigint, pending bigint) LANGUAGE sql STABLE AS $$
  SELECT currency::text, sum(posted)::bigint, sum(pending)::bigint FROM (
    SELECT currency, debits_posted - credits_posted AS posted,
           debits_pending - credits_pending AS pending FROM pay_accounts
    UNION ALL
    SELECT currency, debits - credits, 0 FROM pay_hot_entries
  ) s GROUP BY currency
$$;

DROP TRIGGER IF EXISTS pay_accounts_delta ON pay_accounts;
CREATE TRIGGER pay_accounts_delta BEFORE UPDATE ON pay_accounts FOR EACH ROW
  WHEN (OLD.debits_posted IS DISTINCT FROM NEW.debits_posted
        OR OLD.credits_posted IS DISTINCT FROM NEW.credits_posted
        OR OLD.debits_pending IS DISTINCT FROM NEW.debits_pending
        OR OLD.credits_pending IS DISTINCT FROM NEW.credits_pending)
  EXECUTE FUNCTION pay_account_delta();
DROP TRIGGER IF EXISTS pay_accounts_born ON pay_accounts;
CREATE TRIGGER pay_accounts_born BEFORE INSERT ON pay_accounts FOR EACH ROW
  WHEN (NEW.debits_posted <> 0 OR NEW.credits_posted <> 0
        OR NEW.debits_pending <> 0 OR NEW.credits_pending <> 0)
  EXECUTE FUNCTION pay_account_delta();
DROP TRIGGER IF EXISTS pay_accounts_balanced ON pay_accounts;
CREATE CONSTRAINT TRIGGER pay_accounts_balanced AFTER INSERT OR UPDATE ON pay_accounts
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pay_check_balanced();
DROP TRIGGER IF EXISTS pay_hot_entries_delta ON pay_hot_entries;
CREATE TRIGGER pay_hot_entries_delta BEFORE INSERT OR DELETE ON pay_hot_entries FOR EACH ROW
  EXECUTE FUNCTION pay_hot_delta();
DROP TRIGGER IF EXISTS pay_hot_entries_balanced ON pay_hot_entries;
CREATE CONSTRAINT TRIGGER pay_hot_entries_balanced AFTER INSERT OR DELETE ON pay_hot_entries
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pay_check_balanced();
DROP TRIGGER IF EXISTS pay_hot_entries_immutable ON pay_hot_entries;
CREATE TRIGGER pay_hot_entries_immutable BEFORE UPDATE ON pay_hot_entries FOR EACH ROW
  EXECUTE FUNCTION pay_refuse_change();
DROP TRIGGER IF EXISTS pay_transfers_apply ON pay_transfers;
CREATE TRIGGER pay_transfers_apply AFTER INSERT ON pay_transfers FOR EACH ROW
  EXECUTE FUNCTION pay_apply_transfer();
DROP TRIGGER IF EXISTS pay_transfers_immutable ON pay_transfers;
CREATE TRIGGER pay_transfers_immutable BEFORE UPDATE OR DELETE ON pay_transfers FOR EACH ROW
  EXECUTE FUNCTION pay_refuse_change();
