"""payments: ISO 4217 currencies and the double-entry ledger (accounts, transfers, hot entries)

Revision ID: pay_0001
Revises:
Create Date: 2026-12-01

The payments domain's own Alembic branch ("payments"); it needs the core schema (0003).
Functions and triggers live in tasks/payments/sql/ledger.sql (CREATE OR REPLACE), loaded here.
"""

from __future__ import annotations

from pathlib import Path

from alembic import op

revision = "pay_0001"
down_revision = None
branch_labels = ("payments",)
depends_on = "0003"

LEDGER_SQL = Path(__file__).resolve().parents[2] / "tasks" / "payments" / "sql" / "ledger.sql"

# ISO 4217 minor-unit exponents (list one, active codes); 2 for every code not named here.
EXPONENTS = {
    0: "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF",
    3: "BHD IQD JOD KWD LYD OMR TND",
    4: "CLF UYW",
    2: "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP "
    "BYN BZD CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL "
    "GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP "
    "LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR "
    "NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP "
    "STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD UYU UZS VES WST XCD YER ZAR ZMW "
    "ZWL",
}

TABLES = """
CREATE TABLE pay_currencies (
  code char(3) PRIMARY KEY CHECK (code ~ '^[A-Z]{3}$'),
  exponent smallint NOT NULL CHECK (exponent BETWEEN 0 AND 4)
);
CREATE TABLE pay_accounts (
  id text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 200),
  currency char(3) NOT NULL REFERENCES pay_currencies (code),
  debits_must_not_exceed_credits boolean NOT NULL DEFAULT false,
  credits_must_not_exceed_debits boolean NOT NULL DEFAULT false,
  hot boolean NOT NULL DEFAULT false,
  debits_pending bigint NOT NULL DEFAULT 0,
  debits_posted bigint NOT NULL DEFAULT 0,
  credits_pending bigint NOT NULL DEFAULT 0,
  credits_posted bigint NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT uq_pay_accounts_id_currency UNIQUE (id, currency),
  CONSTRAINT ck_pay_accounts_non_negative CHECK (
    debits_pending >= 0 AND debits_posted >= 0 AND credits_pending >= 0 AND credits_posted >= 0),
  CONSTRAINT ck_pay_accounts_one_limit CHECK (
    NOT (debits_must_not_exceed_credits AND credits_must_not_exceed_debits)),
  CONSTRAINT ck_pay_accounts_hot_unlimited CHECK (
    NOT hot OR NOT (debits_must_not_exceed_credits OR credits_must_not_exceed_debits)),
  CONSTRAINT ck_pay_accounts_debits_limit CHECK (
    NOT debits_must_not_exceed_credits OR debits_pending + debits_posted <= credits_posted),
  CONSTRAINT ck_pay_accounts_credits_limit CHECK (
    NOT credits_must_not_exceed_debits OR credits_pending + credits_posted <= debits_posted)
);
CREATE TABLE pay_transfers (
  id text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 200),
  kind text NOT NULL CHECK (kind IN ('posted', 'pending', 'post', 'void')),
  debit_account_id text NOT NULL,
  credit_account_id text NOT NULL,
  currency char(3) NOT NULL,
  amount bigint NOT NULL,
  pending_id text REFERENCES pay_transfers (id),
  code text NOT NULL DEFAULT '' CHECK (length(code) <= 64),
  expires_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- Both sides in the transfer's currency: one amount debited and credited, so balanced.
  CONSTRAINT fk_pay_transfers_debit FOREIGN KEY (debit_account_id, currency)
    REFERENCES pay_accounts (id, currency),
  CONSTRAINT fk_pay_transfers_credit FOREIGN KEY (credit_account_id, currency)
    REFERENCES pay_accounts (id, currency),
  CONSTRAINT ck_pay_transfers_two_accounts CHECK (debit_account_id <> credit_account_id),
  CONSTRAINT ck_pay_transfers_resolves CHECK ((kind IN ('post', 'void')) = (pending_id IS NOT NULL)),
  CONSTRAINT ck_pay_transfers_amount CHECK (
    amount > 0 OR (kind IN ('post', 'void') AND amount >= 0)),
  CONSTRAINT ck_pay_transfers_timeout CHECK (expires_at IS NULL OR kind = 'pending')
);
-- A hold is resolved (posted, voided or expired) at most once.
CREATE UNIQUE INDEX uq_pay_transfers_pending_id ON pay_transfers (pending_id)
  WHERE pending_id IS NOT NULL;
CREATE INDEX ix_pay_transfers_expires_at ON pay_transfers (expires_at)
  WHERE expires_at IS NOT NULL;
CREATE INDEX ix_pay_transfers_debit ON pay_transfers (debit_account_id);
CREATE INDEX ix_pay_transfers_credit ON pay_transfers (credit_account_id);
-- Posted amounts for hot accounts, appended without touching the account row, rolled up later.
CREATE TABLE pay_hot_entries (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account_id text NOT NULL REFERENCES pay_accounts (id),
  currency char(3) NOT NULL,
  transfer_id text NOT NULL,
  debits bigint NOT NULL CHECK (debits >= 0),
  credits bigint NOT NULL CHECK (credits >= 0)
);
CREATE INDEX ix_pay_hot_entries_account ON pay_hot_entries (account_id);
"""


def upgrade() -> None:
    op.execute(TABLES)
    rows = [(code, exp) for exp, codes in EXPONENTS.items() for code in codes.split()]
    values = ", ".join(f"('{code}', {exp})" for code, exp in rows)
    op.execute(f"INSERT INTO pay_currencies (code, exponent) VALUES {values}")
    op.execute(LEDGER_SQL.read_text())


def downgrade() -> None:
    op.execute(
        "DROP TABLE pay_hot_entries, pay_transfers, pay_accounts, pay_currencies CASCADE;"
        "DROP FUNCTION pay_note_delta, pay_account_delta, pay_hot_delta, pay_check_balanced,"
        " pay_refuse_change, pay_apply_side, pay_apply_transfer, pay_transfer,"
        " pay_expire_pending, pay_roll_up_hot, pay_ledger_imbalance"
    )
