"""A text-message gateway adapter for the killed-worker test: the default store backend behind a
network-like delay, so a worker can be killed while sends are in flight."""

import time

from outreach.backends.store import SmsStoreBackend

DELAY_SECONDS = 0.25


class SlowSmsGateway(SmsStoreBackend):
    def send(self, message):
        time.sleep(DELAY_SECONDS)  # the gateway's round trip, before it takes the message
        receipt = super().send(message)
        time.sleep(DELAY_SECONDS)  # ... and after, before its answer reaches us
        return receipt
