"""The configuration: the YAML file, read strictly, validated, resolved into what a pass runs on.

Light on purpose: `pruner health` imports the YAML reader from here, and must not pay for
pydantic. The schema (every key, its default and its check) is `schema`; reading a file
is `load`; crontab expressions are `crontab`.
"""
