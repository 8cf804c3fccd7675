"""The session layer: every protocol adapter (gRPC today, the HTTP/WS gateway next) opens,
steps and closes episodes through it, so caps, idle expiry, idempotent steps and durable
storage follow one rule whichever wire a session came in on."""
