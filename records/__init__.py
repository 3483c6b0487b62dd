"""Durable records in a relational database: audit, consent evidence, the recording index,
patients, reports and their family copies. SQLAlchemy 2 (async) over an SQLite file by default or
PostgreSQL; personal fields and free text are sealed before they reach SQL (:mod:`records.sealing`).
No ORM object leaves this package: callers get frozen dataclasses or plain documents."""
