"""fractal_tasks_mock: offline mock tasks for the fractalctl tests (standard library only)."""
__version__ = "0.0.1"
