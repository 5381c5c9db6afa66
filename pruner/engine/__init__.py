"""The retention engine: the domain values, the keep rules and the guards, as pure functions.

Standard library only: no I/O, no HTTP, no logging. Everything it needs comes in as a value
(the listing, the policies, `now`), and everything it decides goes out as one (a `Plan`); the
layers above list, delete, record and report.
"""
