"""WebSocket and SSE relays: read chat event streams, write frames. No business rules."""
