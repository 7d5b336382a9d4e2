"""Feature dataflows, label ingestion, scoring workers and their Kafka/Redis/Delta connectors."""
