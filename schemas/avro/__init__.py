"""Packaged Avro schemas (*.avsc), read by `schemas.contracts.load_schema`."""
