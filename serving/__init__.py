"""Serving: ONNX model runtime, routing, online feature lookup and the HTTP API."""
