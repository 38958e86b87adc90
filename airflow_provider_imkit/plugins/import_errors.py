"""Broken DAG files: the DAG processor's alert for each, and "imports again" once Airflow no
longer lists it as broken (looked at every ``FIXED_CHECK_SECONDS`` while any is broken)."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from airflow_provider_imkit.plugins.metadata import _import_error_files

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_imkit.plugins.config import AlertsConfig
    from airflow_provider_imkit.plugins.sender import BackgroundSender

#: How often the DAG processor looks whether a file it reported broken imports again.
FIXED_CHECK_SECONDS = 15.0


class ImportErrorWatch:
    """Import-error alerts, for the listener (:class:`~airflow_provider_imkit.plugins.alerts.Alerts`),
    which sends (``_send``)."""

    sender: BackgroundSender
    _broken_files: dict[str, str]
    _send: Callable[..., Any]

    def _import_error(self, config: AlertsConfig, filename: str, last_line: str) -> None:
        self._broken_files[filename] = last_line
        name = os.path.basename(filename)
        self._send(
            config, config.room, f"⚠️ DAG file {name} cannot be imported\nFile: {filename}\nError: {last_line}"
        )
        self._watch_fixed(config)

    def _watch_fixed(self, config: AlertsConfig) -> None:
        """While files are broken, look every ``FIXED_CHECK_SECONDS`` whether Airflow still says so."""

        def tick() -> None:
            self.sender.submit(lambda: self._check_fixed(config))
            if self._broken_files:
                self._watch_fixed(config)

        timer = threading.Timer(FIXED_CHECK_SECONDS, tick)
        timer.daemon = True
        timer.start()

    def _check_fixed(self, config: AlertsConfig) -> None:
        """Files this DAG processor reported broken that Airflow no longer lists as broken."""
        if not self._broken_files:
            return
        still_broken = _import_error_files()
        for filename in list(self._broken_files):
            if filename not in still_broken and not any(filename.endswith(f"/{f}") for f in still_broken):
                del self._broken_files[filename]
                self._send(
                    config,
                    config.room,
                    f"✅ DAG file {os.path.basename(filename)} imports again\nFile: {filename}",
                )
