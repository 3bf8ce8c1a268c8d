"""IoT telemetry: devices, readings over HTTP and MQTT stored exactly once, roll-ups, alerts."""
