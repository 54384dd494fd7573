"""The provider's client: retried while the process runs, tried once more at most once it is stopping."""

from __future__ import annotations

import threading
from unittest import mock

import pytest

from app.notifications import NotificationFailed, Notifier
from app.settings import Settings


@pytest.mark.parametrize(("stopping", "tries"), [(False, 3), (True, 1)])
def test_a_failing_provider_is_retried_only_while_the_worker_is_not_stopping(
    settings: Settings, stopping: bool, tries: int
) -> None:
    stop = threading.Event()
    notifier = Notifier(settings.model_copy(update={"notification_url": "http://127.0.0.1:9/notify"}), stopping=stop)
    if stopping:
        stop.set()
    try:
        failing = NotificationFailed("provider answered 503")
        with mock.patch.object(notifier, "_post", side_effect=failing) as post, pytest.raises(NotificationFailed):
            notifier.send("key-1", {"order_id": "o"})
        assert post.call_count == tries
    finally:
        notifier.close()
