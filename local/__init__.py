"""Docker-free local runtime and tools; never deployed."""
