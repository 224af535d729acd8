"""The audit log: every verification, login, token and certificate event, tamper-evident.

How it fits together (issue 5), in the order an entry travels:

- :mod:`idp.audit.log` ``append(session, AuditEvent)``: the entry is inserted
  in the caller's transaction (action and record commit together).
- :mod:`idp.audit.sequencer`: a run under the single ``audit_tree_head`` row
  lock gives committed entries gap-free leaf indexes and stores the hash of
  every completed perfect subtree (``audit_tree_nodes``).
- :mod:`idp.audit.canonical`: the bytes a leaf hashes, RFC 8785 JSON of the
  version 1 entry; :mod:`idp.audit.rfc9162`: leaf/node hashing and proofs.
- :mod:`idp.audit.tree`: inclusion and consistency proofs and roots from the
  stored hashes, O(log n) rows each.
- :mod:`idp.audit.checkpoints` + :mod:`idp.audit.signed_note`: C2SP
  checkpoints (origin, size, root, time) signed by the log's ECDSA P-256 key
  (:mod:`idp.audit.signing_key`, AES-GCM at rest; certified by the
  infrastructure CA through :mod:`idp.audit.certificate`).
- :mod:`idp.audit.search`, :mod:`idp.audit.export`, :mod:`idp.audit.verify`:
  what auditors use (``hoviyat audit ...``, ``/v1/audit/...``);
  :mod:`idp.audit.labels` names events for citizens (``/v1/me/access-history``).
"""
