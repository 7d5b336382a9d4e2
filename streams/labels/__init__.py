"""Label ingestion: chargebacks from Kafka into the Delta labels table, exactly once."""

from streams.labels.flow import build_labels_flow

__all__ = ["build_labels_flow"]
