"""Deployment-wide alerts: a listener plugin configured by the ``[imkit]`` section."""
