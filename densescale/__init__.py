"""densescale: scaling laws of dense retrieval (Fang et al., SIGIR 2024)."""

__version__ = "0.1.0"
