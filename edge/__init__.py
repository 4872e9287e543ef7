"""Edge worker: reads plates from RTSP cameras and publishes one read per vehicle pass to Kafka."""
