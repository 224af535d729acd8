"""Batch reconciliation of legacy records against the civil registry (bylaw Article 11, note 1).

- :mod:`idp.reconciliation.legacy_csv`: the input and output CSV formats, read
  and written one record at a time so memory stays flat for any file size.
- :mod:`idp.reconciliation.rows`: one legacy row against the registry under a
  service policy: per-field results, fields filled in, reasons for review.
- :mod:`idp.reconciliation.engine`: the run: batches of rows, their audit
  entries in one transaction per batch, the output appended and fsynced, and
  resumption from what the output already holds.
- :mod:`idp.reconciliation.jobs`: the API's jobs, their state in the database
  so every worker can answer for them and take over one whose worker died.
"""
