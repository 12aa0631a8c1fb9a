"""What requests do (check access, store, enqueue), shared by every API surface."""
