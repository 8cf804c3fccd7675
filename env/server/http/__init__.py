"""HTTP/WebSocket adapters over the env core: the OpenEnv-compatible gateway (gateway, wire) and its runner."""
